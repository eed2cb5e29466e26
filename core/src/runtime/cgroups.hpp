#pragma once
// cgroupfs cgroups for one container: v1 (one directory per mounted controller hierarchy) or v2
// (one directory in the unified hierarchy), created and written by the runtime, not the child.
#include <sys/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

// Counters of one cgroup (`stats`). Missing controllers leave zeros.
struct CgroupStats {
  uint64_t cpu_nanos = 0;     // cpuacct.usage / cpu.stat usage_usec
  uint64_t mem_usage = 0;     // memory.usage_in_bytes / memory.current
  uint64_t mem_limit = 0;     // 0: unlimited
  uint64_t mem_inactive = 0;  // inactive file cache (total_inactive_file / inactive_file)
  uint64_t pids = 0;          // pids.current
  uint64_t io_read = 0;       // bytes
  uint64_t io_write = 0;      // bytes
};

class Cgroups {
 public:
  // `path` is the spec's cgroupsPath ("/berth/<id>"), relative to each hierarchy's root.
  static Result<Cgroups> open(const std::string& path);
  // Recreates the object from the directories recorded in state.json. `root` is where the
  // hierarchies are mounted (tests use a temporary directory).
  static Cgroups from_dirs(bool v2, std::vector<std::string> dirs,
                           std::string root = "/sys/fs/cgroup");

  Result<void> create();
  // Moves `pid` (0: the caller) into every directory.
  Result<void> add(pid_t pid) const;
  // Applies an OCI linux.resources object: memory (limit, swap, reservation, disableOOMKiller),
  // cpu (shares, quota, period, cpus, mems), pids, blockIO.weight, and devices on v1 (v2 needs
  // an eBPF program, which berth does not load: the rules are not enforced there).
  Result<void> apply(const nlohmann::json& resources) const;
  Result<void> freeze(bool frozen) const;
  Result<bool> frozen() const;
  Result<std::vector<pid_t>> pids() const;
  Result<CgroupStats> stats() const;
  // rmdir of every directory, retrying while the kernel still reports it busy. Idempotent.
  Result<void> destroy() const;

  bool v2() const { return v2_; }
  const std::vector<std::string>& dirs() const { return dirs_; }
  // The directory of a controller ("memory", "cpu", ...); "" when not mounted.
  std::string dir_for(const std::string& controller) const;

 private:
  bool v2_ = false;
  std::string root_ = "/sys/fs/cgroup";
  std::vector<std::string> dirs_;  // absolute, e.g. /sys/fs/cgroup/memory/berth/<id>
};

}  // namespace berth::runtime
