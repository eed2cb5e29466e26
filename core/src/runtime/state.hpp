#pragma once
// Per-container runtime state: <run_root>/native/<id>/state.json (written atomically) and the
// exec fifo that holds a created container until `start`.
#include <sys/types.h>

#include <string>
#include <vector>

#include "berth/sdk/result.hpp"
#include "berth/sdk/runtime.hpp"

namespace berth::runtime {

struct ContainerState {
  std::string id;
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/<pid>/stat field 22, guards against pid reuse
  std::string bundle;
  std::string created;  // RFC 3339
  bool cgroup_v2 = false;
  std::vector<std::string> cgroup_dirs;
};

Result<void> write_state(const std::string& dir, const ContainerState& state);
Result<ContainerState> read_state(const std::string& dir);
// The start time of `pid`, or 0 when the process is gone or a zombie.
uint64_t process_start_time(pid_t pid);
// True when `state.pid` still is the container's init (alive, not a zombie, same start time).
bool init_alive(const ContainerState& state);
std::string rfc3339_now();

}  // namespace berth::runtime
