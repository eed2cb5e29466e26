// Volume use by containers: mount counts in the runroot, option mounts, copy-up and chown.
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <map>

#include "berth/sdk/layer_archive.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "internal.hpp"

namespace berth::volume {

namespace fs = std::filesystem;

namespace internal {

Result<FileLock> FileLock::open(const fs::path& path, int how, bool make_parent) {
  if (make_parent) {
    BERTH_TRYV(util::make_dirs(path.parent_path(), 0700));
  }
  BERTH_TRY(auto fd, util::open_file(path, O_RDWR | O_CREAT, 0600));
  while (::flock(fd.get(), how) != 0) {
    if (errno != EINTR) {
      return fail_errno("lock", path.string());
    }
  }
  return FileLock(std::move(fd));
}

Result<FileLock> FileLock::try_open(const fs::path& path, int how) {
  BERTH_TRY(auto fd, util::open_file(path, O_RDWR | O_CREAT, 0600));
  if (::flock(fd.get(), how | LOCK_NB) != 0) {
    return fail_errno("lock", path.string());
  }
  return FileLock(std::move(fd));
}

Result<uint64_t> read_count_fd(int fd, const fs::path& path) {
  char buf[32];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n < 0) {
    return fail_errno("read", path.string());
  }
  if (n == 0) {
    return 0;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(buf, buf + n, v);
  if (ec != std::errc()) {
    return fail(Errc::Corrupt, "mount count " + path.string() +
                                   " is corrupt (delete it when no container uses the volume)");
  }
  (void)p;
  return v;
}

Result<void> write_count_fd(int fd, const fs::path& path, uint64_t count) {
  std::string s = std::to_string(count);
  if (::ftruncate(fd, 0) != 0) {
    return fail_errno("truncate", path.string());
  }
  if (::pwrite(fd, s.data(), s.size(), 0) != static_cast<ssize_t>(s.size())) {
    return fail_errno("write", path.string());
  }
  return {};
}

namespace {

struct MountOpts {
  unsigned long flags = 0;
  bool readonly_bind = false;
  std::string data;
};

MountOpts split_mount_options(const std::string& o) {
  static const std::map<std::string, std::pair<unsigned long, bool>> kFlags = {
      {"ro", {MS_RDONLY, true}},
      {"rw", {MS_RDONLY, false}},
      {"nosuid", {MS_NOSUID, true}},
      {"suid", {MS_NOSUID, false}},
      {"nodev", {MS_NODEV, true}},
      {"dev", {MS_NODEV, false}},
      {"noexec", {MS_NOEXEC, true}},
      {"exec", {MS_NOEXEC, false}},
      {"sync", {MS_SYNCHRONOUS, true}},
      {"async", {MS_SYNCHRONOUS, false}},
      {"noatime", {MS_NOATIME, true}},
      {"atime", {MS_NOATIME, false}},
      {"nodiratime", {MS_NODIRATIME, true}},
      {"relatime", {MS_RELATIME, true}},
      {"strictatime", {MS_STRICTATIME, true}},
      {"bind", {MS_BIND, true}},
      {"rbind", {MS_BIND | MS_REC, true}},
  };
  MountOpts m;
  size_t start = 0;
  while (start <= o.size()) {
    auto comma = o.find(',', start);
    std::string opt =
        o.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? o.size() + 1 : comma + 1;
    if (opt.empty()) {
      continue;
    }
    auto it = kFlags.find(opt);
    if (it == kFlags.end()) {
      m.data += (m.data.empty() ? "" : ",") + opt;
    } else if (it->second.second) {
      m.flags |= it->second.first;
    } else {
      m.flags &= ~it->second.first;
    }
  }
  if ((m.flags & MS_BIND) != 0 && (m.flags & MS_RDONLY) != 0) {
    m.readonly_bind = true;  // a bind ignores MS_RDONLY: remount afterwards
  }
  return m;
}

// Network and FUSE file systems need mount(8)'s helpers (mount.nfs, mount.cifs, ...), as Podman
// always uses mount(8) for option volumes.
bool needs_helper(const std::string& type) {
  return type == "nfs" || type == "nfs4" || type == "cifs" || type == "smb3" || type == "ceph" ||
         type == "glusterfs" || type.rfind("fuse", 0) == 0 || type == "sshfs";
}

Result<void> run_mount_helper(const std::string& type, const std::string& device,
                              const std::string& o, const std::string& target) {
  std::vector<std::string> args = {"mount", "-t", type};
  if (!o.empty()) {
    args.push_back("-o");
    args.push_back(o);
  }
  args.push_back(device);
  args.push_back(target);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    return fail_errno("pipe for", "mount");
  }
  UniqueFd rd(pipefd[0]);
  UniqueFd wr(pipefd[1]);
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork for", "mount");
  }
  if (pid == 0) {
    ::dup2(pipefd[1], STDERR_FILENO);
    ::dup2(pipefd[1], STDOUT_FILENO);
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execvp("mount", argv.data());
    ::_exit(127);
  }
  wr = UniqueFd();
  std::string output;
  char buf[1024];
  ssize_t n;
  while ((n = ::read(rd.get(), buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) {
      output.append(buf, static_cast<size_t>(n));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("wait for", "mount");
    }
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!output.empty() && output.back() == '\n') {
      output.pop_back();
    }
    return fail(
        Errc::Internal,
        "mount -t " + type + " " + device + " on " + target + " failed: " +
            (output.empty() ? "exit status " + std::to_string(WEXITSTATUS(status)) : output));
  }
  return {};
}

std::string opt(const Volume& v, const char* key) {
  auto it = v.options.find(key);
  return it == v.options.end() ? std::string() : it->second;
}

}  // namespace

