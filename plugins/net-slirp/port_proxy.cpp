#include "port_proxy.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "berth/sdk/detached.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::slirp {

namespace {

constexpr const char* kProcessName = "berth-portfwd";
constexpr size_t kChunk = 1 << 20;

struct Listener {
  int fd = -1;
  uint16_t container_port = 0;
};

// Relays one connection both ways until both sides have finished; splice moves the bytes
// through a pipe without copying them to user space.
[[noreturn]] void relay(int a, int b) {
  int fds[2] = {a, b};
  int pipes[2][2];
  size_t queued[2] = {0, 0};
  bool eof[2] = {false, false};
  bool done[2] = {false, false};
  for (auto& p : pipes) {
    if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
      ::_exit(1);
    }
    ::fcntl(p[0], F_SETPIPE_SZ, kChunk);
  }
  ::fcntl(a, F_SETFL, ::fcntl(a, F_GETFL) | O_NONBLOCK);
  ::fcntl(b, F_SETFL, ::fcntl(b, F_GETFL) | O_NONBLOCK);
  while (!done[0] || !done[1]) {
    // Direction d: fds[d] -> pipes[d] -> fds[1 - d].
    pollfd pfd[2] = {{a, 0, 0}, {b, 0, 0}};
    for (int d = 0; d < 2; ++d) {
      if (done[d]) {
        continue;
      }
      if (queued[d] == 0 && !eof[d]) {
        pfd[d].events |= POLLIN;
      }
      if (queued[d] > 0) {
        pfd[1 - d].events |= POLLOUT;
      }
    }
    if (::poll(pfd, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      ::_exit(1);
    }
    for (int d = 0; d < 2; ++d) {
      if (done[d]) {
        continue;
      }
      int src = fds[d];
      int dst = fds[1 - d];
      if (queued[d] == 0 && !eof[d] && (pfd[d].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        ssize_t n =
            ::splice(src, nullptr, pipes[d][1], nullptr, kChunk, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          queued[d] += static_cast<size_t>(n);
        } else if (n == 0) {
          eof[d] = true;
        } else if (errno != EAGAIN && errno != EINTR) {
          ::_exit(0);  // reset by a peer: the connection is over
        }
      }
      if (queued[d] > 0) {
        ssize_t n = ::splice(pipes[d][0], nullptr, dst, nullptr, queued[d],
                             SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n > 0) {
          queued[d] -= static_cast<size_t>(n);
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          ::_exit(0);
        }
      }
      if (eof[d] && queued[d] == 0) {
        ::shutdown(dst, SHUT_WR);
        done[d] = true;
      }
    }
  }
  ::_exit(0);
}

// A TCP socket connected to 127.0.0.1:port inside the namespace `netns_fd`.
int connect_inside(int netns_fd, int host_ns_fd, uint16_t port) {
  if (::setns(netns_fd, CLONE_NEWNET) != 0) {
    return -1;
  }
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::setns(host_ns_fd, CLONE_NEWNET) != 0) {
    ::_exit(1);  // stuck in the container's namespace: nothing sane is left to do
  }
  if (s < 0) {
    return -1;
  }
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(s);
    return -1;
  }
  int one = 1;
  ::setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return s;
}

[[noreturn]] void serve(int netns_fd, int host_ns_fd, const std::vector<Listener>& listeners) {
  std::vector<pollfd> pfd;
  for (const auto& l : listeners) {
    pfd.push_back({l.fd, POLLIN, 0});
  }
  for (;;) {
    if (::poll(pfd.data(), pfd.size(), -1) < 0) {
      continue;
    }
    for (size_t i = 0; i < pfd.size(); ++i) {
      if ((pfd[i].revents & POLLIN) == 0) {
        continue;
      }
      int c = ::accept4(listeners[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      int inside = connect_inside(netns_fd, host_ns_fd, listeners[i].container_port);
      if (inside < 0) {
        ::close(c);  // nothing listens in the container: the client sees the connection close
        continue;
      }
      pid_t child = ::fork();
      if (child == 0) {
        for (const auto& l : listeners) {
          ::close(l.fd);
        }
        relay(c, inside);
      }
      ::close(c);
      ::close(inside);
    }
  }
}

// A live relay (a zombie has exited; init just has not collected it yet).
bool is_proxy(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(f, comm);
  if (comm != kProcessName) {
    return false;
  }
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

}  // namespace

Result<pid_t> start_port_proxy(const std::string& netns_path,
                               const std::vector<sdk::PortMapping>& tcp_ports) {
  UniqueFd netns(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) {
    return fail_errno("open network namespace", netns_path);
  }
  UniqueFd host_ns(::open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!host_ns) {
    return fail_errno("open", "/proc/self/ns/net");
  }
  std::vector<UniqueFd> socks;
  std::vector<Listener> listeners;
  for (const auto& p : tcp_ports) {
    for (uint32_t i = 0; i < p.range; ++i) {
      uint16_t hport = static_cast<uint16_t>(p.host_port + i);
      std::string where =
          (p.host_ip.empty() ? std::string("0.0.0.0") : p.host_ip) + ":" + std::to_string(hport);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(hport);
      if (inet_pton(AF_INET, p.host_ip.empty() ? "0.0.0.0" : p.host_ip.c_str(), &sa.sin_addr) !=
          1) {
        return fail(Errc::InvalidArgument,
                    "publish " + where + ": slirp4netns forwards IPv4 host addresses only");
      }
      UniqueFd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (!s) {
        return fail_errno("socket", where);
      }
      int one = 1;
      ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
          ::listen(s.get(), 128) != 0) {
        return fail(std::move(Error::from_errno("publish port", where + "/tcp", errno))
                        .hint("the port is in use on the host; pick another host port"));
      }
      listeners.push_back({s.get(), static_cast<uint16_t>(p.container_port + i)});
      socks.push_back(std::move(s));
    }
  }
  return sdk::spawn_detached("the port relay for " + netns_path, [&] {
    ::setpgid(0, 0);  // its connections' children go with it (kill of the group)
    ::prctl(PR_SET_NAME, kProcessName);
    ::signal(SIGPIPE, SIG_IGN);
    ::signal(SIGCHLD, SIG_IGN);  // connection children are reaped by the kernel
    ::signal(SIGTERM, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDWR);
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
    // Nothing of berth's is kept open (its database, the pipes its caller waits on for EOF):
    // only the listeners and the two namespaces.
    std::vector<int> keep = {netns.get(), host_ns.get()};
    for (const auto& l : listeners) {
      keep.push_back(l.fd);
    }
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
      if (static_cast<unsigned>(fd) > from) {
        ::syscall(SYS_close_range, from, static_cast<unsigned>(fd) - 1, 0);
      }
      from = static_cast<unsigned>(fd) + 1;
    }
    ::syscall(SYS_close_range, from, ~0U, 0);
    if (::chdir("/") != 0) {
      ::_exit(1);
    }
    serve(netns.get(), host_ns.get(), listeners);
  });
}

Result<void> stop_port_proxy(pid_t pid) {
  if (pid <= 0 || !is_proxy(pid)) {
    return {};
  }
  // The relay leads its own process group: it and its connections' children.
  if (::kill(-pid, SIGKILL) != 0 && errno != ESRCH) {
    return fail_errno("stop port relay", std::to_string(pid));
  }
  for (int i = 0; i < 200 && is_proxy(pid); ++i) {
    ::usleep(5000);
  }
  return {};
}

}  // namespace berth::slirp
