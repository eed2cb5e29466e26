// cp, diff, export, commit, mount/unmount of a container's file system.
#include "berth/container/storage_ops.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cassert>
#include <csignal>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string_view>
#include <thread>

#include "berth/container/container.hpp"
#include "berth/image/commit.hpp"
#include "berth/sdk/id_map.hpp"
#include "berth/sdk/layer_archive.hpp"
#include "berth/spec/spec_builder.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "features.hpp"
#include "internal.hpp"

namespace berth::container {

using namespace detail;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The container's rootfs, mounted for the length of a call (driver mounts are counted, so a
// running container's mount is shared and stays).
class RootfsMount {
 public:
  static Result<RootfsMount> make(engine::Engine& eng, const ContainerRecord& rec) {
    BERTH_TRY(auto* d, eng.storage());
    auto path = d->mount(rec.layer_id, sdk::MountOptions{});
    if (!path) {
      return fail(std::move(path).error().wrap("mount the rootfs of container " + rec.name));
    }
    return RootfsMount(d, rec.layer_id, *path);
  }
  RootfsMount(RootfsMount&& o) noexcept
      : driver_(std::exchange(o.driver_, nullptr)), id_(o.id_), path_(o.path_) {}
  RootfsMount& operator=(RootfsMount&&) = delete;
  ~RootfsMount() {
    if (driver_) {
      if (auto r = driver_->unmount(id_); !r) {
        spdlog::warn("unmount layer {}: {}", id_, r.error().message());
      }
    }
  }
  const std::string& path() const { return path_; }

 private:
  RootfsMount(sdk::StorageDriver* d, std::string id, std::string path)
      : driver_(d), id_(std::move(id)), path_(std::move(path)) {}
  sdk::StorageDriver* driver_;
  std::string id_;
  std::string path_;
};

// The container and its lock, for the length of a call.
struct Locked {
  std::unique_ptr<ContainerDb> db;
  ContainerRecord rec;
  ContainerLock lock;
};

Result<Locked> lock_container(engine::Engine& eng, const std::string& name_or_id, bool read_only) {
  BERTH_TRY(auto db, open_db(eng, read_only));
  BERTH_TRY(auto rec0, db->lookup(name_or_id));
  BERTH_TRY(auto lock, ContainerLock::acquire(eng.runroot(), rec0.id));
  BERTH_TRY(auto rec, db->by_id(rec0.id));
  if (!rec) {
    return fail(Errc::NotFound, "no container with name or ID \"" + name_or_id + "\" found");
  }
  return Locked{std::move(db), std::move(*rec), std::move(lock)};
}

std::string fd_path(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

// A path inside the container: the host directory it is resolved in (the rootfs, or the source
// of the volume/bind mount holding it) and the path relative to that directory.
struct Located {
  std::string root;
  std::string rel;
};

Located locate(const ContainerRecord& rec, const std::string& rootfs, const std::string& path) {
  std::string p = fs::path("/" + path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') {
    p.pop_back();
  }
  // /etc/hostname, /etc/hosts and /etc/resolv.conf are files of the bundle bind-mounted over the
  // rootfs's: read and written there, as the container sees them.
  for (const char* f : {"hostname", "hosts", "resolv.conf"}) {
    if (p == std::string("/etc/") + f && !(rec.options.net.no_hosts && p == "/etc/hosts") &&
        ::access((rec.bundle + "/" + f).c_str(), F_OK) == 0) {
      return {rec.bundle, f};
    }
  }
  const MountPoint* best = nullptr;
  for (const auto& mp : rec.options.storage.mount_points) {
    if (mp.type != "bind" && mp.type != "volume") {
      continue;
    }
    const std::string& d = mp.destination;
    bool under = p == d || (p.size() > d.size() && p.compare(0, d.size(), d) == 0 &&
                            (d == "/" || p[d.size()] == '/'));
    if (under && (!best || d.size() > best->destination.size())) {
      best = &mp;
    }
  }
  if (!best) {
    return {rootfs, p.substr(1)};
  }
  std::string rest = p.substr(best->destination.size());
  while (!rest.empty() && rest.front() == '/') {
    rest.erase(0, 1);
  }
  return {best->source, rest};
}

// O_PATH fd of `rel` resolved inside `root` as if it were "/". nullopt when it does not exist.
Result<std::optional<UniqueFd>> open_in_root(const std::string& root, const std::string& rel) {
  UniqueFd rootfd(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!rootfd) {
    return fail_errno("open", root);
  }
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  const std::string r = rel.empty() ? "." : rel;
  long fd = ::syscall(SYS_openat2, rootfd.get(), r.c_str(), &how, sizeof how);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<UniqueFd>();
    }
    return fail_errno("resolve " + r + " in", root);
  }
  return std::optional<UniqueFd>(UniqueFd(static_cast<int>(fd)));
}

Result<struct stat> stat_fd(int fd, const std::string& what) {
  struct stat st {};
  if (::fstatat(fd, "", &st, AT_EMPTY_PATH) != 0) {
    return fail_errno("stat", what);
  }
  return st;
}

std::string base_name(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  auto slash = s.rfind('/');
  return slash == std::string::npos ? s : s.substr(slash + 1);
}

std::string parent_of(const std::string& p) {
  std::string s = p;
  while (s.size() > 1 && s.back() == '/') {
    s.pop_back();
  }
  auto slash = s.rfind('/');
  if (slash == std::string::npos) {
    return "";
  }
  return slash == 0 ? "/" : s.substr(0, slash);
}

