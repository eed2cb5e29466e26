#pragma once
// A container's resource, device, security and health flags (run/create --memory, --cpus,
// --device, --security-opt, --health-cmd, ...), stored with its record. Owned by
// core/src/container/resources_glue.cpp.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace berth::container {

struct ResourceOptions {
  std::optional<int64_t> memory;              // bytes
  std::optional<int64_t> memory_swap;         // bytes, -1 unlimited
  std::optional<int64_t> memory_reservation;  // bytes
  std::optional<double> cpus;
  std::optional<uint64_t> cpu_shares;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::optional<int64_t> pids_limit;
  std::optional<uint16_t> blkio_weight;
  std::vector<std::string> devices;       // --device HOST[:CONTAINER[:PERMS]]
  std::vector<std::string> security_opt;  // as given
  std::vector<std::string> group_add;
  std::optional<int64_t> shm_size;  // bytes
  // --health-cmd (empty: the image's HEALTHCHECK unless no_healthcheck), as Docker's Test array
  // ["CMD-SHELL", "..."] / ["CMD", ...]; durations in nanoseconds as the image config has them.
  std::vector<std::string> health_cmd;
  int64_t health_interval = 0;
  int64_t health_timeout = 0;
  int64_t health_start_period = 0;
  int health_retries = 0;
  bool no_healthcheck = false;
};
void to_json(nlohmann::json& j, const ResourceOptions& o);
void from_json(const nlohmann::json& j, ResourceOptions& o);

}  // namespace berth::container
