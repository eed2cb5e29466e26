// attach (the client side of the monitor's attach socket) and exec.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "berth/container/service.hpp"
#include "berth/runtime/native_runtime.hpp"
#include "berth/spec/spec_builder.hpp"
#include "berth/util/digest.hpp"
#include "berth/util/fs.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;
using namespace detail;

namespace {

int g_sig_pipe = -1;

void on_signal(int sig) {
  if (g_sig_pipe >= 0) {
    unsigned char b = static_cast<unsigned char>(sig);
    (void)!::write(g_sig_pipe, &b, 1);
  }
}

// Forwards signals into a pipe for the poll loop while it lives.
class SignalPipe {
 public:
  explicit SignalPipe(const std::vector<int>& sigs) : sigs_(sigs) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) {
      return;
    }
    rd_.reset(p[0]);
    wr_.reset(p[1]);
    g_sig_pipe = wr_.get();
    for (int s : sigs_) {
      struct sigaction sa {};
      sa.sa_handler = on_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = SA_RESTART;
      struct sigaction old {};
      ::sigaction(s, &sa, &old);
      old_.push_back(old);
    }
  }
  ~SignalPipe() {
    for (size_t i = 0; i < old_.size(); ++i) {
      ::sigaction(sigs_[i], &old_[i], nullptr);
    }
    g_sig_pipe = -1;
  }
  int fd() const { return rd_.get(); }

 private:
  std::vector<int> sigs_;
  std::vector<struct sigaction> old_;
  UniqueFd rd_, wr_;
};

// Raw mode on a terminal, restored by the destructor.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::isatty(fd) && ::tcgetattr(fd, &saved_) == 0) {
      termios raw = saved_;
      ::cfmakeraw(&raw);
      raw.c_oflag |= OPOST;  // keep output processing as Podman does
      active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
    }
  }
  ~RawTerminal() {
    if (active_) {
      ::tcsetattr(fd_, TCSANOW, &saved_);
    }
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

}  // namespace

// "ctrl-p,ctrl-q" -> "\x10\x11". Empty string: none.
Result<std::string> parse_detach_keys(const std::string& keys) {
  std::string out;
  size_t pos = 0;
  while (pos <= keys.size() && !keys.empty()) {
    size_t comma = keys.find(',', pos);
    std::string k = keys.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (k.rfind("ctrl-", 0) == 0 && k.size() == 6) {
      char c = k[5];
      if (c >= 'a' && c <= 'z') {
        out += static_cast<char>(c - 'a' + 1);
      } else if (c == '@') {
        out += '\0';
      } else if (c == '[') {
        out += '\x1b';
      } else if (c == '\\') {
        out += '\x1c';
      } else if (c == ']') {
        out += '\x1d';
      } else if (c == '^') {
        out += '\x1e';
      } else if (c == '_') {
        out += '\x1f';
      } else {
        return fail(Errc::InvalidArgument, "invalid detach key \"" + k + "\"");
      }
    } else if (k.size() == 1) {
      out += k[0];
    } else {
      return fail(Errc::InvalidArgument, "invalid detach key \"" + k + "\"");
    }
    if (comma == std::string::npos) {
      break;
    }
    pos = comma + 1;
  }
  return out;
}

