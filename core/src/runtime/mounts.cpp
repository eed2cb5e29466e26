#include "mounts.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "berth/sdk/unique_fd.hpp"
#include "tmpcopyup.hpp"

namespace berth::runtime {
namespace {

constexpr unsigned long kRemountable = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME |
                                       MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;

Result<UniqueFd> open_in_root(int root_fd, const std::string& rel, uint64_t flags) {
  open_how how{};
  how.flags = flags | O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, root_fd, rel.c_str(), &how, sizeof(how)));
  if (fd < 0) {
    return fail_errno("resolve in the rootfs", rel);
  }
  return UniqueFd(fd);
}

Result<std::string> fd_path(int fd) {
  char buf[4096];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) {
    return fail_errno("readlink", link);
  }
  return std::string(buf, static_cast<size_t>(n));
}

// The host path of <rootfs>/<dest>, resolved as if rootfs were "/", creating what is missing
// (directories; the last component as an empty file when `as_file`).
Result<std::string> resolve_target(int root_fd, const std::string& dest, bool as_file) {
  std::vector<std::string> parts;
  std::istringstream in(dest);
  std::string p;
  while (std::getline(in, p, '/')) {
    if (!p.empty() && p != ".") {
      parts.push_back(p);
    }
  }
  UniqueFd cur(::fcntl(root_fd, F_DUPFD_CLOEXEC, 3));
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    prefix += (prefix.empty() ? "" : "/") + parts[i];
    const bool last = i + 1 == parts.size();
    auto next = open_in_root(root_fd, prefix, 0);
    if (!next && next.error().sys_errno() == ENOENT) {
      if (last && as_file) {
        int fd = ::openat(cur.get(), parts[i].c_str(),
                          O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST) {
          return fail_errno("create mount point", dest);
        }
        if (fd >= 0) {
          ::close(fd);
        }
      } else if (::mkdirat(cur.get(), parts[i].c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno("create mount point", dest);
      }
      next = open_in_root(root_fd, prefix, 0);
    }
    if (!next) {
      return fail(std::move(next).error());
    }
    cur = std::move(*next);
  }
  return fd_path(cur.get());
}

Result<void> do_mount(const char* src, const std::string& dst, const char* type,
                      unsigned long flags, const std::string& data) {
  if (::mount(src, dst.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    return fail_errno(std::string("mount ") + (type ? type : (src ? src : "")) + " on", dst);
  }
  return {};
}

unsigned long existing_flags(const std::string& path) {
  struct statvfs st {};
  if (::statvfs(path.c_str(), &st) != 0) {
    return 0;
  }
  unsigned long f = 0;
  if (st.f_flag & ST_NOSUID) {
    f |= MS_NOSUID;
  }
  if (st.f_flag & ST_NODEV) {
    f |= MS_NODEV;
  }
  if (st.f_flag & ST_NOEXEC) {
    f |= MS_NOEXEC;
  }
  if (st.f_flag & ST_RDONLY) {
    f |= MS_RDONLY;
  }
  return f;
}

struct HostHierarchy {
  std::string mountpoint;
  std::string fstype;
  std::string options;  // controllers, e.g. "cpu" or "name=systemd"
};

std::vector<HostHierarchy> host_cgroup_hierarchies() {
  std::vector<HostHierarchy> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto sep = line.find(" - ");
    if (sep == std::string::npos) {
      continue;
    }
    std::istringstream head(line.substr(0, sep));
    std::string id, parent, devno, root, mountpoint;
    head >> id >> parent >> devno >> root >> mountpoint;
    std::istringstream tail(line.substr(sep + 3));
    std::string fstype, source, super;
    tail >> fstype >> source >> super;
    if ((fstype != "cgroup" && fstype != "cgroup2") ||
        mountpoint.rfind("/sys/fs/cgroup/", 0) != 0) {
      continue;
    }
    std::string opts;
    std::istringstream so(super);
    std::string o;
    while (std::getline(so, o, ',')) {
      if (o != "rw" && o != "ro") {
        opts += (opts.empty() ? "" : ",") + o;
      }
    }
    out.push_back({mountpoint, fstype, opts});
  }
  return out;
}

