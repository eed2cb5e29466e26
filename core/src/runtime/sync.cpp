#include "sync.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace berth::runtime {

bool sync_send(int fd, SyncType type, int32_t code, int32_t sys_errno, std::string_view text) {
  SyncMessage m;
  m.type = type;
  m.code = code;
  m.sys_errno = sys_errno;
  size_t n = std::min(text.size(), sizeof(m.text) - 1);
  std::copy_n(text.data(), n, m.text);
  m.text[n] = '\0';
  for (;;) {
    ssize_t w = ::send(fd, &m, sizeof(m), MSG_NOSIGNAL);
    if (w == static_cast<ssize_t>(sizeof(m))) {
      return true;
    }
    if (w < 0 && errno == EINTR) {
      continue;
    }
    return false;
  }
}

bool sync_send_error(int fd, const Error& error) {
  return sync_send(fd, SyncType::Error, static_cast<int32_t>(error.code()), error.sys_errno(),
                   error.message());
}

Result<SyncMessage> sync_recv(int fd) {
  SyncMessage m;
  bool reset_seen = false;
  for (;;) {
    ssize_t r = ::recv(fd, &m, sizeof(m), 0);
    if (r == static_cast<ssize_t>(sizeof(m))) {
      return m;
    }
    if (r < 0 && errno == EINTR) {
      continue;
    }
    if (r < 0 && errno == ECONNRESET && !reset_seen) {
      // The peer exited with a message of ours unread (our Go to an init that had just failed):
      // the kernel reports that once, before the messages the peer sent, such as its error.
      reset_seen = true;
      continue;
    }
    if (r < 0) {
      return fail_errno("read from the container's init", "sync socket");
    }
    return fail(Errc::Cancelled, "the container's init exited before reporting");
  }
}

Error sync_to_error(const SyncMessage& m) {
  return Error(static_cast<Errc>(m.code), std::string(m.text), m.sys_errno);
}

}  // namespace berth::runtime
