#include "overlay_mount.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "berth/sdk/unique_fd.hpp"

namespace berth::storage_overlay {

namespace fs = std::filesystem;

namespace {

constexpr size_t kPageSize = 4096;  // the kernel copies at most one page of mount data

struct VfsFlag {
  const char* name;
  unsigned long ms_flag;    // mount(2)
  unsigned long attr_flag;  // fsmount(2)
};

// Options that are mount flags rather than overlay parameters.
constexpr VfsFlag kVfsFlags[] = {
    {"ro", MS_RDONLY, MOUNT_ATTR_RDONLY},
    {"nosuid", MS_NOSUID, MOUNT_ATTR_NOSUID},
    {"nodev", MS_NODEV, MOUNT_ATTR_NODEV},
    {"noexec", MS_NOEXEC, MOUNT_ATTR_NOEXEC},
    {"noatime", MS_NOATIME, MOUNT_ATTR_NOATIME},
    {"nodiratime", MS_NODIRATIME, MOUNT_ATTR_NODIRATIME},
    {"relatime", MS_RELATIME, MOUNT_ATTR_RELATIME},
    {"strictatime", MS_STRICTATIME, MOUNT_ATTR_STRICTATIME},
    {"rw", 0, 0},
    {"suid", 0, 0},
    {"dev", 0, 0},
    {"exec", 0, 0},
};

const VfsFlag* vfs_flag(const std::string& opt) {
  for (const auto& f : kVfsFlags) {
    if (opt == f.name) {
      return &f;
    }
  }
  return nullptr;
}

// Overlay's option parser splits on ',' and lowerdir on ':'; both may be escaped with '\'.
std::string escape(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == ',' || c == ':' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out;
}

std::string join_lowers(const OverlayMount& m, bool absolute) {
  std::string out;
  for (const auto& l : m.lowers) {
    if (!out.empty()) {
      out += ':';
    }
    out += escape(absolute ? (m.home / l).string() : l);
  }
  return out;
}

std::string describe_target(const OverlayMount& m, MountMethod method) {
  return "mount overlay (" + std::to_string(m.lowers.size()) + " lower layer(s), " +
         method_name(method) + ") on " + m.target.string();
}

// The kernel's own explanation, queued on an fs_context fd ("e overlayfs: ...").
std::string kernel_log(int fs_fd) {
  std::string out;
  char buf[1024];
  for (;;) {
    ssize_t n = ::read(fs_fd, buf, sizeof(buf) - 1);
    if (n <= 0) {
      break;
    }
    if (!out.empty()) {
      out += "; ";
    }
    std::string line(buf, static_cast<size_t>(n));
    while (!line.empty() && line.back() == '\n') {
      line.pop_back();
    }
    if (line.size() > 2 && line[1] == ' ') {
      line.erase(0, 2);
    }
    out += line;
  }
  return out;
}

Result<void> mount_lowerdir_plus(const OverlayMount& m) {
  const std::string what = describe_target(m, MountMethod::LowerdirPlus);
  UniqueFd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) {
    return fail(Error::from_errno(what + ": fsopen", "", errno)
                    .hint("is the overlay module loaded? try `modprobe overlay`"));
  }
  auto config = [&](unsigned cmd, const char* key, const char* value) -> Result<void> {
    if (::fsconfig(fsfd.get(), cmd, key, value, 0) == 0) {
      return {};
    }
    const int err = errno;
    std::string msg = what + ": ";
    msg += key != nullptr ? std::string("set ") + key + (value ? std::string("=") + value : "")
                          : std::string("create");
    msg += ": ";
    msg += std::strerror(err);
    const std::string log = kernel_log(fsfd.get());
    if (!log.empty()) {
      msg += " (kernel: " + log + ")";
    }
    return fail(Error(errc_from_errno(err), std::move(msg), err));
  };
  // The idmapped trees stay open until the superblock is made: closing the last fd of a
  // detached mount unmounts it, and overlay clones the layers only at create.
  std::vector<UniqueFd> trees;
  for (const auto& l : m.lowers) {
    if (m.userns_fd < 0) {
      BERTH_TRYV(config(FSCONFIG_SET_STRING, "lowerdir+", (m.home / l).c_str()));
      continue;
    }
    // An idmapped clone of the layer, handed to overlay as an fd: no mount is left behind.
    const fs::path layer = m.home / l;
    UniqueFd tree(static_cast<int>(
        ::syscall(SYS_open_tree, AT_FDCWD, layer.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)));
    if (!tree) {
      return fail_errno(what + ": open_tree", layer.string());
    }
    mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_IDMAP;
    attr.userns_fd = static_cast<uint64_t>(m.userns_fd);
    if (::syscall(SYS_mount_setattr, tree.get(), "", AT_EMPTY_PATH, &attr, sizeof(attr)) != 0) {
      return fail(Error::from_errno(what + ": idmap (mount_setattr MOUNT_ATTR_IDMAP)",
                                    layer.string(), errno)
                      .hint("the file system under the store must support idmapped mounts "
                            "(ext4, xfs, btrfs, tmpfs on Linux 5.12 and later)"));
    }
    if (::fsconfig(fsfd.get(), FSCONFIG_SET_FD, "lowerdir+", nullptr, tree.get()) != 0) {
      const int err = errno;
      return fail(Error(errc_from_errno(err),
                        what + ": set lowerdir+ from an idmapped mount of " + layer.string() +
                            ": " + std::strerror(err) + " (kernel: " + kernel_log(fsfd.get()) +
                            "; overlay takes layers as fds since Linux 6.13)",
                        err));
    }
    trees.push_back(std::move(tree));
  }
  if (!m.upper.empty()) {
    BERTH_TRYV(config(FSCONFIG_SET_STRING, "upperdir", (m.home / m.upper).c_str()));
    BERTH_TRYV(config(FSCONFIG_SET_STRING, "workdir", (m.home / m.work).c_str()));
  }
  unsigned attrs = 0;
  for (const auto& opt : m.options) {
    if (const VfsFlag* f = vfs_flag(opt)) {
      attrs |= static_cast<unsigned>(f->attr_flag);
      continue;
    }
    auto eq = opt.find('=');
    if (eq == std::string::npos) {
      BERTH_TRYV(config(FSCONFIG_SET_FLAG, opt.c_str(), nullptr));
    } else {
      BERTH_TRYV(
          config(FSCONFIG_SET_STRING, opt.substr(0, eq).c_str(), opt.substr(eq + 1).c_str()));
    }
  }
  BERTH_TRYV(config(FSCONFIG_CMD_CREATE, nullptr, nullptr));
  UniqueFd mnt(::fsmount(fsfd.get(), FSMOUNT_CLOEXEC, attrs));
  if (!mnt) {
    return fail_errno(what + ": fsmount", "");
  }
  if (::move_mount(mnt.get(), "", AT_FDCWD, m.target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return fail_errno(what + ": move_mount to", m.target.string());
  }
  return {};
}

Result<void> mount_data_page(const OverlayMount& m) {
  const std::string what = describe_target(m, MountMethod::DataPage);
  unsigned long flags = 0;
  std::string rest;
  for (const auto& opt : m.options) {
    if (const VfsFlag* f = vfs_flag(opt)) {
      flags |= f->ms_flag;
    } else {
      rest += "," + opt;
    }
  }
  auto data_for = [&](bool absolute) {
    std::string d = "lowerdir=" + join_lowers(m, absolute);
    if (!m.upper.empty()) {
      const fs::path upper = absolute ? m.home / m.upper : fs::path(m.upper);
      const fs::path work = absolute ? m.home / m.work : fs::path(m.work);
      d += ",upperdir=" + escape(upper.string()) + ",workdir=" + escape(work.string());
    }
    return d + rest;
  };
  std::string data = data_for(true);
  if (data.size() < kPageSize) {
    if (::mount("overlay", m.target.c_str(), "overlay", flags, data.c_str()) != 0) {
      return fail_errno(what, "");
    }
    return {};
  }
  // Too long with absolute paths: relative ones resolve against the home, in a child process so
  // that no other thread of ours sees the working directory change.
  data = data_for(false);
  if (data.size() >= kPageSize) {
    return fail(Errc::InvalidArgument,
                what + ": the mount options take " + std::to_string(data.size()) +
                    " bytes, more than the kernel's page of " + std::to_string(kPageSize) +
                    " (this kernel has no fsconfig lowerdir+, added in Linux 6.8; use fewer "
                    "layers or a newer kernel)");
  }
  const std::string home = m.home.string();
  const std::string target = m.target.string();
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno(what + ": fork", "");
  }
  if (pid == 0) {
    if (::chdir(home.c_str()) != 0) {
      ::_exit(errno == 0 ? 255 : errno);
    }
    if (::mount("overlay", target.c_str(), "overlay", flags, data.c_str()) != 0) {
      ::_exit(errno == 0 ? 255 : errno);
    }
    ::_exit(0);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno(what + ": wait for mount helper", std::to_string(pid));
    }
  }
  if (!WIFEXITED(status)) {
    return fail(Errc::Internal, what + ": the mount helper process died");
  }
  if (WEXITSTATUS(status) != 0) {
    return fail_errno(what, "", WEXITSTATUS(status));
  }
  return {};
}