Result<void> mount_cgroup(int root_fd, const MountSpec& m, const std::string& target) {
  const unsigned long flags = m.flags & ~(MS_BIND | MS_REC);
  auto hierarchies = host_cgroup_hierarchies();
  bool unified_root = true;
  for (const auto& h : hierarchies) {
    unified_root &= h.fstype == "cgroup2";
  }
  if (hierarchies.empty() || unified_root) {
    return do_mount("cgroup2", target, "cgroup2", flags, "");
  }
  // v1 (or hybrid): a tmpfs with one mount per hierarchy, as runc lays it out.
  BERTH_TRYV(do_mount("tmpfs", target, "tmpfs", flags & ~MS_RDONLY, "mode=755"));
  for (const auto& h : hierarchies) {
    const std::string name = h.mountpoint.substr(std::string("/sys/fs/cgroup/").size());
    BERTH_TRY(auto sub, resolve_target(root_fd, m.destination + "/" + name, false));
    if (h.fstype == "cgroup2") {
      BERTH_TRYV(do_mount("cgroup2", sub, "cgroup2", flags, ""));
    } else {
      BERTH_TRYV(do_mount("cgroup", sub, "cgroup", flags, h.options));
    }
  }
  if (flags & MS_RDONLY) {
    BERTH_TRYV(do_mount(nullptr, target, nullptr, MS_REMOUNT | flags, "mode=755"));
  }
  return {};
}

Result<void> mount_one(int root_fd, const MountSpec& m, int source_fd) {
  bool as_file = false;
  // A source cloned before the user namespace (see prepare_rootfs): a detached mount to attach.
  const std::string source =
      source_fd >= 0 ? "/proc/self/fd/" + std::to_string(source_fd) : m.source;
  if (m.bind) {
    struct stat st {};
    if (::stat(source.c_str(), &st) != 0) {
      return fail_errno("bind mount source", m.source);
    }
    as_file = !S_ISDIR(st.st_mode);
  }
  BERTH_TRY(std::string target, resolve_target(root_fd, m.destination, as_file));
  if (m.type == "cgroup" || m.type == "cgroup2") {
    BERTH_TRYV(mount_cgroup(root_fd, m, target));
  } else if (m.bind) {
    if (source_fd >= 0) {
      if (::move_mount(source_fd, "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        return fail_errno("attach the bind mount of " + m.source + " on", target);
      }
    } else if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND | (m.flags & MS_REC),
                       nullptr) != 0) {
      return fail_errno("bind mount " + m.source + " on", target);
    }
    const unsigned long extra = m.flags & kRemountable;
    if (extra != 0) {
      BERTH_TRYV(do_mount(nullptr, target, nullptr,
                          MS_REMOUNT | MS_BIND | extra | existing_flags(target), ""));
    }
    if (m.recursive_readonly) {
      // The remount above made the top mount read-only; the submounts too, as one change.
      mount_attr attr{};
      attr.attr_set = MOUNT_ATTR_RDONLY;
      if (::syscall(SYS_mount_setattr, AT_FDCWD, target.c_str(), AT_RECURSIVE, &attr,
                    sizeof(attr)) != 0) {
        return fail(Error::from_errno("make the bind mount of " + m.source +
                                          " recursively read-only (mount_setattr) on",
                                      target, errno)
                        .hint("recursively read-only mounts need Linux 5.12 or later; mount it "
                              "read-only without its submounts' flags changed instead "
                              "(ReadOnlyNonRecursive, --mount ...,bind-recursive=writable)"));
      }
    }
  } else if (m.tmpcopyup) {
    // The covered directory, opened before the mount hides it; the tmpfs is made writable for
    // the copy and then gets its own flags.
    UniqueFd covered(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!covered) {
      return fail_errno("open for tmpcopyup", target);
    }
    const unsigned long flags = m.flags & ~MS_REMOUNT;
    BERTH_TRYV(do_mount(m.source.c_str(), target, m.type.c_str(), flags & ~MS_RDONLY, m.data));
    UniqueFd fresh(::open(target.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fresh) {
      return fail_errno("open", target);
    }
    auto c = copy_dir_contents(covered.get(), fresh.get(), m.destination);
    if (!c) {
      return fail(std::move(c).error().wrap("tmpcopyup into " + m.destination));
    }
    if (flags & MS_RDONLY) {
      BERTH_TRYV(do_mount(nullptr, target, nullptr, MS_REMOUNT | flags, m.data));
    }
  } else {
    auto r = do_mount(m.source.c_str(), target, m.type.c_str(), m.flags & ~MS_REMOUNT, m.data);
    if (!r && m.type == "sysfs") {
      // Without a network namespace of its own the kernel refuses a new sysfs: bind the host's.
      BERTH_TRYV(do_mount("/sys", target, nullptr, MS_BIND | MS_REC, ""));
      BERTH_TRYV(
          do_mount(nullptr, target, nullptr, MS_REMOUNT | MS_BIND | (m.flags & kRemountable), ""));
    } else if (!r) {
      return r;
    }
  }
  if (m.propagation != 0) {
    BERTH_TRYV(do_mount(nullptr, target, nullptr, m.propagation, ""));
  }
  return {};
}

