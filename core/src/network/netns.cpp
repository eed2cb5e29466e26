// Network namespaces bind-mounted at a path, as `ip netns add` does, without exec'ing ip.
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "berth/network/network.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {

namespace fs = std::filesystem;

namespace {

// Sets IFF_UP on "lo" of the calling thread's network namespace; 0 or the errno.
int loopback_up() {
  UniqueFd sock(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!sock) {
    return errno;
  }
  struct ifreq ifr {};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(sock.get(), SIOCGIFFLAGS, &ifr) != 0) {
    return errno;
  }
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
  if (::ioctl(sock.get(), SIOCSIFFLAGS, &ifr) != 0) {
    return errno;
  }
  return 0;
}

}  // namespace

Result<NetnsHandle> create_netns(const std::string& path) {
  fs::path p(path);
  fs::path dir = p.parent_path();
  BERTH_TRYV(util::make_dirs(dir));
  // Unlike iproute2, the directory is not made a shared mount point: a mount namespace copied
  // while a namespace is mounted (a container's, before its pivot_root drops the host's mounts)
  // no longer blocks removing the file (Linux >= 3.18), and the directory stays a plain one, so
  // nothing under the runroot is left mounted once the last container is gone.
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
  // Loopback up, as every network mode wants it (the bridge driver's setup is not run for a
  // container left with no network).
  int lo_err = loopback_up();
  int mount_err = 0;
  if (lo_err == 0 &&
      ::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0) {
    mount_err = errno;
  }
  if (::setns(orig.get(), CLONE_NEWNET) != 0) {
    // Staying in the new namespace would silently break every later network call: crash loudly.
    std::perror("berth: setns back to the original network namespace");
    std::abort();
  }
  if (lo_err != 0) {
    cleanup();
    return fail_errno("bring up the loopback interface of network namespace", path, lo_err);
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
