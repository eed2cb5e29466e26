// berth container update|stats|pause|unpause and berth healthcheck run, with Podman's
// shortcuts (`berth stats`, `berth pause`, ...).
#include <unistd.h>

#include <chrono>
#include <thread>

#include "berth/container/resource_ops.hpp"
#include "berth/container/service.hpp"
#include "berth/engine/engine.hpp"
#include "berth/format/output.hpp"
#include "command.hpp"
#include "create_flags.hpp"
#include "output.hpp"

namespace berth::cli {
namespace {

namespace bc = berth::container;
using nlohmann::json;
using strings = std::vector<std::string>;

// Runs `fn` on every named container (or every container with --all and `pick`), printing each
// name as Podman does; the exit code is 125 when one failed.
Result<int> each(Context& ctx,
                 const std::function<Result<void>(engine::Engine&, const std::string&)>& fn,
                 const std::function<bool(const bc::ContainerState&)>& pick) {
  BERTH_TRY(auto* eng, ctx.engine());
  strings names = ctx.args;
  if (ctx.flag("all")) {
    BERTH_TRY(auto recs, bc::records(*eng));
    names.clear();
    for (const auto& r : recs) {
      if (pick(bc::read_state(eng->runroot(), r))) {
        names.push_back(r.id);
      }
    }
  } else if (names.empty()) {
    return fail(Errc::InvalidArgument, "you must provide at least one container name or id");
  }
  int rc = 0;
  for (const auto& n : names) {
    auto r = fn(*eng, n);
    if (!r) {
      ctx.err << "Error: " << r.error().message() << "\n";
      rc = kExitEngineError;
      continue;
    }
    ctx.out << n << "\n";
  }
  return rc;
}

Result<int> run_pause(Context& ctx) {
  return each(
      ctx, [](engine::Engine& e, const std::string& n) { return bc::pause(e, n); },
      [](const bc::ContainerState& st) { return st.status == bc::Status::Running; });
}

Result<int> run_unpause(Context& ctx) {
  return each(
      ctx, [](engine::Engine& e, const std::string& n) { return bc::unpause(e, n); },
      [](const bc::ContainerState& st) { return st.status == bc::Status::Paused; });
}

Result<int> run_update(Context& ctx) {
  bc::UpdateOptions u;
  BERTH_TRYV(parse_limit_flags(ctx, u));
  if (ctx.has("restart")) {
    u.restart_policy = ctx.str("restart");
  }
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRYV(bc::update_resources(*eng, ctx.args[0], u));
  ctx.out << ctx.args[0] << "\n";
  return 0;
}

Result<int> run_stats(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  strings names = ctx.args;
  if (ctx.flag("latest")) {
    bc::ListOptions lo;
    lo.last = 1;
    BERTH_TRY(auto rows, bc::list(*eng, lo));
    if (rows.empty()) {
      return fail(Errc::NotFound, "no containers to show stats of");
    }
    names = {rows[0]["Id"].get<std::string>()};
  }
  const bool no_trunc = ctx.flag("no-trunc");
  const bool stream = !ctx.flag("no-stream");
  const std::string fmt = ctx.str("format");
  const bool as_json = format::is_json_format(fmt);
  int interval = ctx.get<int>("interval", 5);
  if (interval < 1) {
    return fail(Errc::InvalidArgument, "--interval must be at least 1 second");
  }
  format::ListSpec spec;
  spec.default_format =
      "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t"
      "{{.BlockIO}}\t{{.PIDS}}\t{{.CPU}}\t{{.AVGCPU}}";
  spec.headers = {{"ID", "ID"},
                  {"Name", "NAME"},
                  {"CPUPerc", "CPU %"},
                  {"MemUsage", "MEM USAGE / LIMIT"},
                  {"MemUsageBytes", "MEM USAGE / LIMIT"},
                  {"MemPerc", "MEM %"},
                  {"NetIO", "NET IO"},
                  {"BlockIO", "BLOCK IO"},
                  {"PIDS", "PIDS"},
                  {"PIDs", "PIDS"},
                  {"CPU", "CPU TIME"},
                  {"AVGCPU", "AVG CPU %"},
                  {"UpTime", "UPTIME"}};
  spec.json_indent = 1;
  std::vector<bc::StatsSample> prev;
  for (;;) {
    BERTH_TRY(auto samples, bc::stats(*eng, names));
    json rows = json::array();
    for (const auto& s : samples) {
      const bc::StatsSample* p = nullptr;
      for (const auto& q : prev) {
        if (q.id == s.id) {
          p = &q;
        }
      }
      json row = bc::stats_row(s, p, no_trunc);
      if (as_json) {
        json slim = json::object();
        for (const char* k : {"id", "name", "cpu_time", "cpu_percent", "avg_cpu", "mem_usage",
                              "mem_percent", "net_io", "block_io", "pids"}) {
          slim[k] = row[k];
        }
        row = std::move(slim);
      }
      rows.push_back(std::move(row));
    }
    if (stream && ::isatty(1) && !as_json) {
      ctx.out << "\033[2J\033[H";  // redraw in place, as podman stats
    }
    if (as_json) {
      ctx.out << rows.dump(4) << "\n";
    } else {
      BERTH_TRYV(print_list(ctx, rows, spec));
    }
    ctx.out.flush();
    if (!stream) {
      return 0;
    }
    prev = std::move(samples);
    std::this_thread::sleep_for(std::chrono::seconds(interval));
  }
}

Result<int> run_healthcheck(Context& ctx) {
  BERTH_TRY(auto* eng, ctx.engine());
  BERTH_TRY(auto r, bc::healthcheck_run(*eng, ctx.args[0]));
  if (r.passed) {
    return 0;
  }
  // As Podman: a failed check prints "unhealthy" and exits 1 (the container's status may still
  // be "starting" or "healthy" until the retries are used up).
  ctx.out << "unhealthy\n";
  return 1;
}

void update_flags(po::options_description& d) {
  d.add_options()("memory,m", po::value<std::string>(), "Memory limit (format: <number>[<unit>])")(
      "memory-swap", po::value<std::string>(),
      "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")(
      "memory-reservation", po::value<std::string>(), "Memory soft limit")(
      "cpus", po::value<double>(), "Number of CPUs")("cpu-shares,c", po::value<uint64_t>(),
                                                     "CPU shares (relative weight)")(
      "cpuset-cpus", po::value<std::string>(), "CPUs in which to allow execution (0-3, 0,1)")(
      "cpuset-mems", po::value<std::string>(), "Memory nodes (MEMs) in which to allow execution")(
      "pids-limit", po::value<int64_t>(), "Tune container pids limit (set -1 for unlimited)")(
      "blkio-weight", po::value<uint16_t>(), "Block IO weight (relative weight) (10-1000)")(
      "restart", po::value<std::string>(),
      "Restart policy to apply when the container exits (no, on-failure[:N], always, "
      "unless-stopped)");
}

const Registrar reg([] {
  register_command(
      "container",
      make_command("update", "Update an existing container's resource limits and restart policy",
                   "[options] CONTAINER", 1, 1, update_flags, run_update));
  register_command(
      "container",
      make_command(
          "stats", "Display a live stream of container resource usage statistics",
          "[options] [CONTAINER...]", 0, SIZE_MAX,
          [](po::options_description& d) {
            d.add_options()("all,a", po::bool_switch(), "Show all containers (running ones)")(
                "format", po::value<std::string>(),
                "Pretty-print container statistics to JSON or using a Go template")(
                "interval,i", po::value<int>(), "Time in seconds between stats reports")(
                "latest,l", po::bool_switch(), "Act on the latest container")(
                "no-reset", po::bool_switch(), "Disable resetting the screen between intervals")(
                "no-stream", po::bool_switch(),
                "Disable streaming stats and only pull the first "
                "result")("no-trunc", po::bool_switch(), "Do not truncate output");
          },
          run_stats));
  register_command("container", make_command(
                                    "pause", "Pause all the processes in one or more containers",
                                    "[options] CONTAINER [...]", 0, SIZE_MAX,
                                    [](po::options_description& d) {
                                      d.add_options()("all,a", po::bool_switch(),
                                                      "Pause all running containers");
                                    },
                                    run_pause));
  register_command("container", make_command(
                                    "unpause", "Unpause the processes in one or more containers",
                                    "[options] CONTAINER [...]", 0, SIZE_MAX,
                                    [](po::options_description& d) {
                                      d.add_options()("all,a", po::bool_switch(),
                                                      "Unpause all paused containers");
                                    },
                                    run_unpause));
  Command group;
  group.name = "healthcheck";
  group.summary = "Manage health checks on containers";
  register_command("", std::move(group));
  register_command("healthcheck", make_command("run", "Run the health check of a container",
                                               "CONTAINER", 1, 1, nullptr, run_healthcheck));
  for (const char* s : {"update", "stats", "pause", "unpause"}) {
    register_shortcut(s, std::string("container ") + s);
  }
});

}  // namespace
}  // namespace berth::cli
