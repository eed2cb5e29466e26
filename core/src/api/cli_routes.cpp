// POST /libpod/berth/cli: the remote CLI (`berth --url/--remote/--connection ...`). The service
// runs the same berth command tree in a child process over its own store, with the client's argv,
// a small environment subset, its working directory and either a pseudo-terminal of the client's
// size or pipes, and relays the streams over a hijacked connection (docs/remote.md):
//   client -> service: frames [type, 0, 0, 0, size BE32] + data; 0 stdin (size 0: end of
//                      stdin), 5 resize ({"h": rows, "w": cols}).
//   service -> client: 1 stdout, 2 stderr, 3 the end: {"ExitCode": N}.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <thread>

#include "berth/sdk/unique_fd.hpp"
#include "berth/util/log.hpp"
#include "berth/util/spawn.hpp"
#include "routes.hpp"

extern char** environ;

namespace berth::api {
namespace {

using nlohmann::json;

// The client variables a command's behaviour depends on; the rest of the environment is the
// service's (PATH, HOME, XDG_RUNTIME_DIR of the service's user).
bool forwarded_env(const std::string& name) {
  static const char* const kNames[] = {"TERM",  "LANG",     "LANGUAGE",     "TZ",    "COLUMNS",
                                       "LINES", "NO_COLOR", "BERTH_TMPDIR", "TMPDIR"};
  for (const char* n : kNames) {
    if (name == n) {
      return true;
    }
  }
  return name.rfind("LC_", 0) == 0;
}

struct CliRequest {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  bool tty = false;
  unsigned short rows = 0;
  unsigned short cols = 0;
  std::string cwd;
};

Result<CliRequest> parse_cli_request(const json& b) {
  if (!b.is_object() || !b.contains("argv") || !b["argv"].is_array()) {
    return fail(Errc::InvalidArgument, "the remote CLI request needs \"argv\": [...]");
  }
  CliRequest r;
  for (const auto& a : b["argv"]) {
    if (!a.is_string()) {
      return fail(Errc::InvalidArgument, "argv must hold strings");
    }
    r.argv.push_back(a.get<std::string>());
  }
  if (b.contains("env") && b["env"].is_object()) {
    for (auto& [k, v] : b["env"].items()) {
      if (v.is_string() && forwarded_env(k)) {
        r.env.emplace_back(k, v.get<std::string>());
      }
    }
  }
  r.tty = b.value("tty", false);
  r.rows = static_cast<unsigned short>(std::clamp(b.value("rows", 0), 0, 65535));
  r.cols = static_cast<unsigned short>(std::clamp(b.value("cols", 0), 0, 65535));
  r.cwd = b.value("cwd", std::string());
  return r;
}

std::vector<std::string> child_env(const CliRequest& r) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string s(*e);
    auto name = s.substr(0, s.find('='));
    if (forwarded_env(name) || name == "LISTEN_FDS" || name == "LISTEN_PID" ||
        name == "NOTIFY_SOCKET") {
      continue;
    }
    out.push_back(std::move(s));
  }
  for (const auto& [k, v] : r.env) {
    out.push_back(k + "=" + v);
  }
  return out;
}

void set_nonblock(int fd) {
  int fl = ::fcntl(fd, F_GETFL);
  if (fl >= 0) {
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  }
}

struct CliChild {
  pid_t pid = -1;
  UniqueFd in;      // write end of stdin (pipe) or the pty master
  UniqueFd out;     // stdout (pipe) or the pty master (dup)
  UniqueFd err;     // stderr pipe; unset with a pty
  UniqueFd master;  // with a pty: for resizes
};

