// berth-monitor: conmon's role for one container. Started by the CLI with a config file and the
// write end of a report pipe; it double-forks away (setsid), becomes a child sub-reaper, creates
// the container through the runtime (native: in-process clone, so the container is its child; oci:
// `runc create`, whose init is re-parented here), reports the pid or the error, then holds the
// container's stdio: logs (k8s-file), the attach socket (SOCK_SEQPACKET, conmon's framing: first
// byte 2=stdout 3=stderr from the monitor, raw stdin from clients), the control fifo ("1 ROWS COLS"
// resizes the pty, "2" closes stdin). When the container exits it writes the exit code atomically,
// tells attached clients (a packet of type 4 carrying the code as text), runs
// `berth container cleanup`, and exits. Single-threaded, one epoll loop.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/container/log_format.hpp"
#include "berth/plugin/registry.hpp"
#include "berth/runtime/native_runtime.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace {

using berth::Error;
using berth::Result;
using berth::UniqueFd;
using nlohmann::json;
namespace bc = berth::container;

constexpr uint8_t kStdin = 1;
constexpr uint8_t kStdout = 2;
constexpr uint8_t kStderr = 3;
constexpr uint8_t kExit = 4;

int64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

void report(int fd, const json& j) {
  if (fd < 0) {
    return;
  }
  std::string s = j.dump() + "\n";
  (void)berth::util::write_all(fd, s, "report pipe");
}

int exit_code_of(const Error& e) {
  return berth::runtime::exit_code_for(e);
}

struct Config {
  std::string id;
  std::string runtime = "native";
  std::string runtime_path;
  std::string run_root;
  std::string bundle;
  std::string dir;  // <runroot>/containers/<id>
  std::string log_driver = "k8s-file";
  std::string log_path;
  int64_t log_max_size = -1;
  bool tty = false;
  bool stdin = false;
  bool stdin_once = false;
  bool passthrough = false;
  std::vector<std::string> cleanup;
};

Result<Config> load_config(const std::string& path) {
  BERTH_TRY(std::string text, berth::util::read_file(path));
  try {
    json j = json::parse(text);
    Config c;
    c.id = j.at("id");
    c.runtime = j.value("runtime", c.runtime);
    c.runtime_path = j.value("runtime_path", "");
    c.run_root = j.at("run_root");
    c.bundle = j.at("bundle");
    c.dir = j.at("dir");
    c.log_driver = j.value("log_driver", c.log_driver);
    c.log_path = j.value("log_path", "");
    c.log_max_size = j.value("log_max_size", int64_t{-1});
    c.tty = j.value("tty", false);
    c.stdin = j.value("stdin", false);
    c.stdin_once = j.value("stdin_once", false);
    c.passthrough = c.log_driver == "passthrough";
    c.cleanup = j.value("cleanup", std::vector<std::string>{});
    return c;
  } catch (const json::exception& e) {
    return berth::fail(berth::Errc::InvalidArgument, path + ": " + e.what());
  }
}

class Monitor {
 public:
  explicit Monitor(Config c) : cfg_(std::move(c)) {}

  int run(int report_fd);

 private:
  Result<berth::sdk::RuntimePtr> make_runtime();
  Result<void> open_sockets();
  void add(int fd, uint32_t events);
  void on_output(int fd, uint8_t type);
  void write_log(uint8_t type, const char* data, size_t n);
  void write_log_record(std::string_view rec);
  void broadcast(uint8_t type, const char* data, size_t n);
  void on_client(int fd);
  void on_ctl();
  void close_stdin();
  void reap();
  void finish();

  Config cfg_;
  UniqueFd dir_fd_;
  UniqueFd epoll_;
  UniqueFd attach_;
  UniqueFd ctl_;
  UniqueFd sigfd_;
  UniqueFd stdin_w_;   // our end of the container's stdin (pipe) or the pty master (dup)
  UniqueFd stdout_r_;  // or the pty master
  UniqueFd stderr_r_;
  UniqueFd log_fd_;
  int64_t log_size_ = 0;
  std::map<int, UniqueFd> clients_;
  pid_t pid_ = 0;
  bool exited_ = false;
  int exit_code_ = 0;
};

