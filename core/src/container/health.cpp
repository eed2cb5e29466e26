// Health checks: `healthcheck run`, the health log and the status shown by ps and inspect.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "berth/container/resource_ops.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/runtime/native_runtime.hpp"
#include "berth/util/fs.hpp"
#include "internal.hpp"

namespace berth::container {

using nlohmann::json;
using namespace detail;

namespace {

constexpr int64_t kDefaultInterval = 30'000'000'000;
constexpr int64_t kDefaultTimeout = 30'000'000'000;
constexpr int kDefaultRetries = 3;
constexpr size_t kLogEntries = 5;
constexpr size_t kMaxOutput = 4096;

std::string health_file(const std::string& run_root, const std::string& id) {
  return run_dir(run_root, id) + "/health.json";
}

// The health log of the current run of the container: a log left by an earlier run (another
// start time) counts as none.
json load_health(const std::string& run_root, const ContainerRecord& rec, int64_t started_at) {
  json fresh{{"Status", "starting"}, {"FailingStreak", 0}, {"Log", json::array()}};
  auto text = util::read_file(health_file(run_root, rec.id));
  if (!text) {
    return fresh;
  }
  try {
    json h = json::parse(*text);
    if (h.value("ContainerStartedAt", int64_t{0}) != started_at || !h.is_object()) {
      return fresh;
    }
    return h;
  } catch (const json::exception&) {
    return fresh;
  }
}

struct CheckOutcome {
  int exit_code = 0;
  std::string output;
};

// Runs argv in the container as its own process would run, output captured, killed after
// `timeout_ns`.
Result<CheckOutcome> run_check(engine::Engine& eng, const ContainerRecord& rec,
                               const ContainerState& st, const std::vector<std::string>& argv,
                               int64_t timeout_ns) {
  BERTH_TRY(std::string text, util::read_file(rec.bundle + "/config.json"));
  json proc;
  try {
    proc = json::parse(text).at("process");
  } catch (const json::exception& e) {
    return fail(Errc::Corrupt, rec.bundle + "/config.json: " + e.what());
  }
  proc["args"] = argv;
  proc["terminal"] = false;
  BERTH_TRY(auto rt, make_runtime(eng, st.runtime.empty() ? "native" : st.runtime));
  // An OCI runtime's exec process is re-parented: be its sub-reaper to collect its exit code.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    return fail_errno("pipe", "health check output");
  }
  UniqueFd rd(p[0]);
  UniqueFd wr(p[1]);
  sdk::ExecRequest req;
  req.id = rec.id;
  req.process_json = proc.dump();
  req.stdout_fd = wr.get();
  req.stderr_fd = wr.get();
  auto pid = rt->exec(req);
  wr.reset();
  CheckOutcome out;
  if (!pid) {
    out.exit_code = runtime::exit_code_for(pid.error());
    out.output = pid.error().message();
    return out;
  }
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::nanoseconds(timeout_ns);
  bool exited = false;
  bool timed_out = false;
  bool pipe_open = true;
  char buf[4096];
  auto drain = [&]() {
    for (;;) {
      ssize_t n = ::read(rd.get(), buf, sizeof(buf));
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        if (n == 0 || errno != EAGAIN) {
          pipe_open = false;
        }
        return;
      }
      if (out.output.size() < kMaxOutput) {
        out.output.append(buf,
                          std::min<size_t>(static_cast<size_t>(n), kMaxOutput - out.output.size()));
      }
    }
  };
  ::fcntl(rd.get(), F_SETFL, O_NONBLOCK);
  int status = 0;
  while (!exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      ::kill(*pid, SIGKILL);
      break;
    }
    pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {rd.get(), POLLIN, 0}};
    int nfds = pipe_open ? 2 : 1;
    int timeout_ms = static_cast<int>(std::min<int64_t>(left, pidfd ? left : 10));
    int rc = ::poll(pidfd ? fds : fds + 1, pidfd ? nfds : (pipe_open ? 1 : 0), timeout_ms);
    if (rc < 0 && errno != EINTR) {
      return fail_errno("poll", "health check of container " + rec.name);
    }
    if (pipe_open) {
      drain();
    }
    pid_t w = ::waitpid(*pid, &status, WNOHANG);
    if (w == *pid) {
      exited = true;
    } else if (w < 0 && errno != EINTR) {
      return fail_errno("wait for the health check process", std::to_string(*pid));
    }
  }
  if (timed_out) {
    while (::waitpid(*pid, &status, 0) < 0 && errno == EINTR) {
    }
    out.exit_code = 1;
    out.output +=
        "Health check exceeded timeout of " + std::to_string(timeout_ns / 1000000000) + "s";
    return out;
  }
  if (pipe_open) {
    drain();  // what a process still holding the pipe wrote so far
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return out;
}

}  // namespace