struct DefaultDevice {
  const char* name;
  unsigned major;
  unsigned minor;
};
constexpr DefaultDevice kDefaultDevices[] = {{"null", 1, 3},   {"zero", 1, 5},    {"full", 1, 7},
                                             {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

Result<void> make_device(int root_fd, const DeviceSpec& d) {
  auto slash = d.path.rfind('/');
  BERTH_TRY(std::string dir, resolve_target(root_fd, d.path.substr(0, slash), false));
  const std::string path = dir + "/" + d.path.substr(slash + 1);
  mode_t type = d.type == 'b' ? S_IFBLK : d.type == 'p' ? S_IFIFO : S_IFCHR;
  if (::mknod(path.c_str(), type | (d.mode & 07777), makedev(d.major, d.minor)) != 0) {
    if (errno == EEXIST) {
      return {};
    }
    if (errno != EPERM) {
      return fail_errno("mknod", path);
    }
    // In a user namespace mknod is refused: bind the host's node instead, as runc does.
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
      return fail_errno("create", path);
    }
    ::close(fd);
    return do_mount(("/dev/" + d.path.substr(slash + 1)).c_str(), path, nullptr, MS_BIND, "");
  }
  if (::chmod(path.c_str(), d.mode & 07777) != 0) {
    return fail_errno("chmod", path);
  }
  if (::chown(path.c_str(), d.uid, d.gid) != 0) {
    return fail_errno("chown", path);
  }
  return {};
}

Result<void> populate_dev(int root_fd, const ContainerSpec& spec) {
  bool dev_tmpfs = false;
  for (const auto& m : spec.mounts) {
    dev_tmpfs |= m.destination == "/dev" && !m.bind;
  }
  if (!dev_tmpfs) {
    return {};
  }
  for (const auto& d : kDefaultDevices) {
    BERTH_TRYV(
        make_device(root_fd, {std::string("/dev/") + d.name, 'c', d.major, d.minor, 0666, 0, 0}));
  }
  for (const auto& d : spec.devices) {
    BERTH_TRYV(make_device(root_fd, d));
  }
  BERTH_TRY(std::string dev, resolve_target(root_fd, "/dev", false));
  const std::pair<const char*, const char*> links[] = {{"/proc/self/fd", "fd"},
                                                       {"/proc/self/fd/0", "stdin"},
                                                       {"/proc/self/fd/1", "stdout"},
                                                       {"/proc/self/fd/2", "stderr"},
                                                       {"pts/ptmx", "ptmx"}};
  for (const auto& [target, name] : links) {
    const std::string link = dev + "/" + name;
    if (::symlink(target, link.c_str()) != 0 && errno != EEXIST) {
      return fail_errno("symlink", link);
    }
  }
  if (spec.process.terminal) {
    const std::string console = dev + "/console";
    int fd = ::open(console.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      return fail_errno("create", console);
    }
    ::close(fd);
  }
  return {};
}

// The mount point of the mount holding `path` (the longest mount point above it in mountinfo).
Result<std::string> mount_point_of(const std::string& path) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) == nullptr) {
    return fail_errno("resolve", path);
  }
  const std::string p = real;
  std::ifstream in("/proc/self/mountinfo");
  if (!in) {
    return fail_errno("open", "/proc/self/mountinfo");
  }
  std::string best = "/";
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream head(line);
    std::string id, parent, devno, root, escaped;
    head >> id >> parent >> devno >> root >> escaped;
    std::string mp;  // mountinfo escapes space, tab, newline and backslash as \ooo
    for (size_t i = 0; i < escaped.size(); ++i) {
      if (escaped[i] == '\\' && i + 3 < escaped.size()) {
        mp += static_cast<char>(std::stoi(escaped.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        mp += escaped[i];
      }
    }
    const bool above = mp == "/" || p == mp || p.rfind(mp + "/", 0) == 0;
    if (above && mp.size() > best.size()) {
      best = mp;
    }
  }
  return best;
}

}  // namespace