bool wants_content(const std::string& p) {
  return p == "." || (p.size() >= 2 && p.compare(p.size() - 2, 2, "/.") == 0);
}

struct ArchiveDeleter {
  void operator()(struct archive* a) const {
    if (a) {
      archive_read_free(a);
    }
  }
};
struct WriterDeleter {
  void operator()(struct archive* a) const {
    if (a) {
      archive_write_free(a);
    }
  }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

using TarWriter = std::unique_ptr<struct archive, WriterDeleter>;

// A pax tar writer on `out_fd` (no padding of the last block: the reader may be a pipe).
Result<TarWriter> open_tar_writer(int out_fd, const std::string& what) {
  TarWriter w(archive_write_new());
  if (!w) {
    return fail(Errc::Internal, "tar " + what + ": out of memory");
  }
  archive_write_set_format_pax_restricted(w.get());
  archive_write_set_bytes_in_last_block(w.get(), 1);
  if (archive_write_open_fd(w.get(), out_fd) != ARCHIVE_OK) {
    return fail(Errc::Internal, "tar " + what + ": " + archive_error_string(w.get()));
  }
  return w;
}

// Which side of a container's user namespace a tar's owners are written for.
enum class IdWay {
  ToContainer,  // host files leaving the container (export, cp out): as the container sees them
  ToHost,       // files entering it (cp in): the host ids the container's ids stand for
};

// Sets the owner of `e` for the other side of the container's boundary (`ids`: its maps).
// `what` names the file in the error for an owner the namespace cannot hold.
Result<void> map_owner(archive_entry* e, const sdk::IdMappings& ids, IdWay way,
                       const std::string& what) {
  if (ids.identity()) {
    return {};
  }
  const la_int64_t uid = archive_entry_uid(e);
  const la_int64_t gid = archive_entry_gid(e);
  if (uid < 0 || gid < 0 || uid > UINT32_MAX || gid > UINT32_MAX) {
    return fail(Errc::InvalidArgument, what + " has the owner " + std::to_string(uid) + ":" +
                                           std::to_string(gid) +
                                           ", outside the 32-bit ids a user namespace maps");
  }
  sdk::Owner o{static_cast<uint32_t>(uid), static_cast<uint32_t>(gid)};
  if (way == IdWay::ToContainer) {
    o = ids.to_container(o);
  } else {
    BERTH_TRY(o, ids.to_host(o, what));
  }
  archive_entry_set_uid(e, o.uid);
  archive_entry_set_gid(e, o.gid);
  return {};
}

// What a copy does to each entry of the tar it writes: owners set and/or mapped, and the entry
// checked against what it would replace in the directory it is extracted in.
struct EntryRules {
  sdk::IdMappings ids;
  IdWay way = IdWay::ToContainer;
  // The owner every entry gets, written as it is (no mapping): the host ids of the container's
  // user (cp in with --archive), its container ids (the tar of a cp out to stdout) or the
  // invoking user's (cp out to the host).
  std::optional<sdk::Owner> owner;
  // The directory the tar is extracted in, when a directory may not be replaced by a
  // non-directory or back (no --overwrite); -1: extraction replaces them.
  int guard_fd = -1;
  std::string guard_shown;  // that directory in messages ("ctr:/tmp", "/host/dir")
};

// The entry name as extraction cleans it ("./a//b" -> "a/b"); nullopt for a name extraction
// refuses (absolute, climbing with ".."), left to it.
std::optional<std::string> clean_entry_name(const std::string& name) {
  if (!name.empty() && name.front() == '/') {
    return std::nullopt;
  }
  std::string out;
  size_t i = 0;
  while (i <= name.size()) {
    size_t j = name.find('/', i);
    if (j == std::string::npos) {
      j = name.size();
    }
    std::string comp = name.substr(i, j - i);
    i = j + 1;
    if (comp.empty() || comp == ".") {
      continue;
    }
    if (comp == "..") {
      return std::nullopt;
    }
    out += (out.empty() ? "" : "/") + comp;
  }
  return out;
}

// Refuses an entry that would replace a directory of the destination with a non-directory, or a
// non-directory with a directory. `source` names the entry's source in the message (quoted).
Result<void> check_replacement(archive_entry* e, const EntryRules& rules,
                               const std::string& source) {
  auto name = clean_entry_name(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
  if (!name || name->empty()) {
    return {};
  }
  const auto slash = name->rfind('/');
  const std::string base = slash == std::string::npos ? *name : name->substr(slash + 1);
  if (base.starts_with(".wh.")) {
    return {};  // a whiteout deletes, extraction handles it
  }
  // Parents as extraction opens them: beneath the directory, through no symlink. One that does
  // not open (missing, a file, a link) is created or refused by extraction.
  UniqueFd parent;
  if (slash != std::string::npos) {
    struct open_how how {};
    how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    const std::string dir = name->substr(0, slash);
    long fd = ::syscall(SYS_openat2, rules.guard_fd, dir.c_str(), &how, sizeof how);
    if (fd < 0) {
      return {};
    }
    parent = UniqueFd(static_cast<int>(fd));
  }
  const std::string shown =
      rules.guard_shown + (rules.guard_shown.ends_with("/") ? "" : "/") + *name;
  struct stat st {};
  if (::fstatat(parent ? parent.get() : rules.guard_fd, base.c_str(), &st, AT_SYMLINK_NOFOLLOW) !=
      0) {
    if (errno == ENOENT) {
      return {};
    }
    return fail_errno("stat", shown);
  }
  const bool entry_dir = archive_entry_filetype(e) == AE_IFDIR;
  if (S_ISDIR(st.st_mode) == entry_dir) {
    return {};
  }
  return fail(Errc::Conflict, std::string("cannot overwrite ") +
                                  (entry_dir ? "non-directory" : "directory") + " \"" + shown +
                                  "\" with " + (entry_dir ? "directory " : "non-directory ") +
                                  source + ": nothing was copied (cp --overwrite replaces it)");
}

// Applies `rules` to the entry `e`: `source` names it in messages, `quoted` the same quoted.
Result<void> apply_rules(archive_entry* e, const EntryRules& rules, const std::string& source,
                         const std::string& quoted) {
  if (rules.owner) {
    archive_entry_set_uid(e, rules.owner->uid);
    archive_entry_set_gid(e, rules.owner->gid);
    archive_entry_set_uname(e, nullptr);
    archive_entry_set_gname(e, nullptr);
  } else {
    BERTH_TRYV(map_owner(e, rules.ids, rules.way, source));
  }
  if (rules.guard_fd >= 0) {
    BERTH_TRYV(check_replacement(e, rules, quoted));
  }
  return {};
}

// Copies the data of the entry `r` is at to `w`; `read_error` says what a failed read was.
Result<void> copy_entry_data(struct archive* r, struct archive* w, std::vector<char>& buf,
                             const std::string& what, const std::function<Error()>& read_error) {
  for (;;) {
    la_ssize_t n = archive_read_data(r, buf.data(), buf.size());
    if (n < 0) {
      return fail(read_error());
    }
    if (n == 0) {
      return {};
    }
    if (archive_write_data(w, buf.data(), static_cast<size_t>(n)) < 0) {
      return fail(Errc::Internal, "tar " + what + ": " + archive_error_string(w));
    }
  }
}

// A tar of `path` (its top followed when it is a link, e.g. /proc/self/fd/N; nothing below is
// followed) to `out_fd`. The top entry is named `top`; with `top` empty, a directory's entries are
// written relative to it (its own entry left out). Each entry gets `rules`.
Result<void> write_path_tar(const std::string& path, const std::string& top, int out_fd,
                            const std::string& what, const EntryRules& rules) {
  std::unique_ptr<struct archive, ArchiveDeleter> disk(archive_read_disk_new());
  if (!disk) {
    return fail(Errc::Internal, "tar " + what + ": out of memory");
  }
  archive_read_disk_set_symlink_hybrid(disk.get());
  BERTH_TRY(TarWriter w, open_tar_writer(out_fd, what));
  if (archive_read_disk_open(disk.get(), path.c_str()) != ARCHIVE_OK) {
    return fail(Errc::Internal, "read " + what + ": " + archive_error_string(disk.get()));
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    int r = archive_read_next_header2(disk.get(), e.get());
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      return fail(Errc::Internal, "read " + what + ": " + archive_error_string(disk.get()));
    }
    archive_read_disk_descend(disk.get());
    std::string name = archive_entry_pathname(e.get());
    std::string suffix = name.size() > path.size() ? name.substr(path.size()) : "";
    std::string out_name;
    if (top.empty()) {
      if (suffix.empty()) {
        continue;
      }
      out_name = suffix.substr(1);
    } else {
      out_name = top + suffix;
    }
    archive_entry_set_pathname(e.get(), out_name.c_str());
    archive_entry_set_uname(e.get(), nullptr);
    archive_entry_set_gname(e.get(), nullptr);
    const std::string source = rules.way == IdWay::ToHost ? name : what + suffix;
    BERTH_TRYV(apply_rules(e.get(), rules, source, "\"" + source + "\""));
    if (archive_write_header(w.get(), e.get()) < ARCHIVE_WARN) {
      return fail(Errc::Internal, "tar " + what + ": " + archive_error_string(w.get()));
    }
    if (archive_entry_filetype(e.get()) == AE_IFREG && archive_entry_size(e.get()) > 0) {
      BERTH_TRYV(copy_entry_data(disk.get(), w.get(), buf, what, [&] {
        return Error(Errc::Internal,
                     "read " + what + "/" + out_name + ": " + archive_error_string(disk.get()));
      }));
    }
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    return fail(Errc::Internal, "tar " + what + ": " + archive_error_string(w.get()));
  }
  return {};
}

// libarchive reads the tar a user gives (stdin) through this.
struct FdSource {
  int fd = -1;
  int err = 0;
  std::vector<char> buf = std::vector<char>(1 << 16);

