// A container's resource limits, devices, security options and health check.
#include "berth/container/resource_options.hpp"
#include "berth/engine/engine.hpp"
#include "features.hpp"

namespace berth::container {

using nlohmann::json;

namespace {

template <typename T>
void put(json& j, const char* key, const std::optional<T>& v) {
  if (v) {
    j[key] = *v;
  }
}

template <typename T>
void get(const json& j, const char* key, std::optional<T>& v) {
  if (j.contains(key) && !j[key].is_null()) {
    v = j[key].get<T>();
  }
}

}  // namespace

void to_json(json& j, const ResourceOptions& o) {
  j = json{{"cpuset_cpus", o.cpuset_cpus},
           {"cpuset_mems", o.cpuset_mems},
           {"devices", o.devices},
           {"security_opt", o.security_opt},
           {"group_add", o.group_add},
           {"health_cmd", o.health_cmd},
           {"health_interval", o.health_interval},
           {"health_timeout", o.health_timeout},
           {"health_start_period", o.health_start_period},
           {"health_retries", o.health_retries},
           {"no_healthcheck", o.no_healthcheck}};
  put(j, "memory", o.memory);
  put(j, "memory_swap", o.memory_swap);
  put(j, "memory_reservation", o.memory_reservation);
  put(j, "cpus", o.cpus);
  put(j, "cpu_shares", o.cpu_shares);
  put(j, "pids_limit", o.pids_limit);
  put(j, "blkio_weight", o.blkio_weight);
  put(j, "shm_size", o.shm_size);
}

void from_json(const json& j, ResourceOptions& o) {
  ResourceOptions d;
  o.cpuset_cpus = j.value("cpuset_cpus", d.cpuset_cpus);
  o.cpuset_mems = j.value("cpuset_mems", d.cpuset_mems);
  o.devices = j.value("devices", d.devices);
  o.security_opt = j.value("security_opt", d.security_opt);
  o.group_add = j.value("group_add", d.group_add);
  o.health_cmd = j.value("health_cmd", d.health_cmd);
  o.health_interval = j.value("health_interval", d.health_interval);
  o.health_timeout = j.value("health_timeout", d.health_timeout);
  o.health_start_period = j.value("health_start_period", d.health_start_period);
  o.health_retries = j.value("health_retries", d.health_retries);
  o.no_healthcheck = j.value("no_healthcheck", d.no_healthcheck);
  get(j, "memory", o.memory);
  get(j, "memory_swap", o.memory_swap);
  get(j, "memory_reservation", o.memory_reservation);
  get(j, "cpus", o.cpus);
  get(j, "cpu_shares", o.cpu_shares);
  get(j, "pids_limit", o.pids_limit);
  get(j, "blkio_weight", o.blkio_weight);
  get(j, "shm_size", o.shm_size);
}

namespace detail {

Result<void> resources_prepare(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                               CreateOptions& /*opts*/, spec::SpecOptions& /*so*/,
                               std::vector<std::string>& /*warnings*/) {
  return {};
}

void resources_inspect(engine::Engine& /*eng*/, const ContainerRecord& /*rec*/,
                       const ContainerState& /*st*/, json& /*out*/) {}

std::vector<PeriodicCommand> resources_periodic(engine::Engine& /*eng*/,
                                                const ContainerRecord& /*rec*/) {
  return {};
}

}  // namespace detail
}  // namespace berth::container
