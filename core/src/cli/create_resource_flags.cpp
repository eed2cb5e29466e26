// run/create: resource, device, security and health flags.
#include <nlohmann/json.hpp>

#include "berth/container/resource_ops.hpp"
#include "berth/events/events.hpp"
#include "create_flags.hpp"

namespace berth::cli {

namespace {

using strings = std::vector<std::string>;

Result<int64_t> size_flag(Context& ctx, const char* flag, bool allow_unlimited) {
  const std::string v = ctx.str(flag);
  if (allow_unlimited && v == "-1") {
    return -1;
  }
  auto n = container::parse_ram_bytes(v);
  if (!n) {
    return fail(std::move(n).error().wrap(std::string("--") + flag));
  }
  return *n;
}

// Go durations ("30s", "1m30s"); "disable" for --health-interval.
Result<int64_t> duration_flag(Context& ctx, const char* flag) {
  const std::string v = ctx.str(flag);
  if (v == "disable" && std::string_view(flag) == "health-interval") {
    return -1;
  }
  auto d = events::parse_duration(v);
  if (!d || *d < 0) {
    return fail(Errc::InvalidArgument,
                std::string("--") + flag + " " + v + ": want a duration such as 30s or 1m30s");
  }
  return *d;
}

}  // namespace

void resource_create_flags(po::options_description& d) {
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
      "shm-size", po::value<std::string>(), "Size of /dev/shm (format: <number>[<unit>])")(
      "oom-kill-disable", po::bool_switch(), "Disable OOM Killer")(
      "device", po::value<strings>()->composing(), "Add a host device to the container")(
      "device-cgroup-rule", po::value<strings>()->composing(),
      "Add a rule to the cgroup allowed devices list")(
      "group-add", po::value<strings>()->composing(), "Add additional groups to join")(
      "security-opt", po::value<strings>()->composing(), "Security options")(
      "userns", po::value<std::string>(),
      "User namespace to use (host, auto[:size=N,uidmapping=C:H:S,gidmapping=C:H:S], "
      "container:NAME, ns:PATH)")("uidmap", po::value<strings>()->composing(),
                                  "UID map for the user namespace (CONTAINER:HOST:SIZE)")(
      "gidmap", po::value<strings>()->composing(),
      "GID map for the user namespace (CONTAINER:HOST:SIZE)")(
      "subuidname", po::value<std::string>(),
      "Name of range listed in /etc/subuid for use in user "
      "namespace")("subgidname", po::value<std::string>(),
                   "Name of range listed in /etc/subgid for use in user namespace")(
      "pid", po::value<std::string>(), "PID namespace to use (host, private, container:NAME)")(
      "ipc", po::value<std::string>(), "IPC namespace to use (host, private, container:NAME)")(
      "uts", po::value<std::string>(), "UTS namespace to use (host, private, container:NAME)")(
      "cgroupns", po::value<std::string>(), "cgroup namespace to use (host, private)")(
      "health-cmd", po::value<std::string>(),
      "Set a healthcheck command for the container ('none' disables the existing healthcheck)")(
      "health-interval", po::value<std::string>(),
      "Set an interval for the healthcheck (a value of disable results in no automatic timer "
      "setup)")("health-retries", po::value<int>(),
                "The number of retries allowed before a healthcheck is considered to be "
                "unhealthy")("health-start-period", po::value<std::string>(),
                             "The initialization time needed for a container to bootstrap")(
      "health-timeout", po::value<std::string>(),
      "The maximum time allowed to complete the healthcheck before an interval is considered "
      "failed")("health-on-failure", po::value<std::string>(),
                "Action to take once the container turns unhealthy (none, kill, restart, stop)")(
      "no-healthcheck", po::bool_switch(), "Disable healthchecks on container");
}

Result<void> parse_limit_flags(Context& ctx, container::UpdateOptions& u) {
  if (ctx.has("memory")) {
    BERTH_TRY(u.memory, size_flag(ctx, "memory", false));
  }
  if (ctx.has("memory-swap")) {
    BERTH_TRY(u.memory_swap, size_flag(ctx, "memory-swap", true));
  }
  if (ctx.has("memory-reservation")) {
    BERTH_TRY(u.memory_reservation, size_flag(ctx, "memory-reservation", false));
  }
  if (ctx.has("cpus")) {
    u.cpus = ctx.get<double>("cpus");
  }
  if (ctx.has("cpu-shares")) {
    u.cpu_shares = ctx.get<uint64_t>("cpu-shares");
  }
  if (ctx.has("cpuset-cpus")) {
    u.cpuset_cpus = ctx.str("cpuset-cpus");
  }
  if (ctx.has("cpuset-mems")) {
    u.cpuset_mems = ctx.str("cpuset-mems");
  }
  if (ctx.has("pids-limit")) {
    u.pids_limit = ctx.get<int64_t>("pids-limit");
  }
  if (ctx.has("blkio-weight")) {
    u.blkio_weight = ctx.get<uint16_t>("blkio-weight");
  }
  return {};
}