Result<void> prepare_rootfs(const ContainerSpec& spec, const std::vector<int>& source_fds,
                            const std::function<Result<void>()>& before_cgroup_mounts) {
  bool cgroups_entered = !before_cgroup_mounts;
  const unsigned long prop = spec.rootfs_propagation ? spec.rootfs_propagation : MS_SLAVE | MS_REC;
  BERTH_TRYV(do_mount(nullptr, "/", nullptr, prop, ""));
  if (prop & MS_SHARED) {
    // rootfsPropagation shared (a volume with shared propagation, so that mounts made in the
    // container reach the host): as runc, the mount holding the rootfs goes private, or the
    // rootfs bind and every mount under it would propagate to the host (and pivot_root refuses
    // a shared parent). A volume's bind keeps its source's peer group, so it still propagates.
    BERTH_TRY(std::string parent, mount_point_of(spec.rootfs));
    BERTH_TRYV(do_mount(nullptr, parent, nullptr, MS_PRIVATE, ""));
  }
  BERTH_TRYV(do_mount(spec.rootfs.c_str(), spec.rootfs, nullptr, MS_BIND | MS_REC, ""));
  UniqueFd root(::open(spec.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root) {
    return fail_errno("open rootfs", spec.rootfs);
  }
  for (size_t i = 0; i < spec.mounts.size(); ++i) {
    const MountSpec& m = spec.mounts[i];
    if (!cgroups_entered && (m.type == "cgroup" || m.type == "cgroup2")) {
      cgroups_entered = true;
      BERTH_TRYV(before_cgroup_mounts());
    }
    auto r = mount_one(root.get(), m, i < source_fds.size() ? source_fds[i] : -1);
    if (!r) {
      return fail(std::move(r).error().wrap("mount " + m.destination));
    }
  }
  if (!cgroups_entered) {
    BERTH_TRYV(before_cgroup_mounts());
  }
  return populate_dev(root.get(), spec);
}

Result<void> pivot_to_rootfs(const std::string& rootfs) {
  UniqueFd old_root(::open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC));
  if (!old_root) {
    return fail_errno("open the old root", "/");
  }
  if (::chdir(rootfs.c_str()) != 0) {
    return fail_errno("chdir", rootfs);
  }
  if (::syscall(SYS_pivot_root, ".", ".") != 0) {
    return fail_errno("pivot_root", rootfs);
  }
  // The old root is now stacked on the new one. As runc: from inside the old root (not the new
  // one, whose mounts keep their propagation, so an rshared volume still reaches the host), make
  // it rslave so that its unmount does not propagate to the host.
  if (::fchdir(old_root.get()) != 0) {
    return fail_errno("fchdir to the old root", "/");
  }
  BERTH_TRYV(do_mount(nullptr, ".", nullptr, MS_SLAVE | MS_REC, ""));
  if (::umount2(".", MNT_DETACH) != 0) {
    return fail_errno("unmount the old root", "");
  }
  if (::chdir("/") != 0) {
    return fail_errno("chdir", "/");
  }
  return {};
}

namespace {

Result<void> write_sysctl(const std::string& key, const std::string& value) {
  std::string path = "/proc/sys/" + key;
  std::replace(path.begin() + 10, path.end(), '.', '/');
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open sysctl", path);
  }
  UniqueFd guard(fd);
  if (::write(fd, value.data(), value.size()) < 0) {
    return fail_errno("write sysctl " + key + "=" + value + " to", path);
  }
  return {};
}

std::string host_gid(const ContainerSpec& spec, const std::string& id) {
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos || id.size() > 10) {
    return id;
  }
  const uint64_t g = std::stoull(id);
  for (const auto& m : spec.gid_mappings) {
    if (g >= m.container_id && g < uint64_t{m.container_id} + m.size) {
      return std::to_string(m.host_id + (g - m.container_id));
    }
  }
  return id;
}

}  // namespace

Result<void> write_net_sysctls(const ContainerSpec& spec) {
  for (const auto& [key, value] : spec.sysctls) {
    if (key.rfind("net.", 0) != 0) {
      continue;
    }
    std::string v = value;
    if (key == "net.ipv4.ping_group_range") {
      std::istringstream in(value);
      std::string lo, hi;
      in >> lo >> hi;
      v = host_gid(spec, lo) + " " + host_gid(spec, hi);
    }
    BERTH_TRYV(write_sysctl(key, v));
  }
  return {};
}

Result<void> finish_rootfs(const ContainerSpec& spec, bool skip_net) {
  for (const auto& [key, value] : spec.sysctls) {
    if (skip_net && key.rfind("net.", 0) == 0) {
      continue;
    }
    BERTH_TRYV(write_sysctl(key, value));
  }
  for (const auto& p : spec.masked_paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      continue;  // nothing to hide
    }
    if (S_ISDIR(st.st_mode)) {
      BERTH_TRYV(do_mount("tmpfs", p, "tmpfs", MS_RDONLY, ""));
    } else {
      BERTH_TRYV(do_mount("/dev/null", p, nullptr, MS_BIND, ""));
    }
  }
  for (const auto& p : spec.readonly_paths) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      continue;
    }
    BERTH_TRYV(do_mount(p.c_str(), p, nullptr, MS_BIND | MS_REC, ""));
    BERTH_TRYV(
        do_mount(nullptr, p, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | existing_flags(p), ""));
  }
  if (spec.root_readonly) {
    BERTH_TRYV(do_mount(nullptr, "/", nullptr,
                        MS_BIND | MS_REMOUNT | MS_RDONLY | existing_flags("/"), ""));
  }
  return {};
}

Result<void> make_dirs_in_root(const std::string& path) {
  std::string cur;
  std::istringstream in(path);
  std::string part;
  while (std::getline(in, part, '/')) {
    if (part.empty()) {
      continue;
    }
    cur += "/" + part;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) {
      return fail_errno("create working directory", cur);
    }
  }
  return {};
}

}  // namespace berth::runtime
