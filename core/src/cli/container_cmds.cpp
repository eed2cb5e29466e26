// berth container run|create|start|stop|restart|kill|rm|wait|attach|exec|logs|ps|inspect|exists|
// prune|top|rename|cleanup, with Podman's shortcuts (`berth ps`, `berth run`, ...).
#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "../monitor/monitor_setup.hpp"
#include "berth/container/log_format.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/image/image_service.hpp"
#include "berth/store/store.hpp"
#include "command.hpp"
#include "create_flags.hpp"
#include "output.hpp"

extern char** environ;

namespace berth::cli {
namespace {

namespace bc = berth::container;
using nlohmann::json;
using strings = std::vector<std::string>;

Result<int> parse_signal(const std::string& s) {
  if (s.empty()) {
    return fail(Errc::InvalidArgument, "empty signal");
  }
  if (s.find_first_not_of("0123456789") == std::string::npos) {
    int n = std::atoi(s.c_str());
    if (n < 1 || n > 64) {
      return fail(Errc::InvalidArgument, "invalid signal: " + s);
    }
    return n;
  }
  std::string name = s;
  for (auto& c : name) {
    c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (name.rfind("SIG", 0) == 0) {
    name = name.substr(3);
  }
  static const std::pair<const char*, int> table[] = {
      {"HUP", SIGHUP},     {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},
      {"TRAP", SIGTRAP},   {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},
      {"KILL", SIGKILL},   {"USR1", SIGUSR1}, {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},
      {"PIPE", SIGPIPE},   {"ALRM", SIGALRM}, {"TERM", SIGTERM}, {"CHLD", SIGCHLD},
      {"CONT", SIGCONT},   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
      {"TTOU", SIGTTOU},   {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},
      {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"PWR", SIGPWR},   {"SYS", SIGSYS}};
  for (const auto& [n, v] : table) {
    if (name == n) {
      return v;
    }
  }
  return fail(Errc::InvalidArgument, "invalid signal: " + s);
}

std::optional<std::string> host_env(const std::string& key) {
  const char* v = std::getenv(key.c_str());
  return v ? std::optional<std::string>(v) : std::nullopt;
}

Result<strings> read_env_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    return fail(Errc::NotFound, "--env-file " + path + ": cannot open the file");
  }
  strings out;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    if (line.find('=') == std::string::npos) {
      if (auto v = host_env(line)) {
        out.push_back(line + "=" + *v);
      }
      continue;
    }
    out.push_back(line);
  }
  return out;
}

Result<std::map<std::string, std::string>> parse_kv(const strings& items, const char* flag) {
  std::map<std::string, std::string> m;
  for (const auto& i : items) {
    size_t eq = i.find('=');
    if (eq == 0) {
      return fail(Errc::InvalidArgument, std::string("--") + flag + " " + i + ": empty key");
    }
    m[i.substr(0, eq)] = eq == std::string::npos ? "" : i.substr(eq + 1);
  }
  return m;
}

void create_flags(po::options_description& d) {
  d.add_options()("annotation", po::value<strings>()->composing(), "Add an annotation")(
      "cap-add", po::value<strings>()->composing(), "Add capabilities")(
      "cap-drop", po::value<strings>()->composing(), "Drop capabilities")(
      "cidfile", po::value<std::string>(), "Write the container ID to the file")(
      "detach-keys", po::value<std::string>(), "Key sequence for detaching a container")(
      "entrypoint", po::value<std::string>(), "Overwrite the default ENTRYPOINT of the image")(
      "env,e", po::value<strings>()->composing(), "Set environment variables in container")(
      "env-file", po::value<strings>()->composing(), "Read in a file of environment variables")(
      "env-host", po::bool_switch(), "Use all current host environment variables in container")(
      "hostname", po::value<std::string>(), "Set container hostname")(
      "init", po::bool_switch(), "Run an init binary inside the container")(
      "init-path", po::value<std::string>(), "Path to the container-init binary")(
      "interactive,i", po::bool_switch(), "Keep STDIN open even if not attached")(
      "label,l", po::value<strings>()->composing(), "Set metadata on container")(
      "log-driver", po::value<std::string>(), "Logging driver for the container")(
      "log-opt", po::value<strings>()->composing(), "Logging driver options")(
      "name", po::value<std::string>(), "Assign a name to the container")(
      "oom-score-adj", po::value<int>(), "Tune the host's OOM preferences (-1000 to 1000)")(
      "privileged", po::bool_switch(), "Give extended privileges to container")(
      "pull", po::value<std::string>()->default_value("missing"),
      "Pull image policy (always, missing, never, newer)")(
      "disable-content-trust", po::value<bool>()->implicit_value(true),
      "This is a Docker specific option and is a NOOP")(
      "read-only", po::bool_switch(), "Make containers root filesystem read-only")(
      "restart", po::value<std::string>(),
      "Restart policy to apply when a container exits (no, on-failure[:N], always, "
      "unless-stopped)")("replace", po::bool_switch(), "Replace a container with the same name")(
      "rm", po::bool_switch(), "Remove container (and pod if created) after exit")(
      "runtime", po::value<std::string>(), "Path or name of the OCI runtime (native, runc)")(
      "stop-signal", po::value<std::string>(), "Signal to stop a container")(
      "stop-timeout", po::value<uint32_t>(), "Timeout (in seconds) to stop a container")(
      "sysctl", po::value<strings>()->composing(), "Sysctl options")(
      "tty,t", po::bool_switch(), "Allocate a pseudo-TTY for container")(
      "ulimit", po::value<strings>()->composing(), "Ulimit options")(
      "user,u", po::value<std::string>(), "Username or UID (format: <name|uid>[:<group|gid>])")(
      "workdir,w", po::value<std::string>(), "Working directory inside the container");
  net_create_flags(d);
  mount_create_flags(d);
  resource_create_flags(d);
}