  static la_ssize_t read(struct archive*, void* self, const void** out) {
    auto* s = static_cast<FdSource*>(self);
    for (;;) {
      ssize_t n = ::read(s->fd, s->buf.data(), s->buf.size());
      if (n >= 0) {
        *out = s->buf.data();
        return n;
      }
      if (errno != EINTR) {
        s->err = errno;
        return -1;
      }
    }
  }
};

// The tar (plain or compressed) read from `in_fd`, written uncompressed to `out_fd` with
// `rules` applied to each entry; `what` names the source in errors. With `out_fd` -1 nothing is
// written: each entry is only checked against `rules` (an owner the namespace cannot hold, a
// refused replacement).
Result<void> rewrite_tar(int in_fd, int out_fd, const EntryRules& rules, const std::string& what) {
  std::unique_ptr<struct archive, ArchiveDeleter> r(archive_read_new());
  if (!r) {
    return fail(Errc::Internal, "read " + what + ": out of memory");
  }
  archive_read_support_filter_all(r.get());
  archive_read_support_format_tar(r.get());
  archive_read_support_format_gnutar(r.get());
  FdSource src;
  src.fd = in_fd;
  auto read_error = [&]() -> Error {
    if (src.err != 0) {
      return Error::from_errno("read", what, src.err);
    }
    const char* m = archive_error_string(r.get());
    return Error(Errc::InvalidArgument, "read " + what + ": " + (m ? m : "not a tar archive"));
  };
  if (archive_read_open(r.get(), &src, nullptr, &FdSource::read, nullptr) != ARCHIVE_OK) {
    return fail(read_error());
  }
  TarWriter w;
  if (out_fd >= 0) {
    BERTH_TRY(w, open_tar_writer(out_fd, what));
  }
  std::vector<char> buf(1 << 16);
  for (;;) {
    archive_entry* e = nullptr;
    int rc = archive_read_next_header(r.get(), &e);
    if (rc == ARCHIVE_EOF) {
      break;
    }
    if (rc < ARCHIVE_WARN) {
      return fail(read_error());
    }
    const char* name = archive_entry_pathname(e);
    const std::string entry = std::string("entry \"") + (name ? name : "") + "\" of " + what;
    BERTH_TRYV(apply_rules(e, rules, entry, entry));
    if (!w) {
      // Read past the data (archive_read_data_skip is not among the functions berth loads).
      la_ssize_t n = 0;
      while ((n = archive_read_data(r.get(), buf.data(), buf.size())) > 0) {
      }
      if (n < 0) {
        return fail(read_error());
      }
      continue;
    }
    if (archive_write_header(w.get(), e) < ARCHIVE_WARN) {
      return fail(Errc::Internal, "tar " + entry + ": " + archive_error_string(w.get()));
    }
    BERTH_TRYV(copy_entry_data(r.get(), w.get(), buf, entry, read_error));
  }
  if (w && archive_write_close(w.get()) != ARCHIVE_OK) {
    return fail(Errc::Internal, "tar " + what + ": " + archive_error_string(w.get()));
  }
  return {};
}

Result<UniqueFd> temp_file(engine::Engine& eng) {
  const std::string dir = eng.graphroot() + "/tmp";
  BERTH_TRYV(util::make_dirs(dir, 0700));
  UniqueFd fd(::open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!fd) {
    return fail_errno("create temporary file in", dir);
  }
  return fd;
}

Result<void> rewind(int fd) {
  if (::lseek(fd, 0, SEEK_SET) != 0) {
    return fail_errno("seek", "the copy's temporary file");
  }
  return {};
}

Result<void> extract(int tar_fd, const std::string& dir, const std::string& what) {
  sdk::ExtractOptions eo;
  eo.whiteouts = sdk::WhiteoutFormat::Delete;
  eo.allow_devices = true;
  eo.restore_ownership = true;
  auto r = sdk::extract_layer(tar_fd, dir, eo);
  if (!r) {
    return fail(std::move(r).error().wrap("copy to " + what));
  }
  return {};
}

// The tar on `in_fd` rewritten by `rules` (`source` names it) and extracted into `dir` as it
// is read, through a pipe from a thread: no copy of it on disk. `rules` must refuse nothing a
// later entry could reveal (no guard), or a refusal would come after earlier entries were
// written.
Result<void> rewrite_and_extract(int in_fd, const EntryRules& rules, const std::string& source,
                                 const std::string& dir, const std::string& what) {
  assert(rules.guard_fd < 0);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("create a pipe for the copy to", what);
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  Result<void> written;
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // an extraction that stops gives EPIPE, not death
    written = rewrite_tar(in_fd, wr.get(), rules, source);
    writer_failed = !written;
    wr.reset();
  });
  auto extracted = extract(rd.get(), dir, what);
  // A failed rewrite ends the stream early: the extraction's error is then only its echo.
  const bool writer_failed_first = writer_failed;
  if (extracted) {
    // Extraction may stop at the end-of-archive blocks before the writer has written them all.
    std::vector<char> buf(1 << 16);
    for (;;) {
      ssize_t n = ::read(rd.get(), buf.data(), buf.size());
      if (n > 0 || (n < 0 && errno == EINTR)) {
        continue;
      }
      if (n < 0) {
        extracted = fail_errno("read the end of the rewritten tar for", what);
      }
      break;
    }
  }
  rd.reset();
  writer.join();
  if (!written && (extracted || writer_failed_first)) {
    return fail(std::move(written).error().wrap("copy to " + what));
  }
  return extracted;
}

