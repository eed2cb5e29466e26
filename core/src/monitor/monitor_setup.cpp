#include "monitor_setup.hpp"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/plugin/registry.hpp"
#include "berth/runtime/native_runtime.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::monitor {
namespace {

using nlohmann::json;

[[noreturn]] void die(int report_fd, const Error& e) {
  json j{{"error", e.message()}, {"code", runtime::exit_code_for(e)}};
  (void)util::write_all(report_fd, j.dump() + "\n", "report pipe");
  _exit(1);
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
    return fail_errno("receive the pty master", "console socket");
  }
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c == nullptr || c->cmsg_type != SCM_RIGHTS) {
    return fail(Errc::Internal, "console socket: no file descriptor received");
  }
  int fd;
  std::memcpy(&fd, CMSG_DATA(c), sizeof(fd));
  return UniqueFd(fd);
}

Result<sockaddr_un> dir_address(int dir_fd, const char* name, bool self) {
  // Through /proc: the run dir may be longer than sun_path allows.
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path =
      (self ? std::string("/proc/self/fd/") : "/proc/" + std::to_string(::getpid()) + "/fd/") +
      std::to_string(dir_fd) + "/" + name;
  if (path.size() >= sizeof(addr.sun_path)) {
    return fail(Errc::Internal, "socket path too long: " + path);
  }
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return addr;
}

struct Held {
  UniqueFd dir, attach, ctl, out, err, in;
  pid_t pid = 0;
};

Result<Held> create(const json& cfg, sdk::Runtime* given) {
  Held h;
  const std::string dir = cfg.at("dir").get<std::string>();
  const bool tty = cfg.value("tty", false);
  const bool want_stdin = cfg.value("stdin", false);
  const bool passthrough = cfg.value("log_driver", "") == "passthrough";
  h.dir.reset(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!h.dir) {
    return fail_errno("open", dir);
  }
  h.attach.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!h.attach) {
    return fail_errno("socket", "attach");
  }
  BERTH_TRY(sockaddr_un addr, dir_address(h.dir.get(), "attach", true));
  ::unlinkat(h.dir.get(), "attach", 0);
  if (::bind(h.attach.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(h.attach.get(), 16) != 0) {
    return fail_errno("bind the attach socket in", dir);
  }
  ::unlinkat(h.dir.get(), "ctl", 0);
  if (::mkfifoat(h.dir.get(), "ctl", 0600) != 0) {
    return fail_errno("mkfifo ctl in", dir);
  }
  h.ctl.reset(::openat(h.dir.get(), "ctl", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!h.ctl) {
    return fail_errno("open the ctl fifo in", dir);
  }
  sdk::RuntimePtr owned;
  sdk::Runtime* rt = given;
  if (rt == nullptr) {
    sdk::PluginContext ctx;
    ctx.run_root = cfg.at("run_root").get<std::string>();
    if (cfg.value("runtime", "native") == "native") {
      BERTH_TRY(owned, runtime::make_native_runtime(ctx));
    } else {
      auto reg = plugin::Registry::discover(plugin::Registry::default_search_path());
      json opts = json::object();
      if (auto p = cfg.value("runtime_path", ""); !p.empty()) {
        opts["path"] = p;
      }
      ctx.options_json = opts.dump();
      BERTH_TRY(owned, reg.create<sdk::Runtime>("oci", ctx));
    }
    rt = owned.get();
  }
  sdk::CreateRequest req;
  req.id = cfg.at("id").get<std::string>();
  req.bundle = cfg.at("bundle").get<std::string>();
  req.wait_for_start = true;
  UniqueFd console_listen, child_in, child_out, child_err;
  if (passthrough) {
    req.stdin_fd = want_stdin ? 0 : -1;
    req.stdout_fd = 1;
    req.stderr_fd = 2;
  } else if (tty) {
    console_listen.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    BERTH_TRY(sockaddr_un caddr, dir_address(h.dir.get(), "console.sock", false));
    ::unlinkat(h.dir.get(), "console.sock", 0);
    if (!console_listen ||
        ::bind(console_listen.get(), reinterpret_cast<sockaddr*>(&caddr), sizeof(caddr)) != 0 ||
        ::listen(console_listen.get(), 1) != 0) {
      return fail_errno("bind the console socket in", dir);
    }
    req.console_socket = caddr.sun_path;
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "stdout");
    }
    h.out.reset(p[0]);
    child_out.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "stderr");
    }
    h.err.reset(p[0]);
    child_err.reset(p[1]);
    if (want_stdin) {
      if (::pipe2(p, O_CLOEXEC) != 0) {
        return fail_errno("pipe", "stdin");
      }
      child_in.reset(p[0]);
      h.in.reset(p[1]);
    }
    req.stdin_fd = child_in.get();
    req.stdout_fd = child_out.get();
    req.stderr_fd = child_err.get();
  }
  BERTH_TRY(h.pid, rt->create(req));
  if (tty) {
    UniqueFd conn(::accept4(console_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) {
      return fail_errno("accept", "console socket");
    }
    BERTH_TRY(h.out, receive_fd(conn.get()));
    h.in.reset(::fcntl(h.out.get(), F_DUPFD_CLOEXEC, 0));
    ::unlinkat(h.dir.get(), "console.sock", 0);
  }
  return h;
}

}  // namespace

