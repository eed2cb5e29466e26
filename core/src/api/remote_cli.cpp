// The client of the remote CLI (docs/remote.md): `berth --url unix:///PATH ps` sends its argv to
// POST /libpod/berth/cli, then relays stdin, terminal resizes and the command's output over the
// hijacked connection until the service sends the exit code.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "berth/api/client.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "routes.hpp"

extern char** environ;

namespace berth::api {
namespace {

using nlohmann::json;

// A frame to the service; an empty stdin frame is the end of stdin.
bool send_frame(int fd, uint8_t type, std::string_view data) {
  return send_all(fd, frame(type, data));
}

Result<UniqueFd> dial(const std::string& uri) {
  if (uri.rfind("unix://", 0) == 0) {
    std::string path = uri.substr(7);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof(sa.sun_path)) {
      return fail(Errc::InvalidArgument, "service URI " + uri + ": bad socket path");
    }
    std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
      return fail_errno("socket", uri);
    }
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return fail(Errc::Unavailable, "cannot connect to the berth service at " + uri + ": " +
                                         std::strerror(errno) +
                                         " (is `berth system service` running?)");
    }
    return fd;
  }
  if (uri.rfind("tcp://", 0) == 0) {
    std::string hostport = uri.substr(6);
    auto colon = hostport.rfind(':');
    if (colon == std::string::npos) {
      return fail(Errc::InvalidArgument, "service URI " + uri + ": missing port");
    }
    std::string host = hostport.substr(0, colon);
    if (host.size() > 2 && host.front() == '[') {
      host = host.substr(1, host.size() - 2);
    }
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), hostport.c_str() + colon + 1, &hints, &res); rc != 0) {
      return fail(Errc::Unavailable, "resolve " + host + ": " + ::gai_strerror(rc));
    }
    std::string why = "no address";
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      UniqueFd fd(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
      if (fd && ::connect(fd.get(), a->ai_addr, a->ai_addrlen) == 0) {
        ::freeaddrinfo(res);
        return fd;
      }
      why = std::strerror(errno);
    }
    ::freeaddrinfo(res);
    return fail(Errc::Unavailable, "cannot connect to the berth service at " + uri + ": " + why);
  }
  return fail(Errc::NotSupported,
              "service URI " + uri + ": only unix:///path and tcp://host:port are supported");
}

// Restores the terminal's mode when the session ends.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd, &saved_) == 0) {
      termios raw = saved_;
      ::cfmakeraw(&raw);
      active_ = ::tcsetattr(fd, TCSADRAIN, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) {
      ::tcsetattr(fd_, TCSADRAIN, &saved_);
    }
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

std::string size_json() {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) {
    return {};
  }
  return json{{"h", ws.ws_row}, {"w", ws.ws_col}}.dump();
}

int fail_exit(const std::string& msg) {
  std::cerr << "Error: " << msg << "\n";
  return 125;
}

}  // namespace

GlobalFlagRole global_flag_role(std::string_view name) {
  if (name == "url" || name == "connection" || name == "remote" || name == "config") {
    return GlobalFlagRole::Remote;
  }
  if (name == "root" || name == "runroot" || name == "storage-driver" || name == "storage-opt") {
    return GlobalFlagRole::Store;
  }
  return GlobalFlagRole::Forwarded;
}

Result<std::string> remote_uri(const RemoteArgs& ra) {
  if (!ra.url.empty()) {
    return ra.url;  // no configuration needed
  }
  config::GlobalOverrides o;
  if (!ra.config.empty()) {
    o.config_path = ra.config;
  }
  BERTH_TRY(auto cfg, config::load_config(config::ConfigPaths::from_host(), o));
  return resolve_service_uri(cfg, ra.url, ra.connection, ra.remote);
}

