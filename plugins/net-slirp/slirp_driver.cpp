// The slirp network driver: slirp4netns plumbs a tap device in the container's namespace; host
// TCP ports are relayed into the namespace by berth's port relay (port_proxy.hpp), UDP ports are
// forwarded by slirp4netns through its API socket (add_hostfwd). slirp4netns runs detached
// (double fork, own session) so it outlives the short-lived berth process; its pid and API
// socket are recorded under <run_root>/networks/slirp/<container id>.json for teardown.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "berth/sdk/detached.hpp"
#include "berth/sdk/network.hpp"
#include "berth/sdk/plugin.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "port_proxy.hpp"

namespace berth::slirp {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kAddress = "10.0.2.100/24";
constexpr const char* kGateway = "10.0.2.2";
constexpr const char* kDns = "10.0.2.3";
constexpr const char* kTap = "tap0";

Result<std::string> read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("read", "pipe");
    }
    if (n == 0) {
      return out;
    }
    out.append(buf, static_cast<size_t>(n));
  }
}

// One request per connection, as slirp4netns's API expects.
Result<json> api_call(const std::string& sock, const json& req) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) {
    return fail_errno("socket", "");
  }
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (sock.size() >= sizeof sa.sun_path) {
    return fail(Errc::InvalidArgument, "slirp4netns API socket path too long: " + sock);
  }
  std::strcpy(sa.sun_path, sock.c_str());
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    return fail_errno("connect to slirp4netns API", sock);
  }
  std::string text = req.dump();
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail_errno("write to slirp4netns API", sock);
  }
  ::shutdown(fd.get(), SHUT_WR);
  BERTH_TRY(auto reply, read_all(fd.get()));
  json j = json::parse(reply, nullptr, false);
  if (j.is_discarded()) {
    return fail(Errc::Internal, "slirp4netns API: unreadable reply \"" + reply + "\"");
  }
  if (j.contains("error")) {
    return fail(Errc::Conflict, "slirp4netns: " + j["error"].dump());
  }
  return j;
}

bool is_slirp(pid_t pid);

// SIGTERM, then SIGKILL after 5 s; returns once the process is gone (it is not our child, so
// its /proc entry is watched).
Result<void> stop(pid_t pid) {
  if (::kill(pid, SIGTERM) != 0) {
    return errno == ESRCH ? Result<void>{} : fail_errno("stop slirp4netns", std::to_string(pid));
  }
  for (int i = 0; i < 500 && is_slirp(pid); ++i) {
    if (i == 250) {
      ::kill(pid, SIGKILL);
    }
    ::usleep(10000);
  }
  if (is_slirp(pid)) {
    return fail(Errc::Busy, "slirp4netns " + std::to_string(pid) + " does not exit");
  }
  return {};
}

bool is_slirp(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(f, comm);
  if (comm != "slirp4netns" && !comm.starts_with("pasta") && !comm.starts_with("passt")) {
    return false;
  }
  // A zombie has exited; its reaper (init) just has not collected it yet.
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] != 'Z';
}

class SlirpDriver final : public sdk::NetworkDriver {
 public:
  explicit SlirpDriver(sdk::PluginContext ctx) : ctx_(std::move(ctx)) {}

  std::string name() const override { return "slirp"; }

  Result<sdk::NetworkConfig> validate(const sdk::NetworkConfig& config) override { return config; }

