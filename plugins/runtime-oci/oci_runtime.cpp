#include "oci_runtime.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "berth/sdk/unique_fd.hpp"

namespace berth::oci {
namespace {

using nlohmann::json;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string find_in_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
  }
  return {};
}

Result<std::string> make_temp_dir(const std::string& parent) {
  std::string tmpl = parent + "/tmp-XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    return fail_errno("mkdtemp", parent);
  }
  return tmpl;
}

// Removes a scratch directory and its files (flat).
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    if (path.empty()) {
      return;
    }
    for (const char* f : {"/pid", "/log.json", "/process.json"}) {
      ::unlink((path + f).c_str());
    }
    ::rmdir(path.c_str());
  }
};

// The last error message runc/crun wrote to a --log-format json file.
std::string last_log_error(const std::string& log_file) {
  std::istringstream in(slurp(log_file));
  std::string line, msg;
  while (std::getline(in, line)) {
    try {
      json j = json::parse(line);
      if (j.value("level", "") == "error") {
        msg = j.value("msg", "");
      }
    } catch (const json::exception&) {
      continue;
    }
  }
  return msg;
}

Result<void> read_into(int fd, std::string& out) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n < 0 && errno != EINTR && errno != EAGAIN) {
    return fail_errno("read", "runtime output");
  }
  if (n > 0) {
    out.append(buf, static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

OciRuntime::OciRuntime(std::string binary, std::string root)
    : binary_(std::move(binary)), root_(std::move(root)) {}

Result<OciRuntime::Output> OciRuntime::run(const std::vector<std::string>& args, const int stdio[3],
                                           const std::string& input) const {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    return fail_errno("pipe", binary_);
  }
  UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]), err_r(err_pipe[0]), err_w(err_pipe[1]),
      in_r(in_pipe[0]), in_w(in_pipe[1]);
  std::vector<std::string> argv_s = {binary_, "--root", root_};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  const int targets[3] = {stdio ? stdio[0] : -1, stdio ? stdio[1] : -1, stdio ? stdio[2] : -1};
  pid_t pid = ::fork();
  if (pid < 0) {
    return fail_errno("fork", binary_);
  }
  if (pid == 0) {
    int fds[3] = {targets[0] >= 0 ? targets[0] : in_r.get(),
                  targets[1] >= 0 ? targets[1] : out_w.get(),
                  targets[2] >= 0 ? targets[2] : err_w.get()};
    int high[3];
    for (int i = 0; i < 3; ++i) {
      high[i] = ::fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
    }
    for (int i = 0; i < 3; ++i) {
      if (high[i] < 0 || ::dup2(high[i], i) < 0) {
        ::_exit(126);
      }
    }
    sigset_t all;
    sigemptyset(&all);
    ::sigprocmask(SIG_SETMASK, &all, nullptr);
    ::execv(binary_.c_str(), argv.data());
    ::_exit(127);
  }
  in_r.reset();
  out_w.reset();
  err_w.reset();
  if (!input.empty()) {
    (void)!::write(in_w.get(), input.data(), input.size());
  }
  in_w.reset();
  Output o;
  pollfd p[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  int open_fds = 2;
  while (open_fds > 0) {
    if (::poll(p, 2, -1) < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("poll", binary_);
    }
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        std::string& dst = i == 0 ? o.out : o.err;
        size_t before = dst.size();
        BERTH_TRYV(read_into(p[i].fd, dst));
        if (dst.size() == before) {
          p[i].fd = -1;
          --open_fds;
        }
      }
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      return fail_errno("waitpid", binary_);
    }
  }
  o.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return o;
}

Error OciRuntime::failure(const std::string& what, const Output& out,
                          const std::string& log_file) const {
  std::string msg = log_file.empty() ? std::string() : last_log_error(log_file);
  if (msg.empty()) {
    msg = out.err.empty() ? out.out : out.err;
  }
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) {
    msg.pop_back();
  }
  Errc code = Errc::Internal;
  if (msg.find("not found") != std::string::npos || msg.find("no such file") != std::string::npos) {
    code = Errc::NotFound;
  } else if (msg.find("permission denied") != std::string::npos) {
    code = Errc::PermissionDenied;
  } else if (msg.find("does not exist") != std::string::npos) {
    code = Errc::NotFound;
  } else if (msg.find("already exists") != std::string::npos) {
    code = Errc::AlreadyExists;
  }
  return Error(code, binary_ + " " + what + ": " + msg);
}

