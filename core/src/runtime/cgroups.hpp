#pragma once
// cgroupfs cgroups for one container: v1 (one directory per mounted controller hierarchy) or v2
// (one directory in the unified hierarchy), created and written by the runtime, not the child.
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "berth/sdk/result.hpp"

namespace berth::runtime {

class Cgroups {
 public:
  // `path` is the spec's cgroupsPath ("/berth/<id>"), relative to each hierarchy's root.
  static Result<Cgroups> open(const std::string& path);
  // Recreates the object from the directories recorded in state.json.
  static Cgroups from_dirs(bool v2, std::vector<std::string> dirs);

  Result<void> create();
  // Moves `pid` (0: the caller) into every directory.
  Result<void> add(pid_t pid) const;
  // Applies an OCI linux.resources object (memory, cpu, pids, devices on v1).
  Result<void> apply(const nlohmann::json& resources) const;
  Result<void> freeze(bool frozen) const;
  Result<bool> frozen() const;
  Result<std::vector<pid_t>> pids() const;
  // rmdir of every directory, retrying while the kernel still reports it busy. Idempotent.
  Result<void> destroy() const;

  bool v2() const { return v2_; }
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::string dir_for(const std::string& controller) const;
  bool v2_ = false;
  std::vector<std::string> dirs_;  // absolute, e.g. /sys/fs/cgroup/memory/berth/<id>
};

}  // namespace berth::runtime
