#include "seccomp.hpp"

#include <linux/seccomp.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <map>
#include <string_view>

#include "berth/util/fs.hpp"

namespace berth::runtime {
namespace {

using nlohmann::json;

class FilterCtx {
 public:
  explicit FilterCtx(scmp_filter_ctx ctx) : ctx_(ctx) {}
  ~FilterCtx() {
    if (ctx_) {
      seccomp_release(ctx_);
    }
  }
  FilterCtx(const FilterCtx&) = delete;
  FilterCtx& operator=(const FilterCtx&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

Result<uint32_t> action(const std::string& name, const json& errno_ret) {
  const int err = errno_ret.is_number() ? errno_ret.get<int>() : EPERM;
  if (name == "SCMP_ACT_ALLOW") {
    return SCMP_ACT_ALLOW;
  }
  if (name == "SCMP_ACT_ERRNO") {
    return SCMP_ACT_ERRNO(static_cast<uint16_t>(err));
  }
  if (name == "SCMP_ACT_KILL" || name == "SCMP_ACT_KILL_THREAD") {
    return SCMP_ACT_KILL_THREAD;
  }
  if (name == "SCMP_ACT_KILL_PROCESS") {
    return SCMP_ACT_KILL_PROCESS;
  }
  if (name == "SCMP_ACT_TRAP") {
    return SCMP_ACT_TRAP;
  }
  if (name == "SCMP_ACT_LOG") {
    return SCMP_ACT_LOG;
  }
  if (name == "SCMP_ACT_TRACE") {
    return SCMP_ACT_TRACE(static_cast<uint16_t>(err));
  }
  return fail(Errc::InvalidArgument, "seccomp: unsupported action " + name);
}

Result<scmp_compare> compare_op(const std::string& op) {
  static const std::map<std::string, scmp_compare> ops = {
      {"SCMP_CMP_NE", SCMP_CMP_NE},
      {"SCMP_CMP_LT", SCMP_CMP_LT},
      {"SCMP_CMP_LE", SCMP_CMP_LE},
      {"SCMP_CMP_EQ", SCMP_CMP_EQ},
      {"SCMP_CMP_GE", SCMP_CMP_GE},
      {"SCMP_CMP_GT", SCMP_CMP_GT},
      {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ}};
  auto it = ops.find(op);
  if (it == ops.end()) {
    return fail(Errc::InvalidArgument, "seccomp: unsupported operator " + op);
  }
  return it->second;
}

Result<uint32_t> arch_token(const std::string& name) {
  static const std::map<std::string, uint32_t> arches = {
      {"SCMP_ARCH_X86", SCMP_ARCH_X86},         {"SCMP_ARCH_X86_64", SCMP_ARCH_X86_64},
      {"SCMP_ARCH_X32", SCMP_ARCH_X32},         {"SCMP_ARCH_ARM", SCMP_ARCH_ARM},
      {"SCMP_ARCH_AARCH64", SCMP_ARCH_AARCH64}, {"SCMP_ARCH_S390", SCMP_ARCH_S390},
      {"SCMP_ARCH_S390X", SCMP_ARCH_S390X},     {"SCMP_ARCH_PPC64LE", SCMP_ARCH_PPC64LE},
      {"SCMP_ARCH_RISCV64", SCMP_ARCH_RISCV64}};
  auto it = arches.find(name);
  if (it == arches.end()) {
    return fail(Errc::InvalidArgument, "seccomp: unsupported architecture " + name);
  }
  return it->second;
}

Result<void> add_rule(scmp_filter_ctx ctx, uint32_t act, int nr, const json& args,
                      const std::string& name) {
  std::vector<scmp_arg_cmp> cmps;
  std::map<unsigned, int> per_index;
  for (const auto& a : args) {
    BERTH_TRY(auto op, compare_op(a.at("op").get<std::string>()));
    scmp_arg_cmp c{};
    c.arg = a.at("index").get<unsigned>();
    c.op = op;
    c.datum_a = a.at("value").get<uint64_t>();
    c.datum_b = a.value("valueTwo", uint64_t{0});
    per_index[c.arg]++;
    cmps.push_back(c);
  }
  bool same_index = false;
  for (const auto& [idx, count] : per_index) {
    same_index |= count > 1;
  }
  // libseccomp refuses two comparisons on one argument in a rule: add one rule per comparison
  // (OR), as runc does.
  if (same_index) {
    for (const auto& c : cmps) {
      int rc = seccomp_rule_add_array(ctx, act, nr, 1, &c);
      if (rc < 0) {
        return fail(Error::from_errno("seccomp: add rule for", name, -rc));
      }
    }
    return {};
  }
  int rc = seccomp_rule_add_array(ctx, act, nr, static_cast<unsigned>(cmps.size()), cmps.data());
  if (rc < 0) {
    return fail(Error::from_errno("seccomp: add rule for", name, -rc));
  }
  return {};
}

}  // namespace

Result<SeccompProgram> compile_seccomp(const nlohmann::json& s) {
  try {
    BERTH_TRY(uint32_t def,
              action(s.at("defaultAction").get<std::string>(), s.value("defaultErrnoRet", json())));
    FilterCtx ctx(seccomp_init(def));
    if (!ctx.get()) {
      return fail(Errc::Internal, "seccomp_init failed");
    }
    // Filter load checks no_new_privs itself; the runtime sets it when the spec asks.
    seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_NNP, 0);
    for (const auto& a : s.value("architectures", json::array())) {
      BERTH_TRY(uint32_t arch, arch_token(a.get<std::string>()));
      int rc = seccomp_arch_add(ctx.get(), arch);
      if (rc < 0 && rc != -EEXIST) {
        return fail(Error::from_errno("seccomp: add architecture", a.get<std::string>(), -rc));
      }
    }
    for (const auto& rule : s.value("syscalls", json::array())) {
      BERTH_TRY(uint32_t act,
                action(rule.at("action").get<std::string>(), rule.value("errnoRet", json())));
      if (act == def) {
        continue;  // libseccomp refuses rules equal to the default action
      }
      const json args = rule.value("args", json::array());
      for (const auto& n : rule.at("names")) {
        const std::string name = n.get<std::string>();
        int nr = seccomp_syscall_resolve_name(name.c_str());
        if (nr == __NR_SCMP_ERROR) {
          continue;  // not a syscall on this architecture
        }
        BERTH_TRYV(add_rule(ctx.get(), act, nr, args.is_array() ? args : json::array(), name));
      }
    }
    int fd = ::memfd_create("berth-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
      return fail_errno("memfd_create", "seccomp program");
    }
    UniqueFd mem(fd);
    int rc = seccomp_export_bpf(ctx.get(), fd);
    if (rc < 0) {
      return fail(Error::from_errno("seccomp: export BPF", "", -rc));
    }
    off_t size = ::lseek(fd, 0, SEEK_END);
    if (size < 0 || size % sizeof(sock_filter) != 0) {
      return fail(Errc::Internal, "seccomp: exported BPF has an odd size");
    }
    SeccompProgram prog(static_cast<size_t>(size) / sizeof(sock_filter));
    if (::pread(fd, prog.data(), static_cast<size_t>(size), 0) != size) {
      return fail_errno("read", "exported seccomp program");
    }
    return prog;
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("linux.seccomp: ") + e.what());
  }
}

Result<SeccompProgram> compile_seccomp_cached(const nlohmann::json& seccomp,
                                              const std::string& cache_dir) {
  // Keyed by a plain hash of the profile, and each entry holds the profile it was compiled from:
  // a hash collision is only a miss, never another profile's filter. (A SHA-256 key loaded
  // libcrypto into every container start for nothing.)
  const std::string text = seccomp.dump();
  char key[32];
  std::snprintf(key, sizeof(key), "%016zx", std::hash<std::string_view>{}(text));
  const std::string path = cache_dir + "/" + key + ".bpf2";
  const std::string head = text + '\0';
  if (auto cached = util::read_file(path);
      cached && cached->size() > head.size() && cached->compare(0, head.size(), head) == 0 &&
      (cached->size() - head.size()) % sizeof(sock_filter) == 0) {
    SeccompProgram prog((cached->size() - head.size()) / sizeof(sock_filter));
    std::memcpy(prog.data(), cached->data() + head.size(), cached->size() - head.size());
    return prog;
  }
  BERTH_TRY(auto prog, compile_seccomp(seccomp));
  // The cache is an optimisation: failing to write it is not an error.
  if (util::make_dirs(cache_dir, 0700)) {
    std::string entry = head;
    entry.append(reinterpret_cast<const char*>(prog.data()), prog.size() * sizeof(sock_filter));
    (void)util::write_file_atomic(path, entry, 0600);
  }
  return prog;
}

Result<void> load_seccomp(const SeccompProgram& program) {
  sock_fprog fprog{};
  fprog.len = static_cast<unsigned short>(program.size());
  fprog.filter = const_cast<sock_filter*>(program.data());
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) != 0) {
    return fail_errno("load seccomp filter", "");
  }
  return {};
}

}  // namespace berth::runtime
