#include "berth/sdk/plugin_file.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlfcn.h>

#include <algorithm>
#include <boost/system/error_code.hpp>
#include <string>
#include <vector>
// library_info.hpp uses std::vector without including it.
#include <boost/dll/library_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <cstring>
#include <mutex>
#include <vector>

#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

namespace {

Result<void> pread_exact(int fd, void* buf, size_t len, off_t off, uint64_t file_size,
                         const std::filesystem::path& file, std::string_view what) {
  if (off < 0 || static_cast<uint64_t>(off) + len > file_size) {
    return fail(Errc::Corrupt, "plugin " + file.string() + ": " + std::string(what) +
                                   " lies past the end of the file (truncated?)");
  }
  size_t done = 0;
  while (done < len) {
    ssize_t n = ::pread(fd, static_cast<char*>(buf) + done, len - done, off + done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("read plugin", file.string());
    }
    if (n == 0) {
      return fail(Errc::Corrupt, "plugin " + file.string() + ": unexpected end of file reading " +
                                     std::string(what) + " (truncated?)");
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

// Every mapped plugin stays mapped until the process exits.
std::vector<boost::dll::shared_library>& mapped_plugins() {
  static auto* libs = new std::vector<boost::dll::shared_library>();
  return *libs;
}

}  // namespace

std::string field(const char* chars, size_t size) { return std::string(chars, strnlen(chars, size)); }

Result<berth_plugin_descriptor> read_descriptor(const std::filesystem::path& file) {
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open plugin", file.string());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno("stat plugin", file.string());
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  Elf64_Ehdr eh{};
  if (size < sizeof(eh)) {
    return fail(Errc::Corrupt, "plugin " + file.string() + ": file is " + std::to_string(size) +
                                   " bytes, too short to be a shared object (truncated?)");
  }
  BERTH_TRYV(pread_exact(fd.get(), &eh, sizeof(eh), 0, size, file, "ELF header"));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
    return fail(Errc::InvalidArgument, "plugin " + file.string() + ": not an ELF shared object");
  }
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB ||
      eh.e_type != ET_DYN) {
    return fail(Errc::InvalidArgument,
                "plugin " + file.string() + ": not a 64-bit little-endian shared object");
  }
#if defined(__x86_64__)
  constexpr int kMachine = EM_X86_64;
#elif defined(__aarch64__)
  constexpr int kMachine = EM_AARCH64;
#else
  constexpr int kMachine = eh.e_machine;
#endif
  if (eh.e_machine != kMachine) {
    return fail(Errc::InvalidArgument, "plugin " + file.string() + ": built for ELF machine " +
                                           std::to_string(eh.e_machine) + ", this host is " +
                                           std::to_string(kMachine));
  }
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum) {
    return fail(Errc::Corrupt, "plugin " + file.string() + ": no usable section table");
  }
  std::vector<Elf64_Shdr> sh(eh.e_shnum);
  BERTH_TRYV(pread_exact(fd.get(), sh.data(), sh.size() * sizeof(Elf64_Shdr),
                         static_cast<off_t>(eh.e_shoff), size, file, "section table"));
  const Elf64_Shdr& strtab = sh[eh.e_shstrndx];
  if (strtab.sh_size > (1u << 20)) {
    return fail(Errc::Corrupt, "plugin " + file.string() + ": section name table is too large");
  }
  std::string names(strtab.sh_size, '\0');
  BERTH_TRYV(pread_exact(fd.get(), names.data(), names.size(),
                         static_cast<off_t>(strtab.sh_offset), size, file, "section names"));
  for (const auto& s : sh) {
    if (s.sh_name >= names.size()) {
      continue;
    }
    if (std::strcmp(names.c_str() + s.sh_name, BERTH_DESCRIPTOR_SECTION) != 0) {
      continue;
    }
    berth_plugin_descriptor d{};
    if (s.sh_size < offsetof(berth_plugin_descriptor, kind)) {
      return fail(Errc::Corrupt, "plugin " + file.string() + ": descriptor section is too small");
    }
    BERTH_TRYV(pread_exact(fd.get(), &d, std::min<size_t>(s.sh_size, sizeof(d)),
                           static_cast<off_t>(s.sh_offset), size, file, "plugin descriptor"));
    if (d.magic != BERTH_DESCRIPTOR_MAGIC) {
      return fail(Errc::Corrupt, "plugin " + file.string() + ": descriptor has a bad magic number");
    }
    return d;
  }
  return fail(Errc::NotFound, "plugin " + file.string() +
                                  ": no berth plugin descriptor (section " BERTH_DESCRIPTOR_SECTION
                                  "); was it built with BERTH_PLUGIN() from the berth SDK?");
}