Result<void> parse_resource_flags(Context& ctx, container::CreateOptions& o) {
  auto& r = o.resources;
  container::UpdateOptions limits;
  BERTH_TRYV(parse_limit_flags(ctx, limits));
  r.memory = limits.memory;
  r.memory_swap = limits.memory_swap;
  r.memory_reservation = limits.memory_reservation;
  r.cpus = limits.cpus;
  r.cpu_shares = limits.cpu_shares;
  r.cpuset_cpus = limits.cpuset_cpus.value_or("");
  r.cpuset_mems = limits.cpuset_mems.value_or("");
  r.pids_limit = limits.pids_limit;
  r.blkio_weight = limits.blkio_weight;
  if (ctx.has("shm-size")) {
    BERTH_TRY(r.shm_size, size_flag(ctx, "shm-size", false));
  }
  r.oom_kill_disable = ctx.flag("oom-kill-disable");
  r.devices = ctx.strs("device");
  r.device_cgroup_rules = ctx.strs("device-cgroup-rule");
  r.group_add = ctx.strs("group-add");
  for (const auto& s : ctx.strs("security-opt")) {
    if (s == "no-new-privileges" || s == "no-new-privileges=true" ||
        s == "no-new-privileges:true") {
      o.no_new_privileges = true;
    }
    r.security_opt.push_back(s);  // checked by create() (seccomp=, mask=, label=, ...)
  }
  r.userns = ctx.str("userns");
  r.uidmap = ctx.strs("uidmap");
  r.gidmap = ctx.strs("gidmap");
  r.subuidname = ctx.str("subuidname");
  r.subgidname = ctx.str("subgidname");
  r.pid = ctx.str("pid");
  r.ipc = ctx.str("ipc");
  r.uts = ctx.str("uts");
  r.cgroupns = ctx.str("cgroupns");
  r.no_healthcheck = ctx.flag("no-healthcheck");
  if (ctx.has("health-cmd")) {
    const std::string cmd = ctx.str("health-cmd");
    if (r.no_healthcheck && cmd != "none") {
      return fail(Errc::InvalidArgument, "--no-healthcheck and --health-cmd conflict");
    }
    if (cmd == "none") {
      r.no_healthcheck = true;
    } else if (!cmd.empty() && cmd.front() == '[') {
      // A JSON array is the Test itself: ["CMD", "curl", "-f", "http://localhost"].
      try {
        r.health_cmd = nlohmann::json::parse(cmd).get<strings>();
      } catch (const nlohmann::json::exception& e) {
        return fail(Errc::InvalidArgument, "--health-cmd: " + std::string(e.what()));
      }
      if (r.health_cmd.empty() || (r.health_cmd[0] != "CMD" && r.health_cmd[0] != "CMD-SHELL" &&
                                   r.health_cmd[0] != "NONE")) {
        r.health_cmd.insert(r.health_cmd.begin(), "CMD");
      }
    } else if (cmd.empty()) {
      return fail(Errc::InvalidArgument, "--health-cmd: must not be empty");
    } else {
      r.health_cmd = {"CMD-SHELL", cmd};
    }
  }
  if (ctx.has("health-interval")) {
    BERTH_TRY(r.health_interval, duration_flag(ctx, "health-interval"));
    if (r.health_interval == 0) {
      r.health_interval = -1;  // "0s" also means no timer
    }
  }
  if (ctx.has("health-timeout")) {
    BERTH_TRY(r.health_timeout, duration_flag(ctx, "health-timeout"));
    if (r.health_timeout > 0 && r.health_timeout < 1'000'000'000) {
      return fail(Errc::InvalidArgument, "--health-timeout: must be at least 1 second");
    }
  }
  if (ctx.has("health-start-period")) {
    BERTH_TRY(r.health_start_period, duration_flag(ctx, "health-start-period"));
  }
  if (ctx.has("health-retries")) {
    int n = ctx.get<int>("health-retries");
    if (n < 1) {
      return fail(Errc::InvalidArgument, "--health-retries must be greater than 0");
    }
    r.health_retries = n;
  }
  if (ctx.has("health-on-failure")) {
    r.health_on_failure = ctx.str("health-on-failure");
  }
  return {};
}

}  // namespace berth::cli