Error not_found_in(const ContainerRecord& rec, const std::string& path) {
  return Error(Errc::NotFound, "could not find \"" + path + "\" in container " + rec.name +
                                   ": no such file or directory");
}

// The primary uid/gid of the container's user, as the container sees them: `-u`, else the
// image's USER, resolved in the container's own /etc/passwd and /etc/group (under `rootfs`).
// `purpose` ends the message of a user that does not resolve ("to own the copy (...)").
Result<sdk::Owner> container_user(engine::Engine& eng, const ContainerRecord& rec,
                                  const std::string& rootfs, const std::string& purpose) {
  std::string user = rec.options.user;
  if (user.empty()) {
    BERTH_TRY(auto layers, open_layers(eng));
    BERTH_TRY(auto img, layers->image(rec.image_id));
    if (!img) {
      // The image went: its USER lives on in the container's spec, already resolved.
      const std::string path = rec.bundle + "/config.json";
      BERTH_TRY(std::string text, util::read_file(path));
      try {
        const json u = json::parse(text).at("process").at("user");
        return sdk::Owner{u.at("uid").get<uint32_t>(), u.at("gid").get<uint32_t>()};
      } catch (const json::exception& e) {
        return fail(Errc::Corrupt, path + ": process.user: " + e.what());
      }
    }
    try {
      const json cfg = json::parse(img->config);
      if (cfg.contains("config") && cfg["config"].is_object() && cfg["config"].contains("User") &&
          cfg["config"]["User"].is_string()) {
        user = cfg["config"]["User"].get<std::string>();
      }
    } catch (const json::exception& e) {
      return fail(Errc::Corrupt, "image " + img->id + ": config: " + e.what());
    }
  }
  auto u = spec::resolve_user(rootfs, user);
  if (!u) {
    return fail(std::move(u).error().wrap("resolve the user \"" + user + "\" of container " +
                                          rec.name + " " + purpose));
  }
  return sdk::Owner{u->uid, u->gid};
}