int run_remote_cli(const std::string& uri, const std::vector<std::string>& argv) {
  auto sock_r = dial(uri);
  if (!sock_r) {
    return fail_exit(sock_r.error().message());
  }
  int sock = sock_r->get();
  const bool tty = ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  json env = json::object();
  for (char** e = environ; *e != nullptr; ++e) {
    std::string s(*e);
    auto eq = s.find('=');
    env[s.substr(0, eq)] = eq == std::string::npos ? "" : s.substr(eq + 1);
  }
  char cwd[PATH_MAX];
  json body = {{"argv", argv},
               {"env", env},
               {"tty", tty},
               {"cwd", ::getcwd(cwd, sizeof(cwd)) != nullptr ? std::string(cwd) : ""}};
  if (tty) {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0) {
      body["rows"] = ws.ws_row;
      body["cols"] = ws.ws_col;
    }
  }
  std::string b = body.dump();
  std::string req = "POST /v4.0.0/libpod/berth/cli HTTP/1.1\r\nHost: d\r\nUser-Agent: berth/" +
                    std::string(BERTH_VERSION) +
                    "\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: "
                    "tcp\r\nContent-Length: " +
                    std::to_string(b.size()) + "\r\n\r\n" + b;
  if (!send_all(sock, req)) {
    return fail_exit("send the command to " + uri + ": " + std::strerror(errno));
  }
  // The answer's head; bytes after it are already frames.
  std::string in;
  size_t head_end = std::string::npos;
  char chunk[32768];
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = ::recv(sock, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail_exit("the berth service at " + uri + " closed the connection");
    }
    in.append(chunk, static_cast<size_t>(n));
  }
  std::string head = in.substr(0, head_end);
  in.erase(0, head_end + 4);
  int status = 0;
  if (head.size() > 12) {
    status = std::atoi(head.c_str() + 9);
  }
  if (status != 101 && status != 200) {
    // An error answer: {"message": ...} with a length (or until close).
    size_t want = std::string::npos;
    std::string lower = head;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (auto p = lower.find("content-length:"); p != std::string::npos) {
      want = static_cast<size_t>(std::atoll(lower.c_str() + p + 15));
    }
    while (in.size() < want) {
      ssize_t n = ::recv(sock, chunk, sizeof(chunk), 0);
      if (n <= 0) {
        break;
      }
      in.append(chunk, static_cast<size_t>(n));
    }
    std::string msg = in;
    try {
      auto j = json::parse(in);
      msg = j.value("message", in);
    } catch (const json::exception&) {
    }
    if (status == 404) {
      msg += " (the service at " + uri + " has no remote CLI endpoint: is it berth?)";
    }
    return fail_exit(msg);
  }

  std::optional<RawTerminal> raw;
  UniqueFd winch;
  if (tty) {
    raw.emplace(STDIN_FILENO);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGWINCH);
    if (::sigprocmask(SIG_BLOCK, &set, nullptr) == 0) {
      winch.reset(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    }
  }
  bool stdin_open = true;
  std::optional<int> exit_code;
  for (;;) {
    // Whole frames first.
    while (in.size() >= 8) {
      uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(in[4])) << 24) |
                   (static_cast<uint32_t>(static_cast<unsigned char>(in[5])) << 16) |
                   (static_cast<uint32_t>(static_cast<unsigned char>(in[6])) << 8) |
                   static_cast<uint32_t>(static_cast<unsigned char>(in[7]));
      if (in.size() < 8 + static_cast<size_t>(n)) {
        break;
      }
      std::string_view data(in.data() + 8, n);
      switch (in[0]) {
        case 1:
          (void)send_all(STDOUT_FILENO, data);
          break;
        case 2:
          (void)send_all(STDERR_FILENO, data);
          break;
        case 3:
          try {
            exit_code = json::parse(data).value("ExitCode", 125);
          } catch (const json::exception&) {
            exit_code = 125;
          }
          break;
        default:
          break;
      }
      in.erase(0, 8 + n);
    }
    if (exit_code) {
      return *exit_code;
    }
    pollfd p[3];
    nfds_t np = 0;
    p[np++] = {sock, POLLIN, 0};
    const nfds_t stdin_at = stdin_open ? np : 99;
    if (stdin_open) {
      p[np++] = {STDIN_FILENO, POLLIN, 0};
    }
    const nfds_t winch_at = winch ? np : 99;
    if (winch) {
      p[np++] = {winch.get(), POLLIN, 0};
    }
    if (::poll(p, np, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    if (p[0].revents != 0) {
      ssize_t n = ::recv(sock, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      in.append(chunk, static_cast<size_t>(n));
    }
    if (stdin_at != 99 && p[stdin_at].revents != 0) {
      ssize_t n = ::read(STDIN_FILENO, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        stdin_open = false;
        (void)send_frame(sock, 0, {});
      } else if (!send_frame(sock, 0, std::string_view(chunk, static_cast<size_t>(n)))) {
        stdin_open = false;
      }
    }
    if (winch_at != 99 && p[winch_at].revents != 0) {
      signalfd_siginfo si{};
      while (::read(winch.get(), &si, sizeof(si)) == sizeof(si)) {
      }
      if (auto s = size_json(); !s.empty()) {
        (void)send_frame(sock, 5, s);
      }
    }
  }
  raw.reset();
  return fail_exit("the connection to the berth service at " + uri +
                   " ended before the command did");
}

}  // namespace berth::api