std::string read_memfd(int fd) {
  std::string out;
  if (::lseek(fd, 0, SEEK_SET) != 0) {
    return out;
  }
  char buf[4096];
  ssize_t n = 0;
  while ((n = ::read(fd, buf, sizeof(buf))) > 0 && out.size() < 16384) {
    out.append(buf, static_cast<size_t>(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

// Runs argv in `dir` (no shell), output captured; returns the exit code and output.
Result<std::pair<int, std::string>> run(const std::vector<std::string>& argv, const fs::path& dir) {
  // A memfd, not a pipe: a FUSE program daemonizes and its daemon keeps the output open.
  UniqueFd out(::memfd_create("berth-overlay-mount", MFD_CLOEXEC));
  if (!out) {
    return fail_errno("memfd_create for", argv[0]);
  }
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  const std::string cwd = dir.string();
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork for", argv[0]);
  }
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // dup2 to 0 keeps it
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(out.get(), 1) < 0 || ::dup2(out.get(), 2) < 0 ||
        (!cwd.empty() && ::chdir(cwd.c_str()) != 0)) {
      ::_exit(126);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("wait for", argv[0]);
    }
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return std::make_pair(code, read_memfd(out.get()));
}

Result<void> mount_program(const OverlayMount& m, const std::string& program) {
  const std::string what = describe_target(m, MountMethod::Program) + " with " + program;
  std::string opts = "lowerdir=" + join_lowers(m, false);
  if (!m.upper.empty()) {
    opts += ",upperdir=" + m.upper + ",workdir=" + m.work;
  }
  for (const auto& o : m.options) {
    opts += "," + o;
  }
  BERTH_TRY(auto res, run({program, "-o", opts, m.target.string()}, m.home));
  if (res.first != 0) {
    return fail(Errc::Internal, what + ": exited with " + std::to_string(res.first) +
                                    (res.second.empty() ? "" : ": " + res.second));
  }
  // The program daemonizes once mounted; wait until the mount is really there.
  for (int i = 0; i < 500; ++i) {
    if (is_mount_point(m.target)) {
      return {};
    }
    timespec ts{0, 10 * 1000 * 1000};
    ::nanosleep(&ts, nullptr);
  }
  return fail(Errc::Timeout, what + ": the program succeeded but no mount appeared within 5 s");
}

}  // namespace

const char* method_name(MountMethod m) {
  switch (m) {
    case MountMethod::LowerdirPlus:
      return "fsconfig lowerdir+";
    case MountMethod::DataPage:
      return "mount(2) data page";
    case MountMethod::Program:
      return "mount program";
  }
  return "?";
}

Result<void> mount_overlay(const OverlayMount& m, MountMethod method, const std::string& program) {
  if (m.userns_fd >= 0 && method != MountMethod::LowerdirPlus) {
    return fail(Errc::NotSupported,
                describe_target(m, method) +
                    ": idmapped layers (a container in a user namespace) need the kernel's "
                    "overlay with fsconfig lowerdir+ (Linux 6.13 or later), not " +
                    method_name(method) + "; run the container with --userns=host");
  }
  if (method != MountMethod::Program && m.lowers.size() > kMaxKernelLowers) {
    return fail(Errc::InvalidArgument,
                describe_target(m, method) + ": the layer has " + std::to_string(m.lowers.size()) +
                    " lower layers; the kernel's overlay limit is " +
                    std::to_string(kMaxKernelLowers) +
                    " (squash the image into fewer layers, or use a mount program such as "
                    "fuse-overlayfs)");
  }
  switch (method) {
    case MountMethod::LowerdirPlus:
      return mount_lowerdir_plus(m);
    case MountMethod::DataPage:
      return mount_data_page(m);
    case MountMethod::Program:
      return mount_program(m, program);
  }
  return fail(Errc::Internal, "unknown mount method");
}

Result<IdMaps> parse_idmap(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::InvalidArgument,
                "overlay: idmap \"" + text + "\": " + why +
                    " (want uids=FROM-TO-SIZE[#...][;gids=FROM-TO-SIZE[#...]])");
  };
  IdMaps out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t semi = text.find(';', start);
    const std::string part =
        text.substr(start, semi == std::string::npos ? std::string::npos : semi - start);
    start = semi == std::string::npos ? text.size() + 1 : semi + 1;
    if (part.empty()) {
      continue;
    }
    auto eq = part.find('=');
    if (eq == std::string::npos) {
      return bad("missing '='");
    }
    const std::string key = part.substr(0, eq);
    std::vector<IdMapEntry>* dst = key == "uids" ? &out.uids : key == "gids" ? &out.gids : nullptr;
    if (dst == nullptr) {
      return bad("unknown key " + key);
    }
    std::string rest = part.substr(eq + 1);
    size_t p = 0;
    while (p <= rest.size()) {
      size_t hash = rest.find('#', p);
      const std::string t =
          rest.substr(p, hash == std::string::npos ? std::string::npos : hash - p);
      p = hash == std::string::npos ? rest.size() + 1 : hash + 1;
      unsigned long long a = 0, b = 0, c = 0;
      int used = 0;
      if (std::sscanf(t.c_str(), "%llu-%llu-%llu%n", &a, &b, &c, &used) != 3 ||
          static_cast<size_t>(used) != t.size() || c == 0 || a + c > 0x100000000ULL ||
          b + c > 0x100000000ULL) {
        return bad("bad triplet \"" + t + "\"");
      }
      dst->push_back(
          {static_cast<uint32_t>(a), static_cast<uint32_t>(b), static_cast<uint32_t>(c)});
    }
  }
  if (out.uids.empty()) {
    return bad("no uids");
  }
  if (out.gids.empty()) {
    out.gids = out.uids;
  }
  return out;
}