// The rules of a copy into `dir` (`shown` in messages): refuse dir/non-dir replacements there
// unless `overwrite`.
void guard(EntryRules& rules, int dir, const std::string& shown, bool overwrite) {
  if (!overwrite) {
    rules.guard_fd = dir;
    rules.guard_shown = shown;
  }
}

// The host ids the container's user (container_user) stands for; `what` names the copy.
Result<sdk::Owner> container_user_on_host(engine::Engine& eng, const ContainerRecord& rec,
                                          const std::string& rootfs, const sdk::IdMappings& ids,
                                          const std::string& what) {
  BERTH_TRY(auto owner,
            container_user(eng, rec, rootfs,
                           "to own the copy (--archive=false keeps the source's owners)"));
  auto uid = ids.uids.to_host(owner.uid);
  auto gid = ids.gids.to_host(owner.gid);
  if (!uid || !gid) {
    return fail(Errc::InvalidArgument,
                "copy to " + what + ": the container's user " + std::to_string(owner.uid) + ":" +
                    std::to_string(owner.gid) + " is outside its user namespace's maps (uids " +
                    ids.uids.describe() + ", gids " + ids.gids.describe() +
                    "): use --archive=false to keep the source's owners");
  }
  return sdk::Owner{*uid, *gid};
}