void setup_and_exec(const std::string& monitor_json, sdk::Runtime* runtime, int report_fd,
                    const std::string& monitor_bin) {
  // Nothing of the caller's survives: its descriptors (the container's lock, database files)
  // would otherwise be held by the container until it execs, after `start`, which needs them.
  if (report_fd > 3) {
    ::syscall(SYS_close_range, 3U, static_cast<unsigned>(report_fd) - 1, 0U);
  }
  ::syscall(SYS_close_range, static_cast<unsigned>(report_fd) + 1, ~0U, 0U);
  ::fcntl(report_fd, F_SETFD, FD_CLOEXEC);
  // Double fork: the caller reaps this child at once; the monitor runs in its own session,
  // re-parented to init (or the nearest sub-reaper), and survives the CLI.
  pid_t p = ::fork();
  if (p < 0) {
    die(report_fd, Error::from_errno("fork", "berth-monitor", errno));
  }
  if (p > 0) {
    _exit(0);
  }
  ::setsid();
  // SIGCHLD stays blocked through exec: berth-monitor's signalfd then sees an exit that happens
  // before it runs. Every other signal back to its default.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_SETMASK, &mask, nullptr);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH}) {
    ::signal(s, SIG_DFL);
  }
  ::signal(SIGPIPE, SIG_IGN);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) {
    die(report_fd, Error::from_errno("prctl", "child subreaper", errno));
  }
  json cfg;
  Held h;
  try {
    auto text = util::read_file(monitor_json);
    if (!text) {
      die(report_fd, text.error());
    }
    cfg = json::parse(*text);
    auto r = create(cfg, runtime);
    if (!r) {
      die(report_fd, r.error());
    }
    h = std::move(*r);
  } catch (const json::exception& e) {
    die(report_fd, Error(Errc::InvalidArgument, monitor_json + ": " + e.what()));
  }
  if (cfg.value("log_driver", "") == "passthrough") {
    int null = ::open("/dev/null", O_RDWR);
    for (int fd = 0; fd < 3; ++fd) {
      ::dup2(null, fd);
    }
    if (null > 2) {
      ::close(null);
    }
  }
  // Only what berth-monitor holds survives the exec.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  std::vector<std::string> args = {monitor_bin, monitor_json, std::to_string(h.pid)};
  for (int fd : {report_fd, h.dir.get(), h.attach.get(), h.ctl.get(), h.out.get(), h.err.get(),
                 h.in.get()}) {
    if (fd >= 0) {
      ::fcntl(fd, F_SETFD, 0);
    }
    args.push_back(std::to_string(fd));
  }
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  ::execv(monitor_bin.c_str(), argv.data());
  int err = errno;
  ::kill(h.pid, SIGKILL);
  die(report_fd, Error::from_errno("execute", monitor_bin + " (is berth installed whole?)", err));
}

}  // namespace berth::monitor