  Result<sdk::SetupStatus> setup(const sdk::SetupRequest& req) override {
    fs::path dir = state_dir();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return fail(Errc::Internal, "create " + dir.string() + ": " + ec.message());
    }
    fs::path state = dir / (req.container_id + ".json");
    std::string sock = (dir / (req.container_id.substr(0, 12) + ".sock")).string();
    bool pasta = std::any_of(req.attachments.begin(), req.attachments.end(),
                             [](const sdk::Attachment& a) { return a.network.name == "pasta"; });
    if (pasta) {
      return setup_pasta(req, state);
    }
    if (!fs::exists(state, ec)) {
      // TCP ports through berth's relay (splice, no user-mode TCP stack), as Podman's default
      // port handler; UDP through slirp4netns's own forwarding below.
      std::vector<sdk::PortMapping> tcp;
      std::copy_if(req.ports.begin(), req.ports.end(), std::back_inserter(tcp),
                   [](const sdk::PortMapping& p) { return p.protocol == "tcp"; });
      pid_t proxy = 0;
      if (!tcp.empty()) {
        BERTH_TRY(proxy, start_port_proxy(req.netns_path, tcp));
      }
      auto pid =
          spawn(req.netns_path, sock, (dir / (req.container_id.substr(0, 12) + ".log")).string());
      if (!pid) {
        (void)stop_port_proxy(proxy);
        return fail(std::move(pid).error());
      }
      std::ofstream(state) << json{{"pid", *pid}, {"api_socket", sock}, {"proxy_pid", proxy}}.dump()
                           << "\n";
    }
    for (const auto& p : req.ports) {
      if (p.protocol == "tcp") {
        continue;
      }
      for (uint32_t i = 0; i < p.range; ++i) {
        json args = {{"proto", p.protocol},
                     {"host_addr", p.host_ip.empty() ? "0.0.0.0" : p.host_ip},
                     {"host_port", p.host_port + i},
                     {"guest_port", p.container_port + i}};
        auto r = api_call(sock, {{"execute", "add_hostfwd"}, {"arguments", args}});
        if (!r) {
          return fail(std::move(r).error().wrap("publish port " + std::to_string(p.host_port + i) +
                                                "/" + p.protocol));
        }
      }
    }
    sdk::SetupStatus status;
    sdk::InterfaceStatus is;
    is.name = kTap;
    is.addresses = {kAddress};
    is.gateway = kGateway;
    status.interfaces.push_back(is);
    status.dns_servers = {kDns};
    return status;
  }

  Result<void> teardown(const sdk::SetupRequest& req) override {
    fs::path state = state_dir() / (req.container_id + ".json");
    std::ifstream f(state);
    if (!f) {
      return {};
    }
    std::stringstream ss;
    ss << f.rdbuf();
    json j = json::parse(ss.str(), nullptr, false);
    std::error_code ec;
    if (!j.is_discarded()) {
      pid_t pid = j.value("pid", 0);
      if (pid > 0 && is_slirp(pid)) {
        BERTH_TRYV(stop(pid));
      }
      BERTH_TRYV(stop_port_proxy(j.value("proxy_pid", 0)));
      if (j.contains("pid_file")) {
        fs::remove(j.value("pid_file", ""), ec);
      }
      fs::remove(j.value("api_socket", ""), ec);
    }
    fs::remove(state, ec);
    fs::path log = state_dir() / (req.container_id.substr(0, 12) + ".log");
    fs::remove(log, ec);
    return {};
  }

  // pasta takes its forwards on the command line, configures the namespace like the host's
  // interface (same address, gateway and resolvers) and daemonizes once ready.
  Result<sdk::SetupStatus> setup_pasta(const sdk::SetupRequest& req, const fs::path& state) {
    std::error_code ec;
    if (!fs::exists(state, ec)) {
      std::string pid_file = (state_dir() / (req.container_id.substr(0, 12) + ".pid")).string();
      std::vector<std::string> args = {"pasta",        "--config-net", "--quiet", "--netns",
                                       req.netns_path, "--pid",        pid_file};
      bool tcp = false;
      bool udp = false;
      for (const auto& p : req.ports) {
        if (p.protocol != "tcp" && p.protocol != "udp") {
          return fail(Errc::NotSupported,
                      "pasta forwards tcp and udp ports only, not " + p.protocol);
        }
        std::string spec = p.host_ip.empty() ? "" : p.host_ip + "/";
        spec += std::to_string(p.host_port);
        if (p.range > 1) {
          spec += "-" + std::to_string(p.host_port + p.range - 1);
        }
        spec += ":" + std::to_string(p.container_port);
        if (p.range > 1) {
          spec += "-" + std::to_string(p.container_port + p.range - 1);
        }
        args.push_back(p.protocol == "tcp" ? "-t" : "-u");
        args.push_back(spec);
        (p.protocol == "tcp" ? tcp : udp) = true;
      }
      if (!tcp) {
        args.insert(args.end(), {"-t", "none"});
      }
      if (!udp) {
        args.insert(args.end(), {"-u", "none"});
      }
      args.insert(args.end(), {"-T", "none", "-U", "none"});
      if (::geteuid() == 0) {
        // As root pasta switches to nobody before it opens the namespace, which then cannot
        // reach it under the store's runroot (mode 0700): it keeps root's identity instead (it
        // still sandboxes itself).
        args.insert(args.end(), {"--runas", "0:0"});
      }
      BERTH_TRY(std::string out, run_wait(args));
      std::ifstream pf(pid_file);
      pid_t pid = 0;
      pf >> pid;
      if (pid <= 0) {
        return fail(Errc::Unavailable, "pasta for " + req.netns_path +
                                           " did not write its pid file " + pid_file + ": " + out);
      }
      std::ofstream(state) << json{{"pid", pid}, {"helper", "pasta"}, {"pid_file", pid_file}}.dump()
                           << "\n";
    }
    sdk::SetupStatus status;
    sdk::InterfaceStatus is;
    is.name = "pasta";
    status.interfaces.push_back(is);
    return status;
  }

  // Runs a helper that daemonizes and waits for its foreground part; returns its output.
  static Result<std::string> run_wait(const std::vector<std::string>& args) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "");
    }
    UniqueFd out_r(out[0]);
    UniqueFd out_w(out[1]);
    pid_t pid = ::fork();
    if (pid < 0) {
      return fail_errno("fork", args[0]);
    }
    if (pid == 0) {
      ::setsid();
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(out_w.get(), 1);
      ::dup2(out_w.get(), 2);
      std::vector<char*> argv;
      for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
      }
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    out_w.reset();
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    // The daemonized child keeps the pipe open: read what is there without waiting for EOF.
    std::string text;
    ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);
    char buf[4096];
    for (ssize_t n; (n = ::read(out_r.get(), buf, sizeof buf)) > 0;) {
      text.append(buf, static_cast<size_t>(n));
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      return fail(Errc::Unavailable,
                  args[0] + " exited with status " +
                      std::to_string(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)) +
                      (WIFEXITED(st) && WEXITSTATUS(st) == 127
                           ? std::string(" (is the passt package installed?)")
                           : ": " + text));
    }
    return text;
  }

  std::vector<std::pair<std::string, std::string>> info() override {
    return {{"helper", "slirp4netns"}, {"address", kAddress}, {"dns", kDns}};
  }

 private:
  fs::path state_dir() const {
    return fs::path(ctx_.run_root.empty() ? "/run/berth" : ctx_.run_root) / "networks" / "slirp";
  }

  // Starts slirp4netns detached and waits for its ready byte. Returns its pid.
  Result<pid_t> spawn(const std::string& netns, const std::string& sock, const std::string& log) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
      return fail_errno("pipe", "slirp4netns");
    }
    UniqueFd ready_r(ready[0]);
    UniqueFd ready_w(ready[1]);
    BERTH_TRY(pid_t pid, sdk::spawn_detached("slirp4netns", [&] {
                int devnull = ::open("/dev/null", O_RDWR);
                int logfd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
                ::dup2(devnull, 0);
                ::dup2(logfd >= 0 ? logfd : devnull, 1);
                ::dup2(logfd >= 0 ? logfd : devnull, 2);
                ::dup2(ready_w.get(), 3);  // dup2 clears O_CLOEXEC on fd 3
                std::string ns_arg = netns;
                const char* argv[] = {
                    "slirp4netns",       "--configure",  "--mtu=65520", "--disable-host-loopback",
                    "--api-socket",      sock.c_str(),   "--ready-fd",  "3",
                    "--netns-type=path", ns_arg.c_str(), kTap,          nullptr};
                ::execvp(argv[0], const_cast<char* const*>(argv));
              }));
    ready_w.reset();
    // The ready byte, or EOF when slirp4netns died (not installed, bad namespace).
    pollfd pfd{ready_r.get(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, 10000);
    char c = 0;
    if (pr <= 0 || ::read(ready_r.get(), &c, 1) != 1) {
      ::kill(pid, SIGKILL);
      std::ifstream lf(log);
      std::stringstream ls;
      ls << lf.rdbuf();
      return fail(Errc::Unavailable,
                  "slirp4netns for " + netns + " did not start" +
                      (ls.str().empty() ? std::string(" (is the slirp4netns package installed?)")
                                        : ": " + ls.str()));
    }
    return pid;
  }

  sdk::PluginContext ctx_;
};

}  // namespace

Result<sdk::NetworkDriverPtr> create_driver(const sdk::PluginContext& ctx) {
  return std::make_unique<SlirpDriver>(ctx);
}

}  // namespace berth::slirp

BERTH_DECLARE_PLUGIN(berth::slirp::create_driver)