// --env-file files, then -e/--env (a bare NAME takes the host's value, as Podman).
Result<void> append_env_flags(Context& ctx, std::vector<std::string>& env) {
  for (const auto& f : ctx.strs("env-file")) {
    BERTH_TRY(auto v, read_env_file(f));
    env.insert(env.end(), v.begin(), v.end());
  }
  for (const auto& e : ctx.strs("env")) {
    if (e.find('=') == std::string::npos) {
      if (auto v = host_env(e)) {
        env.push_back(e + "=" + *v);
      }
      continue;
    }
    env.push_back(e);
  }
  return {};
}

Result<bc::CreateOptions> create_options(Context& ctx, const std::string& verb) {
  bc::CreateOptions o;
  if (ctx.args.empty()) {
    return fail(Errc::InvalidArgument, verb + " requires at least 1 argument: the image");
  }
  o.image = ctx.args[0];
  o.command.assign(ctx.args.begin() + 1, ctx.args.end());
  std::string pull = ctx.str("pull");
  if (pull != "missing" && pull != "never" && pull != "always" && pull != "newer") {
    return fail(Errc::InvalidArgument, "invalid pull policy \"" + pull + "\"");
  }
  o.pull = pull;
  o.restart_policy = ctx.str("restart");
  o.name = ctx.str("name");
  if (ctx.has("entrypoint")) {
    std::string ep = ctx.str("entrypoint");
    if (!ep.empty() && ep[0] == '[') {
      try {
        o.entrypoint = json::parse(ep).get<strings>();
      } catch (const json::exception& e) {
        return fail(Errc::InvalidArgument, "--entrypoint: " + std::string(e.what()));
      }
    } else if (ep.empty()) {
      o.entrypoint = strings{};
    } else {
      o.entrypoint = strings{ep};
    }
  }
  if (ctx.flag("env-host")) {
    for (char** e = environ; *e; ++e) {
      o.env.push_back(*e);
    }
  }
  BERTH_TRYV(append_env_flags(ctx, o.env));
  o.workdir = ctx.str("workdir");
  o.user = ctx.str("user");
  o.hostname = ctx.str("hostname");
  o.tty = ctx.flag("tty");
  if (o.tty) {
    // The pty starts at our terminal's size (as Podman's spec does): a resize sent after the
    // start would race with a program that reads the size at once.
    for (int fd : {STDOUT_FILENO, STDIN_FILENO}) {
      winsize ws{};
      if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        o.console_size = {ws.ws_row, ws.ws_col};
        break;
      }
    }
  }
  o.interactive = ctx.flag("interactive");
  o.init = ctx.flag("init");
  o.init_path = ctx.str("init-path");
  BERTH_TRY(o.labels, parse_kv(ctx.strs("label"), "label"));
  BERTH_TRY(o.annotations, parse_kv(ctx.strs("annotation"), "annotation"));
  if (ctx.has("stop-signal")) {
    BERTH_TRY(o.stop_signal, parse_signal(ctx.str("stop-signal")));
  }
  BERTH_TRY(auto* eng, ctx.engine());
  o.stop_timeout = ctx.has("stop-timeout") ? ctx.get<uint32_t>("stop-timeout")
                                           : eng->config().containers.engine.stop_timeout;
  o.log_driver = ctx.str("log-driver");
  BERTH_TRY(o.log_opts, parse_kv(ctx.strs("log-opt"), "log-opt"));
  if (auto it = o.log_opts.find("max-size"); it != o.log_opts.end()) {
    if (!bc::parse_size(it->second)) {
      return fail(Errc::InvalidArgument, "--log-opt max-size=" + it->second + ": not a size");
    }
  }
  o.runtime = ctx.str("runtime");
  o.cap_add = ctx.strs("cap-add");
  o.cap_drop = ctx.strs("cap-drop");
  o.privileged = ctx.flag("privileged");
  o.read_only = ctx.flag("read-only");
  o.ulimits = ctx.strs("ulimit");
  BERTH_TRY(o.sysctls, parse_kv(ctx.strs("sysctl"), "sysctl"));
  if (ctx.has("oom-score-adj")) {
    o.oom_score_adj = ctx.get<int>("oom-score-adj");
  }
  o.remove = ctx.flag("rm");
  o.detach_keys = ctx.has("detach-keys") ? ctx.str("detach-keys") : "ctrl-p,ctrl-q";
  o.create_command = {"berth", verb};
  BERTH_TRYV(parse_net_flags(ctx, o));
  BERTH_TRYV(parse_mount_flags(ctx, o));
  BERTH_TRYV(parse_resource_flags(ctx, o));
  return o;
}

