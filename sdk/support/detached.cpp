#include "berth/sdk/detached.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

Result<pid_t> spawn_detached(const std::string& what, const std::function<void()>& body) {
  int pidp[2];
  if (::pipe2(pidp, O_CLOEXEC) != 0) {
    return fail_errno("pipe", what);
  }
  UniqueFd pid_r(pidp[0]);
  UniqueFd pid_w(pidp[1]);
  pid_t mid = ::fork();
  if (mid < 0) {
    return fail_errno("fork", what);
  }
  if (mid == 0) {
    ::setsid();
    pid_t child = ::fork();
    if (child != 0) {
      (void)!::write(pid_w.get(), &child, sizeof child);
      ::_exit(child < 0 ? 1 : 0);
    }
    body();
    ::_exit(127);
  }
  pid_w.reset();
  int st = 0;
  while (::waitpid(mid, &st, 0) < 0 && errno == EINTR) {
  }
  pid_t pid = 0;
  if (::read(pid_r.get(), &pid, sizeof pid) != sizeof pid || pid <= 0) {
    return fail(Errc::Internal, "start " + what + ": fork failed");
  }
  return pid;
}

}  // namespace berth::sdk
