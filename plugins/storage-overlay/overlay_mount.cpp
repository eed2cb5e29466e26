#include "overlay_mount.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
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
  for (const auto& l : m.lowers) {
    BERTH_TRYV(config(FSCONFIG_SET_STRING, "lowerdir+", (m.home / l).c_str()));
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