Result<CliChild> spawn_cli(const std::vector<std::string>& argv, const CliRequest& r) {
  CliChild c;
  // The child's signal state is the default one, whatever the service's threads block.
  util::SpawnSetup spawn;
  BERTH_TRYV(spawn.init(argv[0]));
  posix_spawn_file_actions_t& fa = *spawn.actions();
  UniqueFd keep_in;
  UniqueFd keep_out;
  UniqueFd keep_err;
  if (r.tty) {
    int m = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) {
      return fail_errno("posix_openpt", "remote CLI terminal");
    }
    c.master.reset(m);
    if (::grantpt(m) != 0 || ::unlockpt(m) != 0) {
      return fail_errno("unlockpt", "remote CLI terminal");
    }
    char name[128];
    if (::ptsname_r(m, name, sizeof(name)) != 0) {
      return fail_errno("ptsname", "remote CLI terminal");
    }
    if (r.rows > 0 && r.cols > 0) {
      struct winsize ws {};
      ws.ws_row = r.rows;
      ws.ws_col = r.cols;
      (void)::ioctl(m, TIOCSWINSZ, &ws);
    }
    // A session of its own whose controlling terminal is the pty (opened after setsid).
    BERTH_TRYV(spawn.add_flags(POSIX_SPAWN_SETSID));
    posix_spawn_file_actions_addopen(&fa, 0, name, O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&fa, 0, 1);
    posix_spawn_file_actions_adddup2(&fa, 0, 2);
    int in = ::fcntl(m, F_DUPFD_CLOEXEC, 0);
    int out = ::fcntl(m, F_DUPFD_CLOEXEC, 0);
    if (in < 0 || out < 0) {
      return fail_errno("dup", "remote CLI terminal");
    }
    c.in.reset(in);
    c.out.reset(out);
  } else {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "remote CLI stdin");
    }
    keep_in.reset(p[0]);
    c.in.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "remote CLI stdout");
    }
    c.out.reset(p[0]);
    keep_out.reset(p[1]);
    if (::pipe2(p, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "remote CLI stderr");
    }
    c.err.reset(p[0]);
    keep_err.reset(p[1]);
    posix_spawn_file_actions_adddup2(&fa, keep_in.get(), 0);
    posix_spawn_file_actions_adddup2(&fa, keep_out.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, keep_err.get(), 2);
  }
  std::error_code ec;
  if (!r.cwd.empty() && std::filesystem::is_directory(r.cwd, ec)) {
    posix_spawn_file_actions_addchdir_np(&fa, r.cwd.c_str());
  }
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  auto env = child_env(r);
  std::vector<char*> envp;
  for (auto& e : env) {
    envp.push_back(e.data());
  }
  envp.push_back(nullptr);
  int rc = ::posix_spawn(&c.pid, argv[0].c_str(), &fa, spawn.attr(), args.data(), envp.data());
  if (rc != 0) {
    errno = rc;
    return fail_errno("spawn", argv[0]);
  }
  return c;
}

int exit_status(int st) {
  if (WIFEXITED(st)) {
    return WEXITSTATUS(st);
  }
  if (WIFSIGNALED(st)) {
    return 128 + WTERMSIG(st);
  }
  return 125;
}

// Reads the client's frames (stdin, resizes) until the client closes or `stop` is readable.
void relay_input(int sock, std::string pending, CliChild& c, int stop, int pidfd) {
  std::string buf = std::move(pending);
  bool stdin_open = true;
  char chunk[16384];
  for (;;) {
    // Whole frames in the buffer first.
    while (buf.size() >= 8) {
      uint32_t n = (static_cast<uint32_t>(static_cast<unsigned char>(buf[4])) << 24) |
                   (static_cast<uint32_t>(static_cast<unsigned char>(buf[5])) << 16) |
                   (static_cast<uint32_t>(static_cast<unsigned char>(buf[6])) << 8) |
                   static_cast<uint32_t>(static_cast<unsigned char>(buf[7]));
      if (buf.size() < 8 + static_cast<size_t>(n)) {
        break;
      }
      const auto type = static_cast<unsigned char>(buf[0]);
      std::string_view data(buf.data() + 8, n);
      if (type == 0 && stdin_open) {
        if (n == 0) {
          if (!c.master) {
            c.in.reset();  // end of the child's stdin
          }
          stdin_open = false;
        } else if (c.in) {
          if (!send_all(c.in.get(), data)) {
            stdin_open = false;
            if (!c.master) {
              c.in.reset();
            }
          }
        }
      } else if (type == 5 && c.master) {
        try {
          auto j = json::parse(data);
          struct winsize ws {};
          ws.ws_row = static_cast<unsigned short>(j.value("h", 0));
          ws.ws_col = static_cast<unsigned short>(j.value("w", 0));
          if (ws.ws_row > 0 && ws.ws_col > 0) {
            (void)::ioctl(c.master.get(), TIOCSWINSZ, &ws);
          }
        } catch (const json::exception&) {
          // A malformed resize is dropped; the session goes on.
        }
      }
      buf.erase(0, 8 + n);
    }
    pollfd p[2] = {{sock, POLLIN, 0}, {stop, POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return;
    }
    if (p[1].revents != 0) {
      return;
    }
    ssize_t n = ::recv(sock, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      // The client went away (it never half-closes: stdin's end is a frame): so does the
      // command. The pidfd cannot name a reused pid.
      if (pidfd >= 0) {
        (void)::syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, nullptr, 0);
      }
      if (!c.master) {
        c.in.reset();
      }
      return;
    }
    buf.append(chunk, static_cast<size_t>(n));
  }
}