namespace {

void send_resize(const std::string& dir, int tty_fd) {
  winsize ws{};
  if (::ioctl(tty_fd, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0) {
    return;
  }
  UniqueFd ctl(::open((dir + "/ctl").c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
  if (ctl) {
    std::string msg = "1 " + std::to_string(ws.ws_row) + " " + std::to_string(ws.ws_col) + "\n";
    (void)util::write_all(ctl.get(), msg, "ctl");
  }
}

}  // namespace

Result<AttachResult> attach(engine::Engine& eng, const std::string& name_or_id,
                            const AttachOptions& opts) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running && st.status != Status::Created) {
    return fail(Errc::Conflict, "you can only attach to running containers: container " + rec.name +
                                    " is " + status_name(st.status));
  }
  std::string keys;
  if (!opts.detach_keys.empty()) {
    BERTH_TRY(keys, parse_detach_keys(opts.detach_keys));
  }
  const std::string dir = run_dir(eng.runroot(), rec.id);
  UniqueFd dfd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dfd) {
    return fail_errno("open", dir);
  }
  UniqueFd sock(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!sock) {
    return fail_errno("socket", "attach");
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = "/proc/self/fd/" + std::to_string(dfd.get()) + "/attach";
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail_errno("connect to the attach socket of container " + rec.name + " in", dir);
  }
  emit_event(eng, rec, "attach");
  std::optional<RawTerminal> raw;
  if (opts.tty && opts.stdin) {
    raw.emplace(opts.in_fd);
  }
  SignalPipe sigs({SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH});
  if (opts.tty && ::isatty(opts.out_fd)) {
    send_resize(dir, opts.out_fd);
  }
  if (opts.on_attached) {
    BERTH_TRYV(opts.on_attached());
  }
  st = read_state(eng.runroot(), rec);
  AttachResult res;
  bool have_code = false;
  bool stdin_open = opts.stdin;
  size_t key_match = 0;
  char buf[8193];
  for (;;) {
    pollfd fds[3];
    int n = 0;
    fds[n++] = {sock.get(), POLLIN, 0};
    fds[n++] = {sigs.fd(), POLLIN, 0};
    if (stdin_open) {
      fds[n++] = {opts.in_fd, POLLIN, 0};
    }
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("poll", "attach");
    }
    if (fds[1].revents & POLLIN) {
      unsigned char s;
      while (::read(sigs.fd(), &s, 1) == 1) {
        if (s == SIGWINCH) {
          if (opts.tty) {
            send_resize(dir, opts.out_fd);
          }
        } else if (opts.sig_proxy && !opts.tty && st.pid > 0) {
          ::kill(st.pid, s);
        }
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = ::recv(sock.get(), buf, sizeof(buf), 0);
      if (r < 0 && errno == EINTR) {
        continue;
      }
      if (r <= 0) {
        break;
      }
      uint8_t type = static_cast<uint8_t>(buf[0]);
      std::string_view data(buf + 1, static_cast<size_t>(r - 1));
      if (type == 2) {
        (void)util::write_all(opts.out_fd, data, "stdout");
      } else if (type == 3) {
        (void)util::write_all(opts.err_fd, data, "stderr");
      } else if (type == 4) {
        // The monitor drains the container's output before it sends the code: nothing follows
        // but its cleanup, which the caller need not wait for.
        res.exit_code = std::atoi(std::string(data).c_str());
        have_code = true;
        break;
      }
    }
    if (stdin_open && n > 2 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t r = ::read(opts.in_fd, buf, 8192);
      if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
        continue;
      }
      if (r <= 0) {
        stdin_open = false;
        ::shutdown(sock.get(), SHUT_WR);
        continue;
      }
      std::string out;
      for (ssize_t i = 0; i < r; ++i) {
        char c = buf[i];
        if (!keys.empty() && c == keys[key_match]) {
          if (++key_match == keys.size()) {
            res.detached = true;
            return res;
          }
          continue;
        }
        if (key_match > 0) {
          out.append(keys, 0, key_match);
          key_match = 0;
          if (c == keys[0]) {
            key_match = 1;
            continue;
          }
        }
        out += c;
      }
      if (!out.empty()) {
        ::send(sock.get(), out.data(), out.size(), MSG_NOSIGNAL);
      }
    }
  }
  if (!have_code) {
    if (!wait_exited(eng.runroot(), rec, 5000)) {
      res.detached = true;  // the monitor went away while the container runs
      return res;
    }
    res.exit_code = read_state(eng.runroot(), rec).exit_code;
  }
  return res;
}