Result<UniqueFd> make_userns(const IdMaps& maps) {
  int hold[2];
  if (::pipe2(hold, O_CLOEXEC) != 0) {
    return fail_errno("overlay: pipe for a user namespace", "");
  }
  UniqueFd hold_r(hold[0]);
  UniqueFd hold_w(hold[1]);
  // A child in a new user namespace that lives until we close our end of the pipe.
  pid_t pid = static_cast<pid_t>(
      ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) {
    return fail_errno("overlay: clone a user namespace for the idmapped mount", "");
  }
  if (pid == 0) {
    char c;
    ::close(hold[1]);
    while (::read(hold[0], &c, 1) < 0 && errno == EINTR) {
    }
    ::_exit(0);
  }
  hold_r.reset();
  auto reap = [&]() {
    hold_w.reset();
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  };
  auto write_map = [&](const char* file, const std::vector<IdMapEntry>& m) -> Result<void> {
    std::string content;
    for (const auto& e : m) {
      content +=
          std::to_string(e.from) + " " + std::to_string(e.to) + " " + std::to_string(e.size) + "\n";
    }
    const std::string path = "/proc/" + std::to_string(pid) + "/" + file;
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd || ::write(fd.get(), content.data(), content.size()) < 0) {
      return fail_errno("overlay: write " + std::string(file) + " of the idmap namespace", path);
    }
    return {};
  };
  auto u = write_map("uid_map", maps.uids);
  auto g = u ? write_map("gid_map", maps.gids) : Result<void>{};
  UniqueFd ns;
  if (u && g) {
    const std::string path = "/proc/" + std::to_string(pid) + "/ns/user";
    ns.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!ns) {
      const int err = errno;
      reap();
      return fail_errno("overlay: open", path, err);
    }
  }
  reap();
  if (!u) {
    return fail(std::move(u).error());
  }
  if (!g) {
    return fail(std::move(g).error());
  }
  return ns;
}