// The pull a run/create makes prints Podman's progress lines on stderr.
bc::PullProgress pull_progress(Context& ctx) {
  return [&ctx](const std::string& line) { ctx.err << line << "\n" << std::flush; };
}

int report_exec_error(Context& ctx, const Error& e) {
  ctx.err << "Error: " << e.message() << "\n";
  return bc::exit_code_for(e);
}

Result<int> run_create(Context& ctx) {
  BERTH_TRY(auto o, create_options(ctx, "create"));
  BERTH_TRY(auto* eng, ctx.engine());
  auto r = bc::create(*eng, o, ctx.flag("replace"), pull_progress(ctx));
  if (!r) {
    return report_exec_error(ctx, r.error());
  }
  for (const auto& w : r->warnings) {
    ctx.err << "WARNING: " << w << "\n";
  }
  if (ctx.has("cidfile")) {
    std::ofstream(ctx.str("cidfile")) << r->id;
  }
  ctx.out << r->id << "\n";
  return 0;
}

Result<int> run_run(Context& ctx) {
  bc::RunOptions ro;
  BERTH_TRY(ro.create, create_options(ctx, "run"));
  ro.create.create_command[1] = "run";
  ro.detach = ctx.flag("detach");
  ro.replace = ctx.flag("replace");
  ro.sig_proxy = !ctx.has("sig-proxy") || ctx.get<bool>("sig-proxy");
  ro.cidfile = ctx.str("cidfile");
  ro.pull_progress = pull_progress(ctx);
  BERTH_TRY(auto* eng, ctx.engine());
  std::string id;
  ro.on_created = [&](const bc::CreateResult& c) {
    id = c.id;
    for (const auto& w : c.warnings) {  // as `create` prints them (Podman's run does too)
      ctx.err << "WARNING: " << w << "\n";
    }
    ctx.err.flush();
  };
  auto r = bc::run(*eng, ro);
  if (!r) {
    return report_exec_error(ctx, r.error());
  }
  if (ro.detach) {
    ctx.out << id << "\n";
  }
  ctx.out.flush();
  return *r;
}