Result<void> OciRuntime::simple(const std::string& what,
                                const std::vector<std::string>& args) const {
  BERTH_TRY(Output o, run(args, nullptr));
  if (o.status != 0) {
    return fail(failure(what, o, {}));
  }
  return {};
}

sdk::RuntimeFeatures OciRuntime::features() {
  sdk::RuntimeFeatures f;
  f.seccomp = true;
  f.user_namespaces = true;
  struct stat st {};
  f.cgroup_v2 = ::stat("/sys/fs/cgroup/cgroup.controllers", &st) == 0;
  f.cgroup_v1 = !f.cgroup_v2;
  if (auto o = run({"--version"}, nullptr); o && o->status == 0) {
    f.version = o->out.substr(0, o->out.find('\n'));
  }
  return f;
}

Result<pid_t> OciRuntime::create(const sdk::CreateRequest& req) {
  BERTH_TRY(std::string tmp, make_temp_dir(root_ + ".tmp"));
  ScratchDir scratch{tmp};
  const std::string pid_file = req.pid_file.empty() ? tmp + "/pid" : req.pid_file;
  const std::string log_file = tmp + "/log.json";
  // Global flags go before the command: run() adds --root; the log goes here.
  std::vector<std::string> args = {"--log", log_file, "--log-format", "json"};
  if (req.wait_for_start) {
    args.insert(args.end(), {"create"});
  } else {
    args.insert(args.end(), {"run", "--detach"});
  }
  args.insert(args.end(), {"--bundle", req.bundle, "--pid-file", pid_file});
  if (!req.console_socket.empty()) {
    args.insert(args.end(), {"--console-socket", req.console_socket});
  }
  args.push_back(req.id);
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  const int stdio[3] = {req.stdin_fd >= 0 ? req.stdin_fd : null.get(),
                        req.stdout_fd >= 0 ? req.stdout_fd : null.get(),
                        req.stderr_fd >= 0 ? req.stderr_fd : null.get()};
  BERTH_TRY(Output o, run(args, stdio));
  if (o.status != 0) {
    return fail(failure(req.wait_for_start ? "create" : "run", o, log_file));
  }
  const std::string pid_text = slurp(pid_file);
  pid_t pid = static_cast<pid_t>(std::atoi(pid_text.c_str()));
  if (pid <= 0) {
    return fail(Errc::Internal, binary_ + " create: no pid in " + pid_file);
  }
  return pid;
}

Result<void> OciRuntime::start(const std::string& id) {
  return simple("start", {"start", id});
}

Result<void> OciRuntime::kill(const std::string& id, int signal, bool all) {
  std::vector<std::string> args = {"kill"};
  if (all) {
    args.push_back("--all");
  }
  args.insert(args.end(), {id, std::to_string(signal)});
  return simple("kill", args);
}

Result<void> OciRuntime::remove(const std::string& id, bool force) {
  auto st = state(id);
  if (!st && st.error().code() == Errc::NotFound) {
    return {};  // idempotent
  }
  std::vector<std::string> args = {"delete"};
  if (force) {
    args.push_back("--force");
  }
  args.push_back(id);
  auto r = simple("delete", args);
  if (!r && r.error().code() == Errc::NotFound) {
    return {};
  }
  return r;
}

