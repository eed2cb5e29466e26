#include "terminal.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

namespace berth::runtime {

Result<UniqueFd> connect_console_socket(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail_errno("socket", "console socket");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::InvalidArgument, "console socket path too long: " + path);
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail_errno("connect to console socket", path);
  }
  return fd;
}

Result<void> send_fd(int socket_fd, int fd, const std::string& name) {
  char data[256] = {};
  std::strncpy(data, name.c_str(), sizeof(data) - 1);
  iovec iov{data, std::strlen(data) + 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  if (::sendmsg(socket_fd, &msg, MSG_NOSIGNAL) < 0) {
    return fail_errno("send the pty master over", "the console socket");
  }
  return {};
}

Result<UniqueFd> receive_fd(int socket_fd) {
  char data[256];
  iovec iov{data, sizeof(data)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  if (::recvmsg(socket_fd, &msg, MSG_CMSG_CLOEXEC) < 0) {
    return fail_errno("recvmsg", "console socket");
  }
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) {
    return fail(Errc::InvalidArgument, "console socket: no file descriptor received");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
  return UniqueFd(fd);
}

Result<void> setup_terminal(int socket_fd, const char* console_path, unsigned short rows,
                            unsigned short cols) {
  UniqueFd master(::open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master) {
    return fail_errno("open", "/dev/ptmx");
  }
  if (::unlockpt(master.get()) != 0) {
    return fail_errno("unlockpt", "/dev/ptmx");
  }
  char name[128];
  if (::ptsname_r(master.get(), name, sizeof(name)) != 0) {
    return fail_errno("ptsname", "/dev/ptmx");
  }
  UniqueFd slave(::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave) {
    return fail_errno("open", name);
  }
  if (rows > 0 && cols > 0) {
    winsize ws{};
    ws.ws_row = rows;
    ws.ws_col = cols;
    if (::ioctl(slave.get(), TIOCSWINSZ, &ws) != 0) {
      return fail_errno("set the size of the pty (process.consoleSize)", name);
    }
  }
  if (console_path) {
    if (::mount(name, console_path, nullptr, MS_BIND, nullptr) != 0) {
      return fail_errno("bind mount the pty on", console_path);
    }
  }
  BERTH_TRYV(send_fd(socket_fd, master.get(), name));
  master.reset();
  if (::setsid() < 0 && errno != EPERM) {
    return fail_errno("setsid", "");
  }
  if (::ioctl(slave.get(), TIOCSCTTY, 0) != 0) {
    return fail_errno("make the pty the controlling terminal", name);
  }
  for (int i = 0; i < 3; ++i) {
    if (::dup2(slave.get(), i) < 0) {
      return fail_errno("dup2 pty to fd", std::to_string(i));
    }
  }
  return {};
}

}  // namespace berth::runtime
