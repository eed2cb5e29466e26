#pragma once
// Resources, pause and health checks of existing containers: `update`, `stats`, `pause`,
// `unpause`, `healthcheck run`. The CLI (core/src/cli/resource_cmds.cpp) and the API call these.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "berth/container/container.hpp"
#include "berth/sdk/result.hpp"

namespace berth::engine {
class Engine;
}

namespace berth::container {

// go-units RAMInBytes as Podman parses --memory: "512m", "1.5g", "100000", "64k" (binary units,
// case-insensitive, optional "b"/"ib"). Negative values are refused.
Result<int64_t> parse_ram_bytes(std::string_view text);

// The OCI linux.resources object for the options (memory, cpu, pids, blockIO; no devices).
// Follows Podman: --memory without --memory-swap allows as much swap as memory (2x in total).
Result<nlohmann::json> resources_to_oci(const ResourceOptions& o);

// `update`: only the fields set change. Writes the cgroup files of a running (or paused)
// container through its runtime, then the record and the spec (a later start keeps them).
struct UpdateOptions {
  std::optional<int64_t> memory;
  std::optional<int64_t> memory_swap;
  std::optional<int64_t> memory_reservation;
  std::optional<double> cpus;
  std::optional<uint64_t> cpu_shares;
  std::optional<std::string> cpuset_cpus;
  std::optional<std::string> cpuset_mems;
  std::optional<int64_t> pids_limit;
  std::optional<uint16_t> blkio_weight;
  // `update --restart`: "no", "on-failure[:N]", "always", "unless-stopped"; applied the next
  // time the container exits.
  std::optional<std::string> restart_policy;
};
Result<void> update_resources(engine::Engine& eng, const std::string& name_or_id,
                              const UpdateOptions& o);

// One reading of a container's cgroup and network counters.
struct StatsSample {
  std::string id;
  std::string name;
  int64_t read_at = 0;     // unix nanos
  int64_t started_at = 0;  // unix nanos
  uint64_t cpu_nanos = 0;  // cumulative CPU time of the cgroup
  uint64_t mem_usage = 0;  // usage without the inactive page cache, as Podman
  uint64_t mem_limit = 0;  // the limit, or the host's memory when unlimited
  uint64_t net_rx = 0;
  uint64_t net_tx = 0;
  uint64_t block_read = 0;
  uint64_t block_write = 0;
  uint64_t pids = 0;
};
// Reads running containers: the ones named, else all running ones. A named container that is not
// running is an error (as Podman).
Result<std::vector<StatsSample>> stats(engine::Engine& eng, const std::vector<std::string>& names);
// A `podman stats --format json` object: id, name, cpu_time, cpu_percent, avg_cpu, mem_usage,
// mem_percent, net_io, block_io, pids; plus the Go-template fields (ID, Name, CPUPerc, AVGCPU,
// MemUsage, MemUsageBytes, MemPerc, NetIO, BlockIO, PIDS, CPU, UpTime). CPU % is over `prev`'s
// interval when given, else over the container's lifetime.
nlohmann::json stats_row(const StatsSample& now, const StatsSample* prev, bool no_trunc);

// Freezes / thaws every process of a running container (freezer cgroup); state "paused".
Result<void> pause(engine::Engine& eng, const std::string& name_or_id);
Result<void> unpause(engine::Engine& eng, const std::string& name_or_id);

// The health check in force, Docker's Config.Healthcheck shape (Test, Interval, Timeout,
// StartPeriod, Retries in ns), or null when there is none.
nlohmann::json healthcheck_config(const ResourceOptions& o);

// `healthcheck run`: runs the check once in the running container, records the result in
// <runroot>/containers/<id>/health.json (the last 5 results), applies --health-on-failure when
// the container turns unhealthy. Failures within the start period do not count; `retries`
// failures in a row make the container unhealthy, one success healthy.
struct HealthCheckResult {
  bool passed = false;  // this run's command exited 0
  int exit_code = 0;    // of this run's command (1 on timeout)
  std::string status;   // the container's status after it: healthy, unhealthy, starting
};
Result<HealthCheckResult> healthcheck_run(engine::Engine& eng, const std::string& name_or_id);

// State.Health of inspect: {Status, FailingStreak, Log}; null when the container has no check.
nlohmann::json health_state(const std::string& run_root, const ContainerRecord& rec);
// "healthy", "unhealthy", "starting", or "" when the container has no check (for `ps`:
// "Up 5 seconds (healthy)").
std::string health_status(const std::string& run_root, const ContainerRecord& rec);

}  // namespace berth::container