Result<sdk::RuntimeState> OciRuntime::state(const std::string& id) {
  BERTH_TRY(Output o, run({"state", id}, nullptr));
  if (o.status != 0) {
    Error e = failure("state", o, {});
    if (e.message().find("does not exist") != std::string::npos) {
      return fail(Errc::NotFound, "container " + id + " does not exist in " + binary_);
    }
    return fail(std::move(e));
  }
  try {
    json j = json::parse(o.out);
    sdk::RuntimeState s;
    s.id = j.value("id", id);
    s.pid = j.value("pid", 0);
    s.bundle = j.value("bundle", "");
    const std::string status = j.value("status", "stopped");
    s.status = status == "created"    ? sdk::ContainerStatus::Created
               : status == "running"  ? sdk::ContainerStatus::Running
               : status == "paused"   ? sdk::ContainerStatus::Paused
               : status == "creating" ? sdk::ContainerStatus::Creating
                                      : sdk::ContainerStatus::Stopped;
    return s;
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, binary_ + " state " + id + ": " + e.what());
  }
}

Result<pid_t> OciRuntime::exec(const sdk::ExecRequest& req) {
  BERTH_TRY(std::string tmp, make_temp_dir(root_ + ".tmp"));
  ScratchDir scratch{tmp};
  const std::string process_file = tmp + "/process.json";
  {
    std::ofstream f(process_file);
    f << req.process_json;
    if (!f) {
      return fail(Errc::Internal, "write " + process_file);
    }
  }
  const std::string pid_file = req.pid_file.empty() ? tmp + "/pid" : req.pid_file;
  const std::string log_file = tmp + "/log.json";
  std::vector<std::string> args = {"--log",    log_file,    "--log-format", "json",       "exec",
                                   "--detach", "--process", process_file,   "--pid-file", pid_file};
  if (!req.console_socket.empty()) {
    args.insert(args.end(), {"--console-socket", req.console_socket});
  }
  args.push_back(req.id);
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  const int stdio[3] = {req.stdin_fd >= 0 ? req.stdin_fd : null.get(),
                        req.stdout_fd >= 0 ? req.stdout_fd : null.get(),
                        req.stderr_fd >= 0 ? req.stderr_fd : null.get()};
  BERTH_TRY(Output o, run(args, stdio));
  if (o.status != 0) {
    return fail(failure("exec", o, log_file));
  }
  pid_t pid = static_cast<pid_t>(std::atoi(slurp(pid_file).c_str()));
  if (pid <= 0) {
    return fail(Errc::Internal, binary_ + " exec: no pid in " + pid_file);
  }
  return pid;
}

Result<void> OciRuntime::pause(const std::string& id) {
  return simple("pause", {"pause", id});
}

Result<void> OciRuntime::resume(const std::string& id) {
  return simple("resume", {"resume", id});
}

Result<void> OciRuntime::update(const std::string& id, const std::string& resources_json) {
  BERTH_TRY(Output o, run({"update", "--resources", "-", id}, nullptr, resources_json));
  if (o.status != 0) {
    return fail(failure("update", o, {}));
  }
  return {};
}

Result<sdk::RuntimePtr> make_oci_runtime(const sdk::PluginContext& ctx) {
  std::string binary;
  try {
    if (!ctx.options_json.empty()) {
      json opts = json::parse(ctx.options_json);
      binary = opts.value("path", "");
    }
  } catch (const json::exception& e) {
    return fail(Errc::InvalidArgument, std::string("oci runtime options: ") + e.what());
  }
  if (binary.empty()) {
    binary = find_in_path("runc");
  }
  if (binary.empty()) {
    binary = find_in_path("crun");
  }
  if (binary.empty() || ::access(binary.c_str(), X_OK) != 0) {
    return fail(Errc::NotFound,
                "no OCI runtime binary found (install runc or crun, or set the plugin's \"path\")");
  }
  if (ctx.run_root.empty()) {
    return fail(Errc::InvalidArgument, "oci runtime: run_root is empty");
  }
  const std::string base = binary.substr(binary.rfind('/') + 1);
  const std::string root = ctx.run_root + "/oci-" + base;
  for (const std::string& d : {ctx.run_root, root, root + ".tmp"}) {
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return fail_errno("mkdir", d);
    }
  }
  return sdk::RuntimePtr(std::make_unique<OciRuntime>(binary, root));
}

}  // namespace berth::oci