Result<int> exec(engine::Engine& eng, const std::string& name_or_id, const ExecOptions& opts) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running) {
    return fail(Errc::Conflict, "can only create exec sessions on running containers: container " +
                                    rec.name + " is " + status_name(st.status) +
                                    ": container state improper");
  }
  BERTH_TRY(std::string text, util::read_file(rec.bundle + "/config.json"));
  json spec;
  try {
    spec = json::parse(text);
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, rec.bundle + "/config.json: " + e.what());
  }
  json proc = spec["process"];
  proc["args"] = opts.command;
  proc["terminal"] = opts.tty;
  if (opts.tty) {
    // The runtime sizes the pty before the process runs: a resize after the start would race
    // with it (`stty size` at once saw 0 0).
    winsize ws{};
    if (opts.console_height > 0 && opts.console_width > 0) {
      ws.ws_row = opts.console_height;
      ws.ws_col = opts.console_width;
    } else if (::ioctl(1, TIOCGWINSZ, &ws) != 0) {
      ws = winsize{};
    }
    if (ws.ws_row > 0 && ws.ws_col > 0) {
      proc["consoleSize"] = {{"height", ws.ws_row}, {"width", ws.ws_col}};
    }
  }
  if (!opts.workdir.empty()) {
    proc["cwd"] = opts.workdir;
  }
  std::vector<std::string> env = proc.value("env", std::vector<std::string>{});
  for (const auto& e : opts.env) {
    std::string key = e.substr(0, e.find('='));
    std::erase_if(env, [&](const std::string& x) { return x.substr(0, x.find('=')) == key; });
    env.push_back(e);
  }
  proc["env"] = env;
  if (!opts.user.empty()) {
    // NAME[:GROUP] or UID[:GID], resolved in the container's /etc/passwd and /etc/group.
    std::string rootfs;
    if (spec.contains("root")) {
      rootfs = spec["root"].value("path", "");
    }
    if (!rootfs.empty() && rootfs[0] != '/') {
      rootfs = rec.bundle + "/" + rootfs;
    }
    auto u = spec::resolve_user(rootfs, opts.user);
    if (!u) {
      return fail(
          std::move(u).error().wrap("exec --user " + opts.user + " in container " + rec.name));
    }
    proc["user"] = {{"uid", u->uid}, {"gid", u->gid}};
    if (!u->additional_gids.empty()) {
      proc["user"]["additionalGids"] = u->additional_gids;
    }
    bool home_given = std::any_of(opts.env.begin(), opts.env.end(),
                                  [](const std::string& x) { return x.rfind("HOME=", 0) == 0; });
    if (!home_given) {
      std::erase_if(env, [](const std::string& x) { return x.rfind("HOME=", 0) == 0; });
      env.push_back("HOME=" + u->home);
      proc["env"] = env;
    }
  }
  if (opts.privileged && proc.contains("capabilities")) {
    std::vector<std::string> all;
    for (const auto& c : proc["capabilities"]["bounding"]) {
      all.push_back(c.get<std::string>());
    }
    for (const char* set : {"effective", "permitted"}) {
      proc["capabilities"][set] = all;
    }
  }
  BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
  // An OCI runtime's exec process is re-parented: be its sub-reaper to collect its exit code.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  sdk::ExecRequest req;
  req.id = rec.id;
  req.process_json = proc.dump();
  UniqueFd console_listen;
  std::string tmpdir;
  if (opts.tty) {
    char tmpl[] = "/tmp/berth-exec-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      return fail_errno("mkdtemp", "/tmp/berth-exec-XXXXXX");
    }
    tmpdir = tmpl;
    console_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    req.console_socket = tmpdir + "/console.sock";
    std::strncpy(addr.sun_path, req.console_socket.c_str(), sizeof(addr.sun_path) - 1);
    if (!console_listen ||
        ::bind(console_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(console_listen.get(), 1) != 0) {
      (void)util::remove_tree(tmpdir);
      return fail_errno("bind the console socket", req.console_socket);
    }
  } else if (!opts.detach) {
    req.stdin_fd = opts.interactive ? 0 : -1;
    req.stdout_fd = 1;
    req.stderr_fd = 2;
  }
  auto pid = rt->exec(req);
  if (!tmpdir.empty() && !pid) {
    (void)util::remove_tree(tmpdir);
  }
  if (!pid) {
    int code = runtime::exit_code_for(pid.error());
    return fail(exec_error(code, pid.error().message()));
  }
  emit_event(eng, rec, "exec");
  UniqueFd master;
  if (opts.tty) {
    UniqueFd conn(::accept4(console_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
    (void)util::remove_tree(tmpdir);
    if (!conn) {
      return fail_errno("accept", "console socket");
    }
    char dummy[64];
    iovec iov{dummy, sizeof(dummy)};
    alignas(cmsghdr) char ctrl[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = ctrl;
    msg.msg_controllen = sizeof(ctrl);
    if (::recvmsg(conn.get(), &msg, MSG_CMSG_CLOEXEC) < 0 || CMSG_FIRSTHDR(&msg) == nullptr) {
      return fail_errno("receive the pty master", "console socket");
    }
    int fd;
    std::memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&msg)), sizeof(fd));
    master.reset(fd);
  }
  if (opts.detach) {
    return 0;
  }
  if (master) {
    winsize ws{};
    if (::ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      ::ioctl(master.get(), TIOCSWINSZ, &ws);
    }
    std::optional<RawTerminal> raw;
    if (opts.interactive) {
      raw.emplace(0);
    }
    bool in_open = opts.interactive;
    char buf[8192];
    for (;;) {
      pollfd fds[2] = {{master.get(), POLLIN, 0}, {0, POLLIN, 0}};
      if (::poll(fds, in_open ? 2 : 1, -1) < 0) {
        if (errno == EINTR) {
          continue;
        }
        break;
      }
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = ::read(master.get(), buf, sizeof(buf));
        if (r <= 0) {
          break;
        }
        (void)util::write_all(1, std::string_view(buf, r), "stdout");
      }
      if (in_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
        ssize_t r = ::read(0, buf, sizeof(buf));
        if (r <= 0) {
          in_open = false;
          const char eot = 4;
          (void)!::write(master.get(), &eot, 1);
          continue;
        }
        (void)util::write_all(master.get(), std::string_view(buf, r), "pty");
      }
    }
  }
  int status = 0;
  while (::waitpid(*pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("wait for the exec process", std::to_string(*pid));
    }
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  emit_event(eng, rec, "exec_died", code);
  return code;
}