// CTR:PATH -> host path or `out_fd`. Files copied to the host belong to the user running the
// copy (Podman and Docker); a tar on `out_fd` carries the owners `o.tar_owners` says.
Result<void> copy_out(engine::Engine& eng, const std::string& ctr, const std::string& cpath,
                      const std::string& host, int out_fd, const CopyOptions& o) {
  BERTH_TRY(auto c, lock_container(eng, ctr, true));
  EntryRules rules;
  BERTH_TRY(rules.ids, id_mappings(c.rec.options.resources));
  rules.way = IdWay::ToContainer;
  BERTH_TRY(auto rootfs, RootfsMount::make(eng, c.rec));
  if (host != "-") {
    rules.owner = sdk::Owner{::getuid(), ::getgid()};
  } else if (o.tar_owners == CopyOptions::TarOwners::ContainerUser) {
    // As the container sees its user: a tar leaving the container carries the container's ids
    // (Podman as root writes the host ids of a user namespace container's user instead).
    BERTH_TRY(rules.owner, container_user(eng, c.rec, rootfs.path(), "to own the tar's entries"));
  }
  Located loc = locate(c.rec, rootfs.path(), cpath);
  BERTH_TRY(auto src, open_in_root(loc.root, loc.rel));
  if (!src) {
    return fail(not_found_in(c.rec, cpath));
  }
  BERTH_TRY(auto sst, stat_fd(src->get(), cpath));
  const bool content = wants_content(cpath) && S_ISDIR(sst.st_mode);
  std::string top = content ? "" : base_name(cpath);
  if (top == "/" || top.empty()) {
    top.clear();
  }
  const std::string what = c.rec.name + ":" + cpath;
  if (host == "-") {
    return write_path_tar(fd_path(src->get()), top.empty() && !S_ISDIR(sst.st_mode) ? "file" : top,
                          out_fd, what, rules);
  }
  std::string into;
  struct stat hst {};
  if (::stat(host.c_str(), &hst) == 0) {
    if (S_ISDIR(hst.st_mode)) {
      into = host;
    } else {
      if (S_ISDIR(sst.st_mode)) {
        return fail(Errc::InvalidArgument, "cannot copy directory " + what + " to file " + host);
      }
      into = parent_of(host);
      top = base_name(host);
    }
  } else if (errno == ENOENT) {
    into = parent_of(host);
    if (into.empty()) {
      into = ".";
    }
    struct stat pst {};
    if (::stat(into.c_str(), &pst) != 0 || !S_ISDIR(pst.st_mode)) {
      return fail(Errc::NotFound, "copy to " + host + ": directory " + into + " does not exist");
    }
    top = base_name(host);
  } else {
    return fail_errno("stat", host);
  }
  UniqueFd into_fd(::open(into.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!into_fd) {
    return fail_errno("open the destination directory", into);
  }
  guard(rules, into_fd.get(), into, o.overwrite);
  BERTH_TRY(auto tmp, temp_file(eng));
  BERTH_TRYV(write_path_tar(fd_path(src->get()), top, tmp.get(), what, rules));
  BERTH_TRYV(rewind(tmp.get()));
  return extract(tmp.get(), fd_path(into_fd.get()), host);
}

// Host path or `in_fd` -> CTR:PATH.
Result<void> copy_in(engine::Engine& eng, const std::string& host, int in_fd,
                     const std::string& ctr, const std::string& cpath, const CopyOptions& o) {
  BERTH_TRY(auto c, lock_container(eng, ctr, true));
  EntryRules rules;
  BERTH_TRY(rules.ids, id_mappings(c.rec.options.resources));
  rules.way = IdWay::ToHost;
  BERTH_TRY(auto rootfs, RootfsMount::make(eng, c.rec));
  const std::string what = c.rec.name + ":" + cpath;
  if (o.chown_to_user) {
    BERTH_TRY(rules.owner, container_user_on_host(eng, c.rec, rootfs.path(), rules.ids, what));
  }
  Located loc = locate(c.rec, rootfs.path(), cpath);
  BERTH_TRY(auto dst, open_in_root(loc.root, loc.rel));
  if (host == "-") {
    if (!dst) {
      return fail(not_found_in(c.rec, cpath));
    }
    BERTH_TRY(auto dst_st, stat_fd(dst->get(), cpath));
    if (!S_ISDIR(dst_st.st_mode)) {
      return fail(Errc::InvalidArgument,
                  "destination " + what + " must be a directory when copying from stdin");
    }
    const std::string dir = fd_path(dst->get());
    const std::string source = "the tar on stdin";
    if (rules.ids.identity() && !rules.owner && o.overwrite) {
      return extract(in_fd, dir, what);
    }
    // The container's ids in the tar (or its user's) become the host ids its user namespace
    // maps them to, rewritten as the tar streams into the container. An entry that can be
    // refused (a replacement without --overwrite, an owner outside the namespace with
    // --archive=false) is refused before anything is written: a file on stdin is read twice
    // (checked, then copied); a pipe goes through a temporary file.
    const bool may_refuse = !o.overwrite || (!rules.owner && !rules.ids.identity());
    if (!may_refuse) {
      return rewrite_and_extract(in_fd, rules, source, dir, what);
    }
    EntryRules checked = rules;
    guard(checked, dst->get(), what, o.overwrite);
    struct stat in_st {};
    if (::fstat(in_fd, &in_st) != 0) {
      return fail_errno("stat", source);
    }
    const off_t start = S_ISREG(in_st.st_mode) ? ::lseek(in_fd, 0, SEEK_CUR) : -1;
    if (start >= 0) {
      if (auto r = rewrite_tar(in_fd, -1, checked, source); !r) {
        return fail(std::move(r).error().wrap("copy to " + what));
      }
      if (::lseek(in_fd, start, SEEK_SET) != start) {
        return fail_errno("seek back to the start of", source);
      }
      return rewrite_and_extract(in_fd, rules, source, dir, what);
    }
    BERTH_TRY(auto tmp, temp_file(eng));
    if (auto r = rewrite_tar(in_fd, tmp.get(), checked, source); !r) {
      return fail(std::move(r).error().wrap("copy to " + what));
    }
    BERTH_TRYV(rewind(tmp.get()));
    return extract(tmp.get(), dir, what);
  }
  struct stat hst {};
  if (::stat(host.c_str(), &hst) != 0) {
    return fail(Error::from_errno("copy from", host, errno));
  }
  const bool content = wants_content(host) && S_ISDIR(hst.st_mode);
  std::string top;
  std::optional<UniqueFd> into;
  bool dst_is_dir = false;
  if (dst) {
    BERTH_TRY(auto dst_st, stat_fd(dst->get(), cpath));
    dst_is_dir = S_ISDIR(dst_st.st_mode);
  }
  std::string into_shown = what;
  if (dst && dst_is_dir) {
    into = std::move(dst);
    top = content ? "" : base_name(host);
  } else {
    if (dst && S_ISDIR(hst.st_mode)) {
      return fail(Errc::InvalidArgument, "cannot copy directory " + host + " to file " + what);
    }
    // Not there (or a file to replace): the parent must be a directory of the container.
    Located ploc = locate(c.rec, rootfs.path(), parent_of(cpath));
    BERTH_TRY(auto parent, open_in_root(ploc.root, ploc.rel));
    bool parent_dir = false;
    if (parent) {
      BERTH_TRY(auto pst, stat_fd(parent->get(), cpath));
      parent_dir = S_ISDIR(pst.st_mode);
    }
    if (!parent_dir) {
      return fail(Errc::NotFound, "copy to " + what + ": directory " + parent_of(cpath) +
                                      " does not exist in the container");
    }
    into = std::move(parent);
    into_shown = c.rec.name + ":" + parent_of(cpath);
    top = base_name(cpath);
  }
  if (top.empty() || top == "/" || top == ".") {
    top = content ? "" : base_name(fs::path(host).lexically_normal().string());
  }
  guard(rules, into->get(), into_shown, o.overwrite);
  BERTH_TRY(auto tmp, temp_file(eng));
  if (auto r = write_path_tar(host, top, tmp.get(), host, rules); !r) {
    return fail(std::move(r).error().wrap("copy " + host + " to " + what));
  }
  BERTH_TRYV(rewind(tmp.get()));
  return extract(tmp.get(), fd_path(into->get()), what);
}

// "CTR:PATH" -> (CTR, PATH); nullopt for a host path. A path with a slash before the colon, or
// starting with "." or "/", is a host path (as Podman).
std::optional<std::pair<std::string, std::string>> split_container_path(const std::string& s) {
  auto colon = s.find(':');
  if (colon == std::string::npos || colon == 0) {
    return std::nullopt;
  }
  if (s.front() == '/' || s.front() == '.' || s.substr(0, colon).find('/') != std::string::npos) {
    return std::nullopt;
  }
  return std::make_pair(s.substr(0, colon), s.substr(colon + 1));
}

std::string user_mounts_file(engine::Engine& eng, const std::string& id) {
  return run_dir(eng.runroot(), id) + "/user-mounts";
}

// "<count>\n<path>\n" (mounts_on_remove reads the count too).
std::pair<int, std::string> read_user_mounts(engine::Engine& eng, const std::string& id) {
  auto text = util::read_file(user_mounts_file(eng, id));
  if (!text) {
    return {0, ""};
  }
  auto nl = text->find('\n');
  int n = std::atoi(text->c_str());
  std::string path = nl == std::string::npos ? "" : text->substr(nl + 1);
  while (!path.empty() && path.back() == '\n') {
    path.pop_back();
  }
  return {n, path};
}

}  // namespace

