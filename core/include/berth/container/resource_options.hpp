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
  std::optional<int64_t> memory_swap;         // bytes (memory + swap), -1 unlimited
  std::optional<int64_t> memory_reservation;  // bytes
  std::optional<double> cpus;
  std::optional<uint64_t> cpu_shares;
  std::string cpuset_cpus;
  std::string cpuset_mems;
  std::optional<int64_t> pids_limit;  // <= 0: unlimited
  std::optional<uint16_t> blkio_weight;
  bool oom_kill_disable = false;
  std::vector<std::string> devices;              // --device HOST[:CONTAINER[:PERMS]]
  std::vector<std::string> device_cgroup_rules;  // --device-cgroup-rule "c 1:3 rwm"
  std::vector<std::string> security_opt;         // as given
  std::vector<std::string> group_add;
  std::optional<int64_t> shm_size;  // bytes
  // --userns, --pid, --ipc, --uts, --cgroupns: "" (default), "host", "private", "container:NAME"
  // (the target container's id is recorded once resolved).
  std::string userns;
  // --uidmap/--gidmap CONTAINER:HOST:SIZE as given; create() records the maps in force here
  // (those of --userns=auto, of --subuidname, or of the container joined).
  std::vector<std::string> uidmap;
  std::vector<std::string> gidmap;
  std::string subuidname;  // --subuidname/--subgidname: a map from /etc/subuid, /etc/subgid
  std::string subgidname;
  std::string pid;
  std::string ipc;
  std::string uts;
  std::string cgroupns;
  // --health-cmd (empty: the image's HEALTHCHECK unless no_healthcheck), as Docker's Test array
  // ["CMD-SHELL", "..."] / ["CMD", ...]; durations in nanoseconds as the image config has them.
  // create() copies the image's HEALTHCHECK here, so the record holds the one in force.
  std::vector<std::string> health_cmd;
  int64_t health_interval = 0;  // 0: the default (30 s); -1: "disable" (no periodic run)
  int64_t health_timeout = 0;
  int64_t health_start_period = 0;
  // Docker's StartInterval (API 1.44): the interval of the checks in the start period until one
  // passes; 0: the checks keep `health_interval` then too (Podman's); kDockerStartInterval:
  // Docker's default, 5 s (a container made through the Docker API without one).
  int64_t health_start_interval = 0;
  static constexpr int64_t kDockerStartInterval = -1;
  int health_retries = 0;
  std::string health_on_failure = "none";  // none, kill, restart, stop
  bool no_healthcheck = false;
};
void to_json(nlohmann::json& j, const ResourceOptions& o);
void from_json(const nlohmann::json& j, ResourceOptions& o);

}  // namespace berth::container