json healthcheck_config(const ResourceOptions& r) {
  if (r.no_healthcheck || r.health_cmd.empty()) {
    return nullptr;
  }
  json cfg{{"Test", r.health_cmd},
           {"Interval", r.health_interval > 0   ? r.health_interval
                        : r.health_interval < 0 ? 0
                                                : kDefaultInterval},
           {"Timeout", r.health_timeout > 0 ? r.health_timeout : kDefaultTimeout},
           {"StartPeriod", r.health_start_period},
           {"Retries", r.health_retries > 0 ? r.health_retries : kDefaultRetries}};
  if (r.health_start_interval > 0) {
    cfg["StartInterval"] = r.health_start_interval;
  }
  return cfg;
}

json health_state(const std::string& run_root, const ContainerRecord& rec) {
  if (healthcheck_config(rec.options.resources).is_null()) {
    return nullptr;
  }
  ContainerState st = read_state(run_root, rec);
  json h = load_health(run_root, rec, st.started_at);
  h.erase("ContainerStartedAt");
  return h;
}

std::string health_status(const std::string& run_root, const ContainerRecord& rec) {
  json h = health_state(run_root, rec);
  return h.is_null() ? std::string() : h.value("Status", "starting");
}

Result<HealthCheckResult> healthcheck_run(engine::Engine& eng, const std::string& name_or_id) {
  BERTH_TRY(auto db, open_db(eng, true));
  BERTH_TRY(auto rec, db->lookup(name_or_id));
  const ResourceOptions& r = rec.options.resources;
  json cfg = healthcheck_config(r);
  if (cfg.is_null()) {
    return fail(Errc::InvalidArgument, "container " + rec.name +
                                           " has no defined healthcheck (give --health-cmd to "
                                           "run or create, or use an image with a HEALTHCHECK)");
  }
  ContainerState st = read_state(eng.runroot(), rec);
  if (st.status != Status::Running) {
    return fail(Errc::Conflict, "container " + rec.name + " is " + status_name(st.status) +
                                    ": health checks run in running containers only");
  }
  std::vector<std::string> argv;
  const auto& test = r.health_cmd;
  if (test[0] == "CMD-SHELL") {
    std::string cmd;
    for (size_t i = 1; i < test.size(); ++i) {
      cmd += (i > 1 ? " " : "") + test[i];
    }
    argv = {"/bin/sh", "-c", cmd};
  } else if (test[0] == "CMD") {
    argv.assign(test.begin() + 1, test.end());
  } else {
    argv = test;
  }
  if (argv.empty() || argv[0].empty()) {
    return fail(Errc::InvalidArgument, "container " + rec.name + ": the health check is empty");
  }

  // One check at a time per container (the monitor's timer and a user may run one together).
  const std::string dir = run_dir(eng.runroot(), rec.id);
  const std::string lock_path = dir + "/health.lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock) {
    return fail_errno("open", lock_path);
  }
  while (::flock(lock.get(), LOCK_EX) != 0) {
    if (errno != EINTR) {
      return fail_errno("lock", lock_path);
    }
  }
  const int64_t start = now_nanos();
  const int64_t timeout = cfg["Timeout"].get<int64_t>();
  BERTH_TRY(CheckOutcome outcome, run_check(eng, rec, st, argv, timeout));
  const int64_t end = now_nanos();

  json h = load_health(eng.runroot(), rec, st.started_at);
  const int retries = cfg["Retries"].get<int>();
  const bool in_start_period =
      r.health_start_period > 0 && st.started_at + r.health_start_period > start;
  std::string status = h.value("Status", "starting");
  const std::string before = status;
  int streak = h.value("FailingStreak", 0);
  if (outcome.exit_code == 0) {
    status = "healthy";
    streak = 0;
  } else if (!in_start_period) {
    // Failures in the start period do not count (the container is still coming up).
    ++streak;
    if (streak >= retries) {
      status = "unhealthy";
    }
  }
  json log = h.value("Log", json::array());
  log.push_back({{"Start", rfc3339_nano(start)},
                 {"End", rfc3339_nano(end)},
                 {"ExitCode", outcome.exit_code},
                 {"Output", outcome.output}});
  while (log.size() > kLogEntries) {
    log.erase(log.begin());
  }
  h = json{{"Status", status},
           {"FailingStreak", streak},
           {"Log", log},
           {"ContainerStartedAt", st.started_at}};
  BERTH_TRYV(util::write_file_atomic(health_file(eng.runroot(), rec.id), h.dump()));
  lock.reset();
  if (status != before) {
    // On a change, as Docker (the API shows "health_status: healthy"); Podman logs every run.
    emit_event(eng, rec, "health_status", std::nullopt, {{"health_status", status}});
  }

  if (status == "unhealthy" && r.health_on_failure != "none" && !r.health_on_failure.empty()) {
    Result<void> acted;
    if (r.health_on_failure == "kill") {
      acted = kill(eng, rec.id, SIGKILL);
    } else if (r.health_on_failure == "stop") {
      acted = stop(eng, rec.id, std::nullopt);
    } else if (r.health_on_failure == "restart") {
      acted = restart(eng, rec.id, std::nullopt);
    }
    if (!acted) {
      return fail(std::move(acted).error().wrap("container " + rec.name +
                                                " is unhealthy: "
                                                "--health-on-failure=" +
                                                r.health_on_failure));
    }
  }
  return HealthCheckResult{outcome.exit_code == 0, outcome.exit_code, status};
}

}  // namespace berth::container