void serve_cli(const ServiceContext& ctx, const CliRequest& r, RawConnection& conn) {
  auto argv = berth_argv(ctx);
  argv.insert(argv.end(), r.argv.begin(), r.argv.end());
  auto child = spawn_cli(argv, r);
  if (!child) {
    write_frame(conn.fd, 2, "Error: " + child.error().message() + "\n");
    write_frame(conn.fd, 3, R"({"ExitCode":125})");
    return;
  }
  auto& c = *child;
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, c.pid, 0));
  UniqueFd pidfd_guard(pidfd);
  int stop_pipe[2];
  if (::pipe2(stop_pipe, O_CLOEXEC) != 0) {
    ::kill(c.pid, SIGKILL);
    int st = 0;
    ::waitpid(c.pid, &st, 0);
    return;
  }
  UniqueFd stop_r(stop_pipe[0]);
  UniqueFd stop_w(stop_pipe[1]);
  std::thread input([&c, &conn, fd = stop_r.get(), pidfd] {
    relay_input(conn.fd, std::move(conn.leftover), c, fd, pidfd);
  });
  set_nonblock(c.out.get());
  if (c.err) {
    set_nonblock(c.err.get());
  }
  std::array<int, 2> outs{c.out.get(), c.err ? c.err.get() : -1};
  bool client_gone = false;
  bool exited = false;  // without a pidfd: until the outputs end
  char buf[32768];
  auto drain = [&](int k) -> bool {  // false at EOF
    for (;;) {
      ssize_t n = ::read(outs[static_cast<size_t>(k)], buf, sizeof(buf));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && errno == EAGAIN) {
        return true;
      }
      if (n <= 0) {
        return false;  // EOF, or EIO of a pty whose slave closed
      }
      if (!client_gone &&
          !write_frame(conn.fd, static_cast<uint8_t>(k + 1), std::string_view(buf, n))) {
        client_gone = true;
        ::kill(c.pid, SIGTERM);
      }
    }
  };
  while (!exited && (outs[0] >= 0 || outs[1] >= 0)) {
    pollfd p[3];
    int idx[3];
    nfds_t n = 0;
    for (int k = 0; k < 2; ++k) {
      if (outs[static_cast<size_t>(k)] >= 0) {
        p[n] = {outs[static_cast<size_t>(k)], POLLIN, 0};
        idx[n++] = k;
      }
    }
    if (pidfd >= 0) {
      p[n] = {pidfd, POLLIN, 0};
      idx[n++] = 2;
    }
    if (::poll(p, n, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      break;
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (p[i].revents == 0) {
        continue;
      }
      if (idx[i] == 2) {
        exited = true;
      } else if (!drain(idx[i])) {
        outs[static_cast<size_t>(idx[i])] = -1;
      }
    }
  }
  // The child is gone: what it wrote is in the pipes (its descendants, such as a container's
  // monitor, may hold them open, so do not wait for EOF).
  for (int k = 0; k < 2; ++k) {
    if (outs[static_cast<size_t>(k)] >= 0) {
      (void)drain(k);
    }
  }
  int st = 0;
  while (::waitpid(c.pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (!client_gone) {
    std::string end = json{{"ExitCode", exit_status(st)}}.dump();
    write_frame(conn.fd, 3, end);
  }
  (void)::write(stop_w.get(), "x", 1);
  input.join();
}

}  // namespace

void add_cli_routes(Router& r, const std::shared_ptr<ServiceContext>& ctx) {
  r.add("POST", "/libpod/berth/cli", [ctx](Request& req) -> Response {
    auto body = req.json_body();
    if (!body) {
      return error_response(body.error());
    }
    auto cr = parse_cli_request(*body);
    if (!cr) {
      return error_response(cr.error());
    }
    if (cr->argv.size() >= 2 && cr->argv[0] == "system" && cr->argv[1] == "service") {
      return error_response(400, "`system service` cannot run through a remote connection");
    }
    Response resp;
    resp.hijack = true;
    resp.content_type = "application/vnd.docker.multiplexed-stream";
    resp.stream = [ctx, cr = std::move(*cr)](RawConnection& conn) { serve_cli(*ctx, cr, conn); };
    return resp;
  });
}

}  // namespace berth::api