Result<void> unmount_overlay(const fs::path& target) {
  if (!is_mount_point(target)) {
    return {};
  }
  if (::umount2(target.c_str(), MNT_DETACH) == 0) {
    return {};
  }
  const int err = errno;
  if (err == EPERM) {
    // Unprivileged FUSE mounts go through the setuid helper.
    auto res = run({"/usr/bin/fusermount3", "-u", "-z", target.string()}, {});
    if (res && res->first == 0) {
      return {};
    }
  }
  return fail_errno("unmount", target.string(), err);
}

bool is_mount_point(const fs::path& p) {
  struct statx stx {};
  if (::statx(AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) {
    return errno == ENOTCONN;  // a FUSE mount whose daemon died: still a mount, to detach
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0) {
    return (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
  }
  struct stat self {
  }, parent{};
  if (::lstat(p.c_str(), &self) != 0 || ::lstat(p.parent_path().c_str(), &parent) != 0) {
    return false;
  }
  return self.st_dev != parent.st_dev;
}

MountState mount_state(const fs::path& p) {
  struct statx stx {};
  if (::statx(AT_FDCWD, p.c_str(), AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) != 0) {
    return errno == ENOTCONN ? MountState::Dead : MountState::None;
  }
  if (!is_mount_point(p)) {
    return MountState::None;
  }
  // FUSE answers stat from cached attributes; statfs has to reach the daemon.
  struct statfs sfs {};
  if (::statfs(p.c_str(), &sfs) != 0 && errno == ENOTCONN) {
    return MountState::Dead;
  }
  return MountState::Live;
}

bool kernel_has_lowerdir_plus(const fs::path& some_dir) {
  UniqueFd fsfd(::fsopen("overlay", FSOPEN_CLOEXEC));
  if (!fsfd) {
    return false;
  }
  return ::fsconfig(fsfd.get(), FSCONFIG_SET_STRING, "lowerdir+", some_dir.c_str(), 0) == 0;
}

}  // namespace berth::storage_overlay