Result<berth::sdk::RuntimePtr> Monitor::make_runtime() {
  berth::sdk::PluginContext ctx;
  ctx.run_root = cfg_.run_root;
  if (cfg_.runtime == "native") {
    return berth::runtime::make_native_runtime(ctx);
  }
  auto reg = berth::plugin::Registry::discover(berth::plugin::Registry::default_search_path());
  json opts = json::object();
  if (!cfg_.runtime_path.empty()) {
    opts["path"] = cfg_.runtime_path;
  }
  ctx.options_json = opts.dump();
  return reg.create<berth::sdk::Runtime>("oci", ctx);
}

Result<void> Monitor::open_sockets() {
  dir_fd_.reset(::open(cfg_.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd_) {
    return berth::fail_errno("open", cfg_.dir);
  }
  // Socket paths go through /proc/self/fd: the run dir may be longer than sun_path allows.
  const std::string base = "/proc/self/fd/" + std::to_string(dir_fd_.get());
  attach_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!attach_) {
    return berth::fail_errno("socket", "attach");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = base + "/attach";
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  ::unlinkat(dir_fd_.get(), "attach", 0);
  if (::bind(attach_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(attach_.get(), 16) != 0) {
    return berth::fail_errno("bind attach socket in", cfg_.dir);
  }
  ::unlinkat(dir_fd_.get(), "ctl", 0);
  if (::mkfifoat(dir_fd_.get(), "ctl", 0600) != 0) {
    return berth::fail_errno("mkfifo ctl in", cfg_.dir);
  }
  ctl_.reset(::openat(dir_fd_.get(), "ctl", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!ctl_) {
    return berth::fail_errno("open ctl fifo in", cfg_.dir);
  }
  return {};
}

void Monitor::add(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev);
}

void Monitor::write_log(uint8_t type, const char* data, size_t n) {
  if (!log_fd_) {
    return;
  }
  std::string all;
  bc::append_log_records(all, now_ns(),
                         type == kStderr ? bc::LogStream::Stderr : bc::LogStream::Stdout,
                         std::string_view(data, n));
  // Record by record, so that rotation splits a large chunk at line boundaries.
  size_t pos = 0;
  while (pos < all.size()) {
    size_t nl = all.find('\n', pos);
    size_t end = nl == std::string::npos ? all.size() : nl + 1;
    write_log_record(std::string_view(all).substr(pos, end - pos));
    pos = end;
  }
}

void Monitor::write_log_record(std::string_view rec) {
  if (bc::needs_rotation(log_size_, static_cast<int64_t>(rec.size()), cfg_.log_max_size)) {
    const std::string old = bc::rotated_path(cfg_.log_path);
    if (::rename(cfg_.log_path.c_str(), old.c_str()) == 0) {
      UniqueFd fresh(
          ::open(cfg_.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600));
      if (fresh) {
        log_fd_ = std::move(fresh);
        log_size_ = 0;
      }
    }
  }
  if (berth::util::write_all(log_fd_.get(), rec, "log")) {
    log_size_ += static_cast<int64_t>(rec.size());
  }
}

void Monitor::broadcast(uint8_t type, const char* data, size_t n) {
  char buf[8193];
  buf[0] = static_cast<char>(type);
  std::memcpy(buf + 1, data, n);
  for (auto it = clients_.begin(); it != clients_.end();) {
    ssize_t w = ::send(it->first, buf, n + 1, MSG_NOSIGNAL);
    if (w < 0 && errno == EPIPE) {
      it = clients_.erase(it);
    } else {
      ++it;
    }
  }
}

void Monitor::on_output(int fd, uint8_t type) {
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n > 0) {
      write_log(type, buf, static_cast<size_t>(n));
      broadcast(type, buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN)) {
      // EOF (or EIO on a pty whose slave closed): stop watching.
      ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
      if (fd == stdout_r_.get() && !cfg_.tty) {
        stdout_r_.reset();
      } else if (fd == stderr_r_.get()) {
        stderr_r_.reset();
      }
    }
    return;
  }
}

void Monitor::close_stdin() {
  if (!stdin_w_) {
    return;
  }
  if (cfg_.tty) {
    // A pty has no half-close: send EOF (^D) as a terminal would.
    const char eot = 4;
    (void)::write(stdin_w_.get(), &eot, 1);
    return;
  }
  stdin_w_.reset();
}