Result<void> check_descriptor(const berth_plugin_descriptor& d, const std::filesystem::path& file) {
  const std::string where = "plugin " + file.string();
  if (d.abi_major != BERTH_SDK_ABI_MAJOR) {
    return fail(Errc::NotSupported,
                where + ": built for berth SDK ABI " + std::to_string(d.abi_major) + "." +
                    std::to_string(d.abi_minor) + ", this berth has ABI " +
                    std::to_string(BERTH_SDK_ABI_MAJOR) + "." +
                    std::to_string(BERTH_SDK_ABI_MINOR) + "; rebuild the plugin against this SDK");
  }
  if (d.abi_minor > BERTH_SDK_ABI_MINOR) {
    return fail(Errc::NotSupported,
                where + ": needs berth SDK ABI " + std::to_string(d.abi_major) + "." +
                    std::to_string(d.abi_minor) + ", newer than this berth's " +
                    std::to_string(BERTH_SDK_ABI_MAJOR) + "." +
                    std::to_string(BERTH_SDK_ABI_MINOR) + "; update berth");
  }
  if (d.struct_size != sizeof(berth_plugin_descriptor)) {
    return fail(Errc::NotSupported, where + ": descriptor is " + std::to_string(d.struct_size) +
                                        " bytes, expected " +
                                        std::to_string(sizeof(berth_plugin_descriptor)));
  }
  const std::string key = BERTH_FIELD(d, build_key);
  if (key != BERTH_BUILD_KEY) {
    return fail(Errc::NotSupported, where + ": built for C++ ABI '" + key + "', berth uses '" +
                                        BERTH_BUILD_KEY + "'; rebuild it with the same compiler");
  }
  const std::string kind = BERTH_FIELD(d, kind);
  static constexpr const char* kKinds[] = {BERTH_KIND_storage, BERTH_KIND_network,
                                           BERTH_KIND_transport, BERTH_KIND_verifier,
                                           BERTH_KIND_runtime};
  bool known = false;
  for (const char* k : kKinds) {
    known = known || kind == k;
  }
  if (!known) {
    return fail(Errc::NotSupported, where + ": unknown plugin kind '" + kind + "'");
  }
  if (BERTH_FIELD(d, name).empty()) {
    return fail(Errc::InvalidArgument, where + ": descriptor has an empty name");
  }
  return {};
}

Result<std::shared_ptr<LoadedPlugin>> LoadedPlugin::open(const std::filesystem::path& file) {
  BERTH_TRY(auto desc, read_descriptor(file));
  BERTH_TRYV(check_descriptor(desc, file));
  // Parse the symbol table, still without mapping the file: the factory must be exported.
  try {
    boost::dll::library_info info(file, /*throw_if_not_native=*/true);
    auto symbols = info.symbols();
    if (std::find(symbols.begin(), symbols.end(), BERTH_FACTORY_SYMBOL) == symbols.end()) {
      return fail(Errc::InvalidArgument, "plugin " + file.string() +
                                             ": does not export the factory " BERTH_FACTORY_SYMBOL);
    }
  } catch (const std::exception& e) {
    return fail(Errc::Corrupt, "plugin " + file.string() + ": cannot read symbols: " + e.what());
  }
  auto plugin = std::shared_ptr<LoadedPlugin>(new LoadedPlugin());
  plugin->file_ = file;
  plugin->descriptor_ = desc;
  boost::dll::shared_library lib;
  std::error_code ec;
  lib.load(file, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
  if (ec) {
    const char* msg = ::dlerror();
    return fail(Errc::Corrupt, "load plugin " + file.string() + ": " +
                                   (msg != nullptr ? std::string(msg) : ec.message()));
  }
  if (!lib.has(BERTH_FACTORY_SYMBOL)) {
    return fail(Errc::InvalidArgument,
                "plugin " + file.string() + ": factory " BERTH_FACTORY_SYMBOL " not found");
  }
  plugin->factory_ = reinterpret_cast<void*>(&lib.get_alias<void()>(BERTH_FACTORY_SYMBOL));
  plugin->handle_ = lib.native();
  static std::mutex mu;
  std::lock_guard lock(mu);
  mapped_plugins().push_back(std::move(lib));
  return plugin;
}

}  // namespace berth::sdk