Result<void> mount_volume(const Volume& v) {
  std::string type = opt(v, "type");
  std::string device = opt(v, "device");
  std::string o = opt(v, "o");
  const std::string& target = v.mountpoint;
  if (needs_helper(type)) {
    BERTH_TRYV(run_mount_helper(type, device, o, target));
  } else {
    auto m = split_mount_options(o);
    bool bind = (m.flags & MS_BIND) != 0;
    if (type == "none" && !bind) {
      return fail(Errc::InvalidArgument,
                  "volume " + v.name + ": type=none needs o=bind (and device=HOST_PATH)");
    }
    if (device.empty()) {
      device = type == "tmpfs" ? "tmpfs" : "";
    }
    if (device.empty()) {
      return fail(Errc::InvalidArgument, "volume " + v.name + ": option device= is required");
    }
    const char* fstype = bind ? nullptr : type.c_str();
    if (::mount(device.c_str(), target.c_str(), fstype, m.flags,
                m.data.empty() ? nullptr : m.data.c_str()) != 0) {
      int err = errno;
      return fail(
          Error::from_errno("mount " + (bind ? std::string("bind") : type) + " " + device + " on",
                            target, err)
              .hint("check the volume's options: berth volume inspect " + v.name));
    }
    if (m.readonly_bind && ::mount("", target.c_str(), nullptr,
                                   MS_REMOUNT | MS_BIND | (m.flags & ~MS_REC), nullptr) != 0) {
      int err = errno;
      ::umount2(target.c_str(), MNT_DETACH);
      return fail(Error::from_errno("remount read-only", target, err));
    }
  }
  if (v.uid || v.gid) {
    if (::chown(target.c_str(), v.uid ? *v.uid : static_cast<uid_t>(-1),
                v.gid ? *v.gid : static_cast<gid_t>(-1)) != 0) {
      spdlog::warn("chown volume {} mount {}: {}", v.name, target, std::strerror(errno));
    }
  }
  return {};
}

Result<void> unmount_volume(const Volume& v) {
  if (::umount2(v.mountpoint.c_str(), 0) != 0) {
    if (errno == EINVAL || errno == ENOENT) {
      return {};  // not mounted (a reboot cleared it)
    }
    if (errno != EBUSY || ::umount2(v.mountpoint.c_str(), MNT_DETACH) != 0) {
      return fail_errno("unmount volume " + v.name + " at", v.mountpoint);
    }
  }
  return {};
}