void Monitor::on_client(int fd) {
  char buf[8192];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n > 0) {
    if (stdin_w_) {
      (void)berth::util::write_all(stdin_w_.get(), std::string_view(buf, n), "stdin");
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    return;
  }
  // The client shut down its side: stdin ends here for a stdin-once container.
  epoll_event ev{};
  ev.events = 0;
  ev.data.fd = fd;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &ev);
  if (n < 0) {
    clients_.erase(fd);
    return;
  }
  if (cfg_.stdin_once) {
    close_stdin();
  }
}

void Monitor::on_ctl() {
  char buf[256];
  ssize_t n = ::read(ctl_.get(), buf, sizeof(buf) - 1);
  if (n <= 0) {
    return;
  }
  buf[n] = 0;
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line; line = strtok_r(nullptr, "\n", &save)) {
    int kind = 0, rows = 0, cols = 0;
    if (std::sscanf(line, "%d %d %d", &kind, &rows, &cols) >= 1) {
      if (kind == 1 && cfg_.tty && stdout_r_) {
        winsize ws{};
        ws.ws_row = static_cast<unsigned short>(rows);
        ws.ws_col = static_cast<unsigned short>(cols);
        ::ioctl(stdout_r_.get(), TIOCSWINSZ, &ws);
      } else if (kind == 2) {
        close_stdin();
      }
    }
  }
}