Result<void> copy(engine::Engine& eng, const CopyOptions& o) {
  auto src = split_container_path(o.source);
  auto dst = split_container_path(o.destination);
  if (src && dst) {
    return fail(Errc::InvalidArgument,
                "copying between containers is not supported: copy to the host first");
  }
  if (!src && !dst) {
    return fail(Errc::InvalidArgument,
                "one of the paths must be a container path (CONTAINER:PATH)");
  }
  if (src) {
    std::string cpath = src->second.empty() ? "/" : src->second;
    if (cpath.front() != '/') {
      cpath = "/" + cpath;
    }
    return copy_out(eng, src->first, cpath, o.destination, o.stdout_fd, o);
  }
  std::string cpath = dst->second.empty() ? "/" : dst->second;
  if (cpath.front() != '/') {
    cpath = "/" + cpath;
  }
  return copy_in(eng, o.source, o.stdin_fd, dst->first, cpath, o);
}

char change_letter(sdk::Change::Kind k) {
  switch (k) {
    case sdk::Change::Kind::Added:
      return 'A';
    case sdk::Change::Kind::Deleted:
      return 'D';
    case sdk::Change::Kind::Modified:
      break;
  }
  return 'C';
}

namespace {

// The files and directories berth makes in a container's layer to mount over them, as Podman
// lists them (libpod/diff.go initInodes): no change of the user's. A commit keeps them.
bool engine_mount_point(std::string_view path) {
  static constexpr std::string_view kPoints[] = {
      "/dev", "/etc/hostname",      "/etc/hosts",  "/etc/resolv.conf", "/etc/mtab", "/proc",
      "/run", "/run/.containerenv", "/run/notify", "/run/secrets",     "/sys"};
  return std::find(std::begin(kPoints), std::end(kPoints), path) != std::end(kPoints);
}

// `changes` without the engine's mount points, nor the directories they alone changed (/etc for
// a new /etc/hostname), sorted by path.
std::vector<sdk::Change> without_mount_points(std::vector<sdk::Change> changes) {
  // Deepest first: a directory is judged after everything below it.
  auto depth = [](const std::string& p) { return std::count(p.begin(), p.end(), '/'); };
  std::stable_sort(changes.begin(), changes.end(), [&](const sdk::Change& a, const sdk::Change& b) {
    return depth(a.path) > depth(b.path);
  });
  std::set<std::string> dropped_below;
  std::set<std::string> kept_below;
  std::vector<sdk::Change> out;
  for (auto& c : changes) {
    const bool drop = engine_mount_point(c.path) ||
                      (c.kind == sdk::Change::Kind::Modified && dropped_below.count(c.path) != 0 &&
                       kept_below.count(c.path) == 0);
    auto& below = drop ? dropped_below : kept_below;
    for (size_t slash = c.path.rfind('/'); slash != std::string::npos && slash > 0;
         slash = c.path.rfind('/', slash - 1)) {
      below.insert(c.path.substr(0, slash));
    }
    if (!drop) {
      out.push_back(std::move(c));
    }
  }
  std::sort(out.begin(), out.end(),
            [](const sdk::Change& a, const sdk::Change& b) { return a.path < b.path; });
  return out;
}

}  // namespace

Result<std::vector<sdk::Change>> diff(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto c, lock_container(eng, name_or_id, true));
  BERTH_TRY(auto layers, open_layers(eng));
  BERTH_TRY(auto img, layers->image(c.rec.image_id));
  BERTH_TRY(auto* driver, eng.storage());
  const std::string parent = img ? img->top_layer : "";
  auto changes = driver->changes(c.rec.layer_id, parent);
  if (!changes) {
    return fail(std::move(changes).error().wrap("diff container " + c.rec.name));
  }
  return without_mount_points(std::move(*changes));
}

Result<void> export_rootfs(engine::Engine& eng, const std::string& name_or_id, int out_fd) {
  BERTH_TRY(auto c, lock_container(eng, name_or_id, true));
  sdk::TreeTarOptions to;
  to.whiteouts = sdk::WhiteoutFormat::Delete;
  BERTH_TRY(to.ids, id_mappings(c.rec.options.resources));  // as the container sees its files
  BERTH_TRY(auto rootfs, RootfsMount::make(eng, c.rec));
  auto r = sdk::write_tree_tar(rootfs.path(), out_fd, to);
  if (!r) {
    return fail(std::move(r).error().wrap("export container " + c.rec.name));
  }
  return {};
}

Result<std::string> mount(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto c, lock_container(eng, name_or_id, true));
  BERTH_TRY(auto* driver, eng.storage());
  auto path = driver->mount(c.rec.layer_id, sdk::MountOptions{});
  if (!path) {
    return fail(std::move(path).error().wrap("mount container " + c.rec.name));
  }
  auto [n, _] = read_user_mounts(eng, c.rec.id);
  BERTH_TRYV(util::make_dirs(run_dir(eng.runroot(), c.rec.id), 0700));
  auto w = util::write_file_atomic(user_mounts_file(eng, c.rec.id),
                                   std::to_string(n + 1) + "\n" + *path + "\n");
  if (!w) {
    (void)driver->unmount(c.rec.layer_id);
    return fail(std::move(w).error());
  }
  emit_event(eng, c.rec, "mount");
  return *path;
}