Result<int> run_start(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bool attach = ctx.flag("attach");
  strings names = ctx.args;
  if (ctx.flag("all")) {
    // `start --all --filter restart-policy=always` after a reboot, as Podman's systemd unit.
    bc::ListOptions lo;
    lo.all = true;
    lo.filters = ctx.strs("filter");
    BERTH_TRY(auto rows, bc::list(*eng, lo));
    names.clear();
    for (const auto& r : rows) {
      if (r.value("State", "") != "running") {
        names.push_back(r["Id"].get<std::string>());
      }
    }
    std::reverse(names.begin(), names.end());  // oldest first
  } else if (names.empty()) {
    return fail(Errc::InvalidArgument, "you must provide at least one container name or ID");
  }
  if (attach && names.size() > 1) {
    return fail(Errc::InvalidArgument, "you cannot start and attach multiple containers at once");
  }
  if (attach || ctx.flag("interactive")) {
    const std::string name = names.at(0);
    BERTH_TRY(auto info, bc::inspect(*eng, name, false));
    bc::AttachOptions ao;
    ao.stdin = ctx.flag("interactive");
    ao.tty = info["Config"]["Tty"].get<bool>();
    ao.detach_keys = ctx.has("detach-keys") ? ctx.str("detach-keys") : "ctrl-p,ctrl-q";
    ao.sig_proxy = !ctx.has("sig-proxy") || ctx.get<bool>("sig-proxy");
    std::string status = info["State"]["Status"];
    if (status == "running") {
      ctx.out << name << "\n";
      return 0;
    }
    // An exited (or never started) container gets its monitor first, waiting for start, so
    // that the attach sees all of its output from the first byte.
    if (status == "exited" || info["State"]["ConmonPid"].get<int>() == 0) {
      if (auto r = bc::init(*eng, name); !r) {
        return report_exec_error(ctx, r.error());
      }
    }
    ao.on_attached = [&]() { return bc::start(*eng, name); };
    auto r = bc::attach(*eng, name, ao);
    if (!r) {
      return report_exec_error(ctx, r.error());
    }
    return r->detached ? 0 : r->exit_code;
  }
  int rc = 0;
  for (const auto& n : names) {
    auto r = bc::start(*eng, n);
    if (!r) {
      rc = report_exec_error(ctx, r.error());
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

Result<int> run_init(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  int rc = 0;
  for (const auto& n : ctx.args) {
    auto r = bc::init(*eng, n);
    if (!r) {
      rc = report_exec_error(ctx, r.error());
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

// Hidden: the monitor's setup when the caller has threads (the API server), see
// core/src/monitor/monitor_setup.hpp. Never returns.
Result<int> run_monitor_setup(Context& ctx) {
  int fd = std::atoi(ctx.args.at(1).c_str());
  monitor::setup_and_exec(ctx.args.at(0), nullptr, fd, ctx.args.at(2));
}

// Runs `f` on each named container (or all with -a), printing each name as Podman does.
Result<int> for_each(Context& ctx, bool all_flag,
                     const std::function<Result<void>(engine::Engine&, const std::string&)>& f,
                     bool only_running = false) {
  BERTH_TRY(auto* eng, ctx.engine());
  strings names = ctx.args;
  if (all_flag) {
    BERTH_TRY(auto recs, bc::records(*eng));
    names.clear();
    for (const auto& r : recs) {
      if (only_running) {
        auto info = bc::inspect(*eng, r.id, false);
        if (!info || !(*info)["State"]["Running"].get<bool>()) {
          continue;
        }
      }
      names.push_back(r.id);
    }
  } else if (names.empty()) {
    return fail(Errc::InvalidArgument, "you must provide at least one container name or ID");
  }
  int rc = 0;
  for (const auto& n : names) {
    auto r = f(*eng, n);
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = r.error().code() == Errc::NotFound ? 125 : 125;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

std::optional<uint32_t> timeout_flag(Context& ctx) {
  return ctx.has("time") ? std::optional<uint32_t>(ctx.get<uint32_t>("time")) : std::nullopt;
}

Result<int> run_stop(Context& ctx) {
  auto t = timeout_flag(ctx);
  return for_each(
      ctx, ctx.flag("all"),
      [&](engine::Engine& e, const std::string& n) { return bc::stop(e, n, t); }, true);
}

Result<int> run_restart(Context& ctx) {
  auto t = timeout_flag(ctx);
  return for_each(ctx, ctx.flag("all"),
                  [&](engine::Engine& e, const std::string& n) { return bc::restart(e, n, t); });
}

Result<int> run_kill(Context& ctx) {
  BERTH_TRY(int sig, parse_signal(ctx.has("signal") ? ctx.str("signal") : "KILL"));
  return for_each(
      ctx, ctx.flag("all"),
      [&](engine::Engine& e, const std::string& n) { return bc::kill(e, n, sig); }, true);
}

Result<int> run_rm(Context& ctx) {
  bc::RemoveOptions o;
  o.force = ctx.flag("force");
  o.volumes = ctx.flag("volumes");
  o.timeout = timeout_flag(ctx);
  bool ignore = ctx.flag("ignore");
  BERTH_TRY(auto* eng, ctx.engine());
  strings names = ctx.args;
  if (ctx.flag("all")) {
    BERTH_TRY(auto recs, bc::records(*eng));
    names.clear();
    for (const auto& r : recs) {
      names.push_back(r.id);
    }
  } else if (names.empty()) {
    return fail(Errc::InvalidArgument, "you must provide at least one container name or ID");
  }
  int rc = 0;
  if (ctx.flag("depend")) {
    for (const auto& n : names) {
      auto r = bc::remove_with_dependents(*eng, n, o);
      if (!r) {
        ctx.err << "Error: " << r.error().message() << "\n";
        rc = r.error().code() == Errc::NotFound ? 1 : 125;
        continue;
      }
      for (const auto& id : *r) {
        ctx.out << id << "\n";
      }
    }
    return rc;
  }
  for (const auto& n : names) {
    auto r = bc::remove(*eng, n, o);
    if (!r) {
      if (r.error().code() == Errc::NotFound) {
        if (ignore || ctx.flag("all")) {
          continue;
        }
        ctx.err << "Error: " << r.error().message() << "\n";
        rc = 1;
        continue;
      }
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = r.error().code() == Errc::Conflict ? 2 : 125;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

Result<int> run_wait(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  strings conds = ctx.strs("condition");
  int rc = 0;
  for (const auto& n : ctx.args) {
    auto r = bc::wait(*eng, n, conds);
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = 125;
      continue;
    }
    ctx.out << *r << "\n";
    ctx.out.flush();
  }
  return rc;
}

Result<int> run_attach(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRY(auto info, bc::inspect(*eng, ctx.args[0], false));
  bc::AttachOptions ao;
  ao.tty = info["Config"]["Tty"].get<bool>();
  ao.stdin = !ctx.flag("no-stdin") && info["Config"]["OpenStdin"].get<bool>();
  ao.detach_keys = ctx.has("detach-keys") ? ctx.str("detach-keys") : "ctrl-p,ctrl-q";
  ao.sig_proxy = !ctx.has("sig-proxy") || ctx.get<bool>("sig-proxy");
  auto r = bc::attach(*eng, ctx.args[0], ao);
  if (!r) {
    return report_exec_error(ctx, r.error());
  }
  return r->detached ? 0 : r->exit_code;
}

Result<int> run_exec(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  if (ctx.args.size() < 2) {
    return fail(Errc::InvalidArgument, "exec requires the name or ID of a container and a command");
  }
  bc::ExecOptions o;
  o.command.assign(ctx.args.begin() + 1, ctx.args.end());
  o.interactive = ctx.flag("interactive");
  o.tty = ctx.flag("tty");
  o.detach = ctx.flag("detach");
  o.privileged = ctx.flag("privileged");
  BERTH_TRYV(append_env_flags(ctx, o.env));
  o.user = ctx.str("user");
  o.workdir = ctx.str("workdir");
  o.detach_keys = ctx.str("detach-keys");
  if (ctx.has("console-size")) {
    const std::string v = ctx.str("console-size");
    unsigned rows = 0;
    unsigned cols = 0;
    char tail = 0;
    if (std::sscanf(v.c_str(), "%ux%u%c", &rows, &cols, &tail) != 2 || rows == 0 || cols == 0 ||
        rows > 65535 || cols > 65535) {
      return fail(Errc::InvalidArgument, "invalid --console-size \"" + v +
                                             "\": expected ROWSxCOLUMNS, each 1 to 65535 (24x80)");
    }
    o.console_height = static_cast<unsigned short>(rows);
    o.console_width = static_cast<unsigned short>(cols);
  }
  auto r = bc::exec(*eng, ctx.args[0], o);
  if (!r) {
    return report_exec_error(ctx, r.error());
  }
  return *r;
}

Result<int> run_logs(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bc::LogsOptions o;
  o.follow = ctx.flag("follow");
  o.timestamps = ctx.flag("timestamps");
  o.names = ctx.flag("names");
  o.tail = ctx.has("tail") ? ctx.get<int64_t>("tail") : -1;
  for (const char* k : {"since", "until"}) {
    if (ctx.has(k)) {
      auto t = bc::parse_log_time_arg(ctx.str(k));
      if (!t) {
        return fail(Errc::InvalidArgument, std::string("--") + k + " " + ctx.str(k) +
                                               ": not a time (RFC 3339, unix seconds or a "
                                               "duration such as 10m)");
      }
      (std::string(k) == "since" ? o.since : o.until) = *t;
    }
  }
  strings names = ctx.args;
  if (ctx.flag("latest")) {
    bc::ListOptions lo;
    lo.last = 1;
    BERTH_TRY(auto rows, bc::list(*eng, lo));
    if (rows.empty()) {
      return fail(Errc::NotFound, "no containers to get logs from");
    }
    names = {rows[0]["Id"].get<std::string>()};
  }
  if (names.empty()) {
    return fail(Errc::InvalidArgument, "logs requires at least one container name or ID");
  }
  ctx.out.flush();
  BERTH_TRYV(bc::logs(*eng, names, o));
  return 0;
}

std::string human_size(int64_t n) {
  const char* units[] = {"B", "kB", "MB", "GB", "TB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1000 && u < 4) {
    v /= 1000;
    ++u;
  }
  char b[32];
  std::snprintf(b, sizeof(b), u == 0 ? "%.0f%s" : "%.3g%s", v, units[u]);
  return b;
}

Result<int> run_ps(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  bc::ListOptions o;
  o.all = ctx.flag("all");
  o.size = ctx.flag("size");
  o.filters = ctx.strs("filter");
  o.sort = ctx.has("sort") ? ctx.str("sort") : "created";
  if (ctx.flag("latest")) {
    o.last = 1;
  } else if (ctx.has("last")) {
    o.last = ctx.get<int>("last");
  }
  BERTH_TRY(auto rows, bc::list(*eng, o));
  std::string fmt = ctx.str("format");
  bool no_trunc = ctx.flag("no-trunc");
  if (!format::is_json_format(fmt)) {
    for (auto& r : rows) {
      std::string id = r["Id"];
      r["ID"] = no_trunc ? id : id.substr(0, 12);
      r["Names"] = r["Names"].empty() ? "" : r["Names"][0].get<std::string>();
      std::string cmd;
      for (const auto& a : r["Command"]) {
        cmd += (cmd.empty() ? "" : " ") + a.get<std::string>();
      }
      if (fmt.empty() || fmt.rfind("table", 0) == 0) {
        if (!no_trunc && cmd.size() > 20) {
          cmd = cmd.substr(0, 17) + "...";
        }
        r["Command"] = "\"" + cmd + "\"";
      } else {
        r["Command"] = cmd;
      }
      r["Ports"] = bc::format_ports(r["Ports"]);
      r["Mounts"] = "";
      std::string labels;
      if (r["Labels"].is_object()) {
        for (auto& [k, v] : r["Labels"].items()) {
          labels += (labels.empty() ? "" : ",") + k + "=" + v.get<std::string>();
        }
      }
      if (r.contains("Size")) {
        r["Size"] = human_size(r["Size"]["rwSize"].get<int64_t>()) + " (virtual " +
                    human_size(r["Size"]["rootFsSize"].get<int64_t>()) + ")";
      }
      r["Created"] = r["CreatedHuman"];
      r["RunningFor"] = r["CreatedHuman"];
    }
  }
  format::ListSpec spec;
  spec.default_format = o.size ? "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t"
                                 "{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}"
                               : "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.CreatedHuman}}\t"
                                 "{{.Status}}\t{{.Ports}}\t{{.Names}}";
  spec.headers = {{"ID", "CONTAINER ID"}, {"CreatedHuman", "CREATED"}, {"RunningFor", "CREATED"}};
  spec.quiet_field = "ID";
  if (ctx.flag("quiet") && !ctx.has("format")) {
    for (auto& r : rows) {
      std::string id = r["Id"];
      ctx.out << (no_trunc ? id : id.substr(0, 12)) << "\n";
    }
    return 0;
  }
  return print_list(ctx, rows, spec);
}

Result<int> run_inspect(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  json arr = json::array();
  int rc = 0;
  for (const auto& n : ctx.args) {
    auto r = bc::inspect(*eng, n, ctx.flag("size"));
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = 125;
      continue;
    }
    arr.push_back(std::move(*r));
  }
  if (ctx.flag("latest")) {
    bc::ListOptions lo;
    lo.last = 1;
    BERTH_TRY(auto rows, bc::list(*eng, lo));
    if (!rows.empty()) {
      BERTH_TRY(auto j, bc::inspect(*eng, rows[0]["Id"].get<std::string>(), ctx.flag("size")));
      arr.push_back(std::move(j));
    }
  }
  if (arr.empty() && rc != 0) {
    return rc;
  }
  BERTH_TRY(int prc, print_objects(ctx, arr));
  return rc != 0 ? rc : prc;
}

// `berth inspect`: containers first, then images (Podman's order), or the --type given.
Result<int> run_inspect_any(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  const std::string type = ctx.has("type") ? ctx.str("type") : "all";
  if (type != "all" && type != "container" && type != "image") {
    return fail(Errc::InvalidArgument,
                "invalid --type \"" + type + "\" (supported: all, container, image)");
  }
  std::unique_ptr<store::Store> images;
  json arr = json::array();
  int rc = 0;
  for (const auto& n : ctx.args) {
    if (type != "image") {
      auto r = bc::inspect(*eng, n, ctx.flag("size"));
      if (r) {
        arr.push_back(std::move(*r));
        continue;
      }
      if (r.error().code() != Errc::NotFound || type == "container") {
        ctx.err << "Error: " << r.error().message() << "\n";
        rc = 125;
        continue;
      }
    }
    if (!images) {
      BERTH_TRY(auto* driver, eng->storage());
      store::StoreOptions so;
      so.graph_root = eng->graphroot();
      so.run_root = eng->runroot();
      BERTH_TRY(images, store::Store::open(so, *driver));
    }
    auto r = image::inspect_image(*images, n);
    if (!r) {
      ctx.err << "Error: no such object: \"" << n << "\"\n";
      rc = 125;
      continue;
    }
    arr.push_back(std::move(*r));
  }
  if (arr.empty() && rc != 0) {
    return rc;
  }
  BERTH_TRY(int prc, print_objects(ctx, arr));
  return rc != 0 ? rc : prc;
}

Result<int> run_exists(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRY(bool e, bc::exists(*eng, ctx.args[0]));
  return e ? 0 : 1;
}

Result<int> run_prune(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  if (!ctx.flag("force") && ::isatty(0)) {
    ctx.out << "WARNING! This will remove all non running containers.\n"
               "Are you sure you want to continue? [y/N] ";
    ctx.out.flush();
    std::string answer;
    std::getline(std::cin, answer);
    if (answer != "y" && answer != "Y" && answer != "yes") {
      return 0;
    }
  }
  BERTH_TRY(auto ids, bc::prune(*eng));
  for (const auto& id : ids) {
    ctx.out << id << "\n";
  }
  return 0;
}

Result<int> run_top(Context& ctx) {
  if (ctx.flag("list-descriptors")) {
    for (const auto& d : bc::top_descriptors()) {
      ctx.out << d << "\n";
    }
    return 0;
  }
  if (ctx.args.empty()) {
    return fail(Errc::InvalidArgument,
                "`berth top` requires a CONTAINER\n" +
                    std::string("Try 'berth top --help' for more information"));
  }
  BERTH_TRY(auto* eng, ctx.engine());
  // Format descriptors (pid user args), else ps(1) options (-ef, aux), as Podman takes them.
  BERTH_TRY(auto rows, bc::top(*eng, ctx.args[0], {ctx.args.begin() + 1, ctx.args.end()}));
  std::vector<size_t> w(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (size_t i = 0; i < r.size(); ++i) {
      w[i] = std::max(w[i], r[i].size());
    }
  }
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) {
        line += std::string(w[i] - r[i].size() + 3, ' ');
      }
    }
    ctx.out << line << "\n";
  }
  return 0;
}

Result<int> run_rename(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRYV(bc::rename(*eng, ctx.args[0], ctx.args[1]));
  return 0;
}

Result<int> run_cleanup(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  int rc = 0;
  for (const auto& n : ctx.args) {
    auto r = bc::cleanup(*eng, n, ctx.flag("rm"));
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = 125;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

Command make(const char* name, const char* summary, const char* usage, size_t min_args,
             size_t max_args, std::function<void(po::options_description&)> opts,
             std::function<Result<int>(Context&)> run) {
  Command c;
  c.name = name;
  c.summary = summary;
  c.usage = usage;
  c.min_args = min_args;
  c.max_args = max_args;
  c.options = std::move(opts);
  c.run = std::move(run);
  return c;
}

void time_flag(po::options_description& d, const char* help) {
  d.add_options()("time,t", po::value<uint32_t>(), help);
}

const Registrar reg([] {
  Command group;
  group.name = "container";
  group.summary = "Manage containers";
  register_command("", std::move(group));

  Command run = make(
      "run", "Run a command in a new container", "[options] IMAGE [COMMAND [ARG...]]", 1, SIZE_MAX,
      [](po::options_description& d) {
        create_flags(d);
        d.add_options()("detach,d", po::bool_switch(),
                        "Run container in background and print container ID")(
            "sig-proxy", po::value<bool>(), "Proxy received signals to the process (default true)");
      },
      run_run);
  run.interspersed = false;
  run.examples = "berth run -it --rm localhost/busybox sh";
  register_command("container", std::move(run));

  Command create =
      make("create", "Create but do not start a container", "[options] IMAGE [COMMAND [ARG...]]", 1,
           SIZE_MAX, create_flags, run_create);
  create.interspersed = false;
  register_command("container", std::move(create));

  register_command(
      "container",
      make(
          "start", "Start one or more containers", "[options] CONTAINER [...]", 0, SIZE_MAX,
          [](po::options_description& d) {
            d.add_options()("attach,a", po::bool_switch(), "Attach container's STDOUT and STDERR")(
                "all", po::bool_switch(), "Start all containers regardless of their state")(
                "filter,f", po::value<strings>()->composing(),
                "Filter the containers --all starts (restart-policy=always, label=...)")(
                "interactive,i", po::bool_switch(), "Attach container's STDIN")(
                "detach-keys", po::value<std::string>(), "Key sequence for detaching a container")(
                "sig-proxy", po::value<bool>(), "Proxy received signals");
          },
          run_start));
  register_command(
      "container",
      make(
          "stop", "Stop one or more containers", "[options] CONTAINER [...]", 0, SIZE_MAX,
          [](po::options_description& d) {
            d.add_options()("all,a", po::bool_switch(), "Stop all running containers")(
                "ignore,i", po::bool_switch(), "Ignore missing containers");
            time_flag(d, "Seconds to wait for stop before killing the container");
          },
          run_stop));
  register_command(
      "container",
      make(
          "restart", "Restart one or more containers", "[options] CONTAINER [...]", 0, SIZE_MAX,
          [](po::options_description& d) {
            d.add_options()("all,a", po::bool_switch(), "Restart all containers");
            time_flag(d, "Seconds to wait for stop before killing the container");
          },
          run_restart));
  register_command("container",
                   make(
                       "kill", "Kill one or more running containers with a specific signal",
                       "[options] CONTAINER [...]", 0, SIZE_MAX,
                       [](po::options_description& d) {
                         d.add_options()("all,a", po::bool_switch(),
                                         "Signal all running containers")(
                             "signal,s", po::value<std::string>(),
                             "Signal to send to the container (default KILL)");
                       },
                       run_kill));
  Command rm = make(
      "rm", "Remove one or more containers", "[options] CONTAINER [...]", 0, SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("all,a", po::bool_switch(), "Remove all containers")(
            "force,f", po::bool_switch(), "Force removal of a running or unusable container")(
            "volumes,v", po::bool_switch(), "Remove anonymous volumes")(
            "depend", po::bool_switch(), "Remove container and all dependencies")(
            "ignore,i", po::bool_switch(), "Ignore errors when a container is missing");
        time_flag(d, "Seconds to wait for stop before killing the container");
      },
      run_rm);
  rm.aliases = {"remove"};
  register_command("container", std::move(rm));
  register_command(
      "container",
      make(
          "wait", "Block on one or more containers", "[options] CONTAINER [...]", 1, SIZE_MAX,
          [](po::options_description& d) {
            d.add_options()("condition", po::value<strings>()->composing(),
                            "Condition to wait on (stopped, running, ...)")(
                "interval,i", po::value<std::string>(), "Polling interval");
          },
          run_wait));
  register_command("container",
                   make(
                       "attach", "Attach to a running container", "[options] CONTAINER", 1, 1,
                       [](po::options_description& d) {
                         d.add_options()("detach-keys", po::value<std::string>(),
                                         "Key sequence for detaching a container")(
                             "no-stdin", po::bool_switch(), "Do not attach STDIN")(
                             "sig-proxy", po::value<bool>(), "Proxy received signals");
                       },
                       run_attach));
  Command exec = make(
      "exec", "Run a process in a running container", "[options] CONTAINER COMMAND [ARG...]", 2,
      SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("detach,d", po::bool_switch(),
                        "Run the exec session in "
                        "detached mode")("detach-keys", po::value<std::string>(),
                                         "Key sequence for detaching")(
            "env,e", po::value<strings>()->composing(), "Set environment variables")(
            "env-file", po::value<strings>()->composing(),
            "Read in a file of environment variables")("interactive,i", po::bool_switch(),
                                                       "Keep STDIN open")(
            "privileged", po::bool_switch(), "Give extended privileges")("tty,t", po::bool_switch(),
                                                                         "Allocate a pseudo-TTY")(
            "user,u", po::value<std::string>(), "Sets the user (name|uid[:group|gid])")(
            "workdir,w", po::value<std::string>(), "Working directory")(
            "console-size", po::value<std::string>(),
            "With -t: the terminal's initial size, ROWSxCOLUMNS (default: this terminal's)");
      },
      run_exec);
  exec.interspersed = false;
  register_command("container", std::move(exec));
  register_command("container",
                   make(
                       "logs", "Fetch the logs of one or more containers",
                       "[options] CONTAINER [...]", 0, SIZE_MAX,
                       [](po::options_description& d) {
                         d.add_options()("follow,f", po::bool_switch(), "Follow log output")(
                             "latest,l", po::bool_switch(), "Act on the latest container")(
                             "names,n", po::bool_switch(), "Output the container name in the log")(
                             "since", po::value<std::string>(), "Show logs since TIMESTAMP")(
                             "until", po::value<std::string>(), "Show logs until TIMESTAMP")(
                             "tail", po::value<int64_t>(), "Output the specified number of LINES")(
                             "timestamps,t", po::bool_switch(), "Output the timestamps");
                       },
                       run_logs));
  Command ps = make(
      "ps", "List containers", "[options]", 0, 0,
      [](po::options_description& d) {
        add_format_options(d, true, false);
        d.add_options()("noheading", po::bool_switch(), "Do not print headers")(
            "all,a", po::bool_switch(), "Show all the containers")("latest,l", po::bool_switch(),
                                                                   "Act on the latest container")(
            "last,n", po::value<int>(), "Print the n last created containers")(
            "size,s", po::bool_switch(), "Display the total file sizes")(
            "no-trunc", po::bool_switch(), "Display the extended information")(
            "filter,f", po::value<strings>()->composing(), "Filter output")(
            "sort", po::value<std::string>(),
            "Sort output by: command, created, id, "
            "image, names, runningfor, status");
      },
      run_ps);
  ps.aliases = {"ls", "list"};
  register_command("container", std::move(ps));
  register_command("container",
                   make(
                       "inspect", "Display the configuration of a container",
                       "[options] CONTAINER [...]", 0, SIZE_MAX,
                       [](po::options_description& d) {
                         d.add_options()("format,f", po::value<std::string>(),
                                         "Format the output using a Go template or json")(
                             "latest,l", po::bool_switch(), "Act on the latest container")(
                             "size,s", po::bool_switch(), "Display total file size");
                       },
                       run_inspect));
  register_command("container", make("exists", "Check if a container exists in local storage",
                                     "CONTAINER", 1, 1, nullptr, run_exists));
  register_command("container", make(
                                    "prune", "Remove all non running containers", "[options]", 0, 0,
                                    [](po::options_description& d) {
                                      d.add_options()("force,f", po::bool_switch(),
                                                      "Do not prompt for confirmation");
                                    },
                                    run_prune));
  register_command("container", make("init", "Initialize one or more containers", "CONTAINER [...]",
                                     1, SIZE_MAX, nullptr, run_init));
  register_command("container", make("monitor-setup", "(internal) Set up a container's monitor",
                                     "CONFIG FD MONITOR", 3, 3, nullptr, run_monitor_setup));
  Command top = make(
      "top", "Display the running processes of a container",
      "[options] CONTAINER [FORMAT-DESCRIPTORS|ARGS...]", 0, SIZE_MAX,
      [](po::options_description& d) {
        d.add_options()("list-descriptors", po::bool_switch(),
                        "List the supported format descriptors");
      },
      run_top);
  // `berth top c1 -ef`: what follows CONTAINER goes to ps, as the command of `run` does.
  top.interspersed = false;
  top.description =
      "Without ARGS: USER PID PPID %CPU ELAPSED TTY TIME COMMAND. ARGS are format descriptors "
      "(see --list-descriptors) read in the container's view, or else options of the host's "
      "ps(1), whose rows are kept for the container's processes (as docker top).";
  top.examples = "berth top c1\nberth top c1 pid user args\nberth top c1 -ef\nberth top c1 aux";
  register_command("container", std::move(top));
  register_command("container", make("rename", "Rename an existing container", "CONTAINER NAME", 2,
                                     2, nullptr, run_rename));
  register_command("container",
                   make(
                       "cleanup", "Clean up network and mountpoints of one or more containers",
                       "[options] CONTAINER [...]", 1, SIZE_MAX,
                       [](po::options_description& d) {
                         d.add_options()("rm", po::bool_switch(),
                                         "After cleanup, remove the container entirely");
                       },
                       run_cleanup));
  register_command("", make(
                           "inspect", "Display the configuration of object denoted by ID",
                           "[options] {CONTAINER|IMAGE} [...]", 1, SIZE_MAX,
                           [](po::options_description& d) {
                             d.add_options()("format,f", po::value<std::string>(),
                                             "Format the output using a Go template or json")(
                                 "size,s", po::bool_switch(), "Display total file size")(
                                 "type,t", po::value<std::string>(),
                                 "Specify inspect-object type (all, container, image)");
                           },
                           run_inspect_any));
  for (const char* s : {"run", "create", "start", "stop", "restart", "kill", "rm", "wait", "attach",
                        "exec", "logs", "ps", "top", "rename", "init"}) {
    register_shortcut(s, std::string("container ") + s);
  }
});

}  // namespace
}  // namespace berth::cli