Result<UniqueFd> exec_terminal(int exec_pidfd, pid_t exec_pid) {
  // exec() above holds the pty master the runtime sent it: the one /dev/ptmx (5, 2) among its
  // fds. Opening /proc/PID/fd/N would make a new pty, so the fd is taken with pidfd_getfd, and
  // checked after taking (the scan and the take are not atomic).
  const std::string dir = "/proc/" + std::to_string(exec_pid) + "/fd";
  std::error_code ec;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    return fail(Errc::NotFound, "read " + dir + ": " + ec.message() + " (the exec process " +
                                    std::to_string(exec_pid) + " has ended)");
  }
  for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
    if (ec) {
      break;
    }
    const std::string name = it->path().filename().string();
    struct stat st {};
    if (::stat(it->path().c_str(), &st) != 0 || !S_ISCHR(st.st_mode) || major(st.st_rdev) != 5 ||
        minor(st.st_rdev) != 2) {
      continue;
    }
    // glibc 2.36's <sys/pidfd.h> lacks extern "C": the system call itself.
    UniqueFd fd(
        static_cast<int>(::syscall(SYS_pidfd_getfd, exec_pidfd, std::atoi(name.c_str()), 0)));
    if (!fd) {
      if (errno == EBADF) {
        continue;  // closed since the scan
      }
      return fail_errno("pidfd_getfd the terminal of exec process", std::to_string(exec_pid));
    }
    if (::fstat(fd.get(), &st) == 0 && S_ISCHR(st.st_mode) && major(st.st_rdev) == 5 &&
        minor(st.st_rdev) == 2) {
      return fd;
    }
  }
  return fail(Errc::NotFound, "exec process " + std::to_string(exec_pid) + " has no terminal yet");
}

}  // namespace berth::container