Result<void> unmount(engine::Engine& eng, const std::string& name_or_id, bool force) {
  BERTH_TRY(auto c, lock_container(eng, name_or_id, true));
  auto [n, path] = read_user_mounts(eng, c.rec.id);
  if (n <= 0) {
    return fail(Errc::Conflict,
                "container " + c.rec.id + " is not mounted: use `berth container mount` first");
  }
  BERTH_TRY(auto* driver, eng.storage());
  const int times = force ? n : 1;
  for (int i = 0; i < times; ++i) {
    auto r = driver->unmount(c.rec.layer_id);
    if (!r) {
      return fail(std::move(r).error().wrap("unmount container " + c.rec.name));
    }
  }
  if (n - times <= 0) {
    ::unlink(user_mounts_file(eng, c.rec.id).c_str());
  } else {
    BERTH_TRYV(util::write_file_atomic(user_mounts_file(eng, c.rec.id),
                                       std::to_string(n - times) + "\n" + path + "\n"));
  }
  emit_event(eng, c.rec, "unmount");
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> mounted(engine::Engine& eng) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto all, db->all());
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& r : all) {
    auto [n, path] = read_user_mounts(eng, r.id);
    if (n > 0) {
      out.emplace_back(r.id, path);
    }
  }
  return out;
}

Result<std::string> commit(engine::Engine& eng, const std::string& name_or_id,
                           const CommitOptions& opts) {
  if (opts.format != "oci" && opts.format != "docker") {
    return fail(Errc::InvalidArgument,
                "unrecognized image type \"" + opts.format + "\" (use oci or docker)");
  }
  BERTH_TRY(auto c, lock_container(eng, name_or_id, true));
  BERTH_TRY(auto layers, open_layers(eng));
  BERTH_TRY(auto img, layers->image(c.rec.image_id));
  if (!img) {
    return fail(Errc::NotFound, "commit " + c.rec.name + ": its image " + c.rec.image_id +
                                    " was removed; the container's changes cannot be committed");
  }
  // The container's settings become the image's, as Podman commits them.
  const auto& o = c.rec.options;
  json base_config = json::object();
  try {
    base_config = json::parse(img->config).value("config", json::object());
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, "image " + img->id + ": config: " + e.what());
  }
  json overrides = json::object();
  if (!o.command.empty()) {
    overrides["Cmd"] = o.command;
  }
  if (o.entrypoint) {
    overrides["Entrypoint"] = *o.entrypoint;
  }
  if (!o.env.empty()) {
    std::vector<std::string> env;
    if (base_config.contains("Env") && base_config["Env"].is_array()) {
      env = base_config["Env"].get<std::vector<std::string>>();
    }
    overrides["Env"] = spec::merge_env(env, o.env);
  }
  if (!o.workdir.empty()) {
    overrides["WorkingDir"] = o.workdir;
  }
  if (!o.user.empty()) {
    overrides["User"] = o.user;
  }
  if (!o.labels.empty()) {
    json labels = base_config.value("Labels", json::object());
    if (!labels.is_object()) {
      labels = json::object();
    }
    for (const auto& [k, v] : o.labels) {
      labels[k] = v;
    }
    overrides["Labels"] = labels;
  }

  ContainerState st = read_state(eng.runroot(), c.rec);
  std::optional<sdk::RuntimePtr> paused;
  if (opts.pause && st.status == Status::Running) {
    auto rt = make_runtime(eng, st.runtime.empty() ? "native" : st.runtime);
    if (rt) {
      if (auto p = (*rt)->pause(c.rec.id); p) {
        paused = std::move(*rt);
      } else {
        spdlog::warn("commit {}: could not pause the container ({}); committing it running",
                     c.rec.name, p.error().message());
      }
    }
  }
  BERTH_TRY(auto* driver, eng.storage());
  // With a user namespace the diff already holds the container's ids, as export and cp write
  // them (the overlay driver reads the upper dir through a mount idmapped with the inverse of
  // the layer's recorded map; the kernel shows an unmapped id as 65534): no second mapping here.
  auto diff_fd = driver->diff(c.rec.layer_id, img->top_layer);
  if (paused) {
    if (auto r = (*paused)->resume(c.rec.id); !r) {
      spdlog::warn("commit {}: resume: {}", c.rec.name, r.error().message());
    }
  }
  if (!diff_fd) {
    return fail(std::move(diff_fd).error().wrap("commit container " + c.rec.name));
  }
  image::CommitOptions co;
  co.base_image_id = img->id;
  co.diff_fd = diff_fd->get();
  co.reference = opts.reference;
  co.changes = opts.changes;
  co.message = opts.message;
  co.author = opts.author;
  co.docker_format = opts.format == "docker";
  co.config_overrides = std::move(overrides);
  std::string cmd;
  for (const auto& a : c.rec.path_args) {
    cmd += (cmd.empty() ? "" : " ") + a;
  }
  co.created_by = cmd;
  auto id = image::commit_image(*layers, co);
  if (!id) {
    return fail(std::move(id).error().wrap("commit container " + c.rec.name));
  }
  emit_event(eng, c.rec, "commit");
  return *id;
}

}  // namespace berth::container