void Monitor::reap() {
  signalfd_siginfo si;
  while (::read(sigfd_.get(), &si, sizeof(si)) == sizeof(si)) {
  }
  for (;;) {
    int status = 0;
    pid_t p = ::waitpid(-1, &status, WNOHANG);
    if (p <= 0) {
      return;
    }
    if (p == pid_) {
      exited_ = true;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

void Monitor::finish() {
  // Whatever the container wrote before it died is in the pipes: drain it.
  if (stdout_r_) {
    on_output(stdout_r_.get(), kStdout);
  }
  if (stderr_r_) {
    on_output(stderr_r_.get(), kStderr);
  }
  log_fd_.reset();
  const std::string exit_path = cfg_.dir + "/exit";
  (void)berth::util::write_file_atomic(exit_path, std::to_string(exit_code_));
  const std::string code = std::to_string(exit_code_);
  broadcast(kExit, code.data(), code.size());
  stdin_w_.reset();
  stdout_r_.reset();
  if (!cfg_.cleanup.empty()) {
    pid_t c = ::fork();
    if (c == 0) {
      std::vector<char*> argv;
      for (auto& a : cfg_.cleanup) {
        argv.push_back(a.data());
      }
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      _exit(127);
    }
    if (c > 0) {
      int st = 0;
      while (::waitpid(c, &st, 0) < 0 && errno == EINTR) {
      }
    }
  }
  clients_.clear();
  ::unlinkat(dir_fd_.get(), "attach", 0);
  ::unlinkat(dir_fd_.get(), "ctl", 0);
}

Result<UniqueFd> receive_fd(int sock) {
  char dummy[64];
  iovec iov{dummy, sizeof(dummy)};
  alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = ctrl;
  msg.msg_controllen = sizeof(ctrl);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return berth::fail_errno("receive the pty master", "console socket");
  }
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    return berth::fail(berth::Errc::Internal, "console socket: no file descriptor received");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return UniqueFd(fd);
}

int Monitor::run(int report_fd) {
  auto fail_report = [&](const Error& e) {
    report(report_fd, {{"error", e.message()}, {"code", exit_code_of(e)}});
    return 1;
  };
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  sigfd_.reset(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!epoll_ || !sigfd_) {
    return fail_report(Error::from_errno("epoll/signalfd", "monitor", errno));
  }
  if (auto r = open_sockets(); !r) {
    return fail_report(r.error());
  }
  auto rt = make_runtime();
  if (!rt) {
    return fail_report(rt.error());
  }
  berth::sdk::CreateRequest req;
  req.id = cfg_.id;
  req.bundle = cfg_.bundle;
  req.wait_for_start = true;
  UniqueFd console_listen;
  UniqueFd child_in, child_out, child_err;
  if (cfg_.passthrough) {
    req.stdin_fd = cfg_.stdin ? 0 : -1;
    req.stdout_fd = 1;
    req.stderr_fd = 2;
  } else if (cfg_.tty) {
    console_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const std::string path = "/proc/" + std::to_string(::getpid()) + "/fd/" +
                             std::to_string(dir_fd_.get()) + "/console.sock";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    ::unlinkat(dir_fd_.get(), "console.sock", 0);
    if (!console_listen ||
        ::bind(console_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(console_listen.get(), 1) != 0) {
      return fail_report(Error::from_errno("bind console socket in", cfg_.dir, errno));
    }
    req.console_socket = path;
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_report(Error::from_errno("pipe", "stdout", errno));
    }
    stdout_r_.reset(p[0]);
    child_out.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_report(Error::from_errno("pipe", "stderr", errno));
    }
    stderr_r_.reset(p[0]);
    child_err.reset(p[1]);
    if (cfg_.stdin) {
      if (::pipe2(p, O_CLOEXEC) != 0) {
        return fail_report(Error::from_errno("pipe", "stdin", errno));
      }
      child_in.reset(p[0]);
      stdin_w_.reset(p[1]);
    }
    req.stdin_fd = child_in.get();
    req.stdout_fd = child_out.get();
    req.stderr_fd = child_err.get();
  }
  auto pid = (*rt)->create(req);
  if (!pid) {
    return fail_report(pid.error());
  }
  pid_ = *pid;
  child_in.reset();
  child_out.reset();
  child_err.reset();
  if (cfg_.tty && console_listen) {
    UniqueFd conn(::accept4(console_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      return fail_report(Error::from_errno("accept", "console socket", errno));
    }
    auto master = receive_fd(conn.get());
    if (!master) {
      return fail_report(master.error());
    }
    stdout_r_ = std::move(*master);
    stdin_w_.reset(::fcntl(stdout_r_.get(), F_DUPFD_CLOEXEC, 0));
    ::unlinkat(dir_fd_.get(), "console.sock", 0);
  }
  if (cfg_.passthrough) {
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) {
      ::dup2(null, fd);
    }
    if (null > 2) {
      ::close(null);
    }
  }
  if (cfg_.log_driver == "k8s-file" || cfg_.log_driver == "json-file") {
    log_fd_.reset(::open(cfg_.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    struct stat sb;
    if (log_fd_ && ::fstat(log_fd_.get(), &sb) == 0) {
      log_size_ = sb.st_size;
    }
  }
  report(report_fd, {{"pid", pid_}, {"monitor_pid", ::getpid()}});
  ::close(report_fd);

  for (int fd : {stdout_r_.get(), stderr_r_.get()}) {
    if (fd >= 0) {
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
      add(fd, EPOLLIN);
    }
  }
  add(attach_.get(), EPOLLIN);
  add(ctl_.get(), EPOLLIN);
  add(sigfd_.get(), EPOLLIN);
  // The container may have died already (before signalfd saw it).
  reap();
  while (!exited_) {
    epoll_event evs[16];
    int n = ::epoll_wait(epoll_.get(), evs, 16, -1);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (int i = 0; i < n; ++i) {
      int fd = evs[i].data.fd;
      if (fd == sigfd_.get()) {
        reap();
      } else if (fd == stdout_r_.get()) {
        on_output(fd, kStdout);
      } else if (fd == stderr_r_.get()) {
        on_output(fd, kStderr);
      } else if (fd == attach_.get()) {
        int c = ::accept4(attach_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (c >= 0) {
          clients_.emplace(c, UniqueFd(c));
          add(c, EPOLLIN);
        }
      } else if (fd == ctl_.get()) {
        on_ctl();
      } else if (clients_.count(fd)) {
        if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
          ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
          clients_.erase(fd);
        } else {
          on_client(fd);
        }
      }
    }
  }
  finish();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: berth-monitor CONFIG REPORT_FD (started by berth)\n");
    return 2;
  }
  int report_fd = std::atoi(argv[2]);
  ::signal(SIGPIPE, SIG_IGN);
  auto cfg = load_config(argv[1]);
  if (!cfg) {
    report(report_fd, {{"error", cfg.error().message()}, {"code", 125}});
    return 1;
  }
  // Double fork: the CLI reaps the first child at once; the monitor runs in its own session,
  // re-parented to init, and survives the CLI.
  pid_t p = ::fork();
  if (p < 0) {
    report(report_fd,
           {{"error", std::string("fork monitor: ") + std::strerror(errno)}, {"code", 125}});
    return 1;
  }
  if (p > 0) {
    _exit(0);
  }
  ::setsid();
  ::fcntl(report_fd, F_SETFD, FD_CLOEXEC);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    report(report_fd, {{"error", std::string("prctl child subreaper: ") + std::strerror(errno)},
                       {"code", 125}});
    return 1;
  }
  Monitor m(std::move(*cfg));
  return m.run(report_fd);
}