Result<bool> is_mount_point(const fs::path& path) {
  struct statx a {};
  struct statx b {};
  if (::statx(AT_FDCWD, path.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_MNT_ID, &a) !=
      0) {
    return errno == ENOENT ? Result<bool>(false) : fail_errno("stat", path.string());
  }
  if (::statx(AT_FDCWD, path.parent_path().c_str(), AT_SYMLINK_NOFOLLOW,
              STATX_BASIC_STATS | STATX_MNT_ID, &b) != 0) {
    return fail_errno("stat", path.parent_path().string());
  }
  if ((a.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (a.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  if ((a.stx_mask & STATX_MNT_ID) != 0 && (b.stx_mask & STATX_MNT_ID) != 0) {
    return a.stx_mnt_id != b.stx_mnt_id;
  }
  return a.stx_dev_major != b.stx_dev_major || a.stx_dev_minor != b.stx_dev_minor;
}

}  // namespace internal

namespace {

// The host path of `path` inside `root`, with symlinks resolved as if `root` were "/", so an
// image's symlink never leads the copy-up outside its rootfs. nullopt when it does not exist.
Result<std::optional<fs::path>> resolve_in_root(const fs::path& root, const fs::path& path) {
  int rootfd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0) {
    return fail_errno("open", root.string());
  }
  UniqueFd rfd(rootfd);
  struct open_how how {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  std::string rel = path.relative_path().string();
  if (rel.empty()) {
    rel = ".";
  }
  long fd = ::syscall(SYS_openat2, rootfd, rel.c_str(), &how, sizeof how);
  if (fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR) {
      return std::optional<fs::path>();
    }
    return fail_errno("resolve " + rel + " in", root.string());
  }
  UniqueFd pfd(static_cast<int>(fd));
  std::error_code ec;
  auto real = fs::read_symlink("/proc/self/fd/" + std::to_string(fd), ec);
  if (ec) {
    return fail(Error::from_errno("readlink", "/proc/self/fd/" + std::to_string(fd), ec.value()));
  }
  return std::optional<fs::path>(real);
}

Result<bool> dir_is_empty(const fs::path& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return fail_errno("open directory", dir.string());
  }
  bool empty = true;
  while (auto* e = ::readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  ::closedir(d);
  return empty;
}

}  // namespace

Result<std::string> VolumeStore::acquire(std::string_view name) {
  BERTH_TRYV(validate_name(name));
  BERTH_TRY(auto lock, internal::FileLock::open(count_file(name), LOCK_EX, true));
  BERTH_TRY(auto v, get(name));  // after locking: a removal in between is seen
  BERTH_TRY(uint64_t count, internal::read_count_fd(lock.fd(), count_file(name)));
  if (count == 0 && v.is_mount()) {
    // A mount without a count was left by a run root that is gone (a berth run with another
    // --runroot, or a lost count file): mount afresh, with the volume's options, rather than
    // stack a second mount on it.
    BERTH_TRY(bool stale, internal::is_mount_point(v.mountpoint));
    if (stale) {
      spdlog::debug("volume {}: replacing a mount at {} that no count records", v.name,
                    v.mountpoint);
      BERTH_TRYV(internal::unmount_volume(v));
    }
    BERTH_TRYV(internal::mount_volume(v));
    emit("mount", v);
  }
  if (auto r = internal::write_count_fd(lock.fd(), count_file(name), count + 1); !r) {
    if (count == 0 && v.is_mount()) {
      (void)internal::unmount_volume(v);
    }
    return fail(r.error());
  }
  return v.mountpoint;
}

Result<void> VolumeStore::release(std::string_view name) {
  BERTH_TRYV(validate_name(name));
  BERTH_TRY(auto lock, internal::FileLock::open(count_file(name), LOCK_EX, true));
  BERTH_TRY(auto v, get(name));
  BERTH_TRY(uint64_t count, internal::read_count_fd(lock.fd(), count_file(name)));
  if (count == 0) {
    spdlog::debug("volume {} released while not in use", v.name);
    return {};
  }
  if (count == 1 && v.is_mount()) {
    BERTH_TRYV(internal::unmount_volume(v));
    emit("unmount", v);
  }
  return internal::write_count_fd(lock.fd(), count_file(name), count - 1);
}

Result<bool> VolumeStore::copy_up(std::string_view name, const fs::path& image_rootfs,
                                  const fs::path& path_in_image) {
  BERTH_TRYV(validate_name(name));
  BERTH_TRY(auto lock, internal::FileLock::open(count_file(name), LOCK_EX, true));
  BERTH_TRY(auto v, get(name));
  if (!v.needs_copy_up) {
    return false;
  }
  bool copied = false;
  BERTH_TRY(bool empty, dir_is_empty(v.mountpoint));
  BERTH_TRY(auto src, resolve_in_root(image_rootfs, path_in_image));
  if (empty && src && v.options.count("nocopy") == 0) {
    struct stat st {};
    if (::stat(src->c_str(), &st) != 0) {
      return fail_errno("stat", src->string());
    }
    if (S_ISDIR(st.st_mode)) {
      BERTH_TRY(bool src_empty, dir_is_empty(*src));
      if (!src_empty) {
        if (auto r = sdk::copy_tree(*src, v.mountpoint); !r) {
          return fail(std::move(r).error().wrap("copy " + path_in_image.string() +
                                                " of the image into volume " + v.name));
        }
        copied = true;
      }
      // The volume takes the image directory's owner and mode (unless uid=/gid= were given).
      if (!v.uid && !v.gid && ::chown(v.mountpoint.c_str(), st.st_uid, st.st_gid) != 0) {
        return fail_errno("chown", v.mountpoint);
      }
      if (::chmod(v.mountpoint.c_str(), st.st_mode & 07777) != 0) {
        return fail_errno("chmod", v.mountpoint);
      }
    }
  }
  v.needs_copy_up = false;
  BERTH_TRYV(save(v));
  return copied;
}

Result<void> VolumeStore::chown_for_container(std::string_view name, uint32_t uid, uint32_t gid) {
  BERTH_TRYV(validate_name(name));
  BERTH_TRY(auto lock, internal::FileLock::open(count_file(name), LOCK_EX, true));
  BERTH_TRY(auto v, get(name));
  if (!v.needs_chown) {
    return {};
  }
  if (::chown(v.mountpoint.c_str(), uid, gid) != 0) {
    return fail_errno("chown", v.mountpoint);
  }
  v.needs_chown = false;
  return save(v);
}

}  // namespace berth::volume
