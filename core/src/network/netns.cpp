// Network namespaces bind-mounted at a path, as `ip netns add` does, without exec'ing ip.
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include "berth/network/network.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {

namespace fs = std::filesystem;

namespace {

// iproute2 makes the netns directory a shared mount point so that namespaces mounted later
// propagate into mount namespaces made from it (and unmounts propagate out of them).
Result<void> make_shared_mount_point(const fs::path& dir) {
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) == 0) {
    return {};
  }
  if (errno != EINVAL) {
    return fail_errno("make shared mount point", dir.string());
  }
  if (::mount(dir.c_str(), dir.c_str(), "none", MS_BIND | MS_REC, nullptr) != 0) {
    return fail_errno("bind mount", dir.string());
  }
  if (::mount("", dir.c_str(), "none", MS_SHARED | MS_REC, nullptr) != 0) {
    return fail_errno("make shared mount point", dir.string());
  }
  return {};
}

bool is_mount_point(const fs::path& dir) {
  auto text = util::read_file("/proc/self/mountinfo");
  if (!text) {
    return false;
  }
  std::string needle = " " + dir.string() + " ";
  return text->find(needle) != std::string::npos;
}

}  // namespace

Result<NetnsHandle> create_netns(const std::string& path) {
  fs::path p(path);
  fs::path dir = p.parent_path();
  BERTH_TRYV(util::make_dirs(dir));
  if (!is_mount_point(dir)) {
    BERTH_TRYV(make_shared_mount_point(dir));
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (fd < 0) {
    if (errno == EEXIST) {
      return fail(Errc::AlreadyExists, "create network namespace " + path +
                                           ": file exists (remove it with remove_netns)");
    }
    return fail_errno("create network namespace file", path);
  }
  ::close(fd);
  auto cleanup = [&] { ::unlink(path.c_str()); };

  // Only this thread changes namespace, and returns to the original one before anything else.
  UniqueFd orig(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!orig) {
    auto e = fail_errno("open", "/proc/thread-self/ns/net");
    cleanup();
    return e;
  }
  if (::unshare(CLONE_NEWNET) != 0) {
    auto e = fail_errno("unshare network namespace for", path);
    cleanup();
    return fail(std::move(e).error().hint("creating network namespaces needs CAP_SYS_ADMIN"));
  }
  int mount_err = 0;
  if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
    mount_err = errno;
  }
  if (::setns(orig.get(), CLONE_NEWNET) != 0) {
    // Staying in the new namespace would silently break every later network call: crash loudly.
    std::perror("berth: setns back to the original network namespace");
    std::abort();
  }
  if (mount_err != 0) {
    cleanup();
    return fail_errno("bind mount network namespace on", path, mount_err);
  }
  return NetnsHandle{path};
}

Result<void> remove_netns(const std::string& path) {
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    return fail_errno("unmount network namespace", path);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove network namespace file", path);
  }
  return {};
}

}  // namespace berth::network
