#pragma once
// posix_spawn's file actions and attributes for a child that starts with the default signal
// state (mask and dispositions), whatever the caller's threads block or ignore.
#include <spawn.h>

#include <string>

#include "berth/sdk/result.hpp"

namespace berth::util {

class SpawnSetup {
 public:
  SpawnSetup() = default;
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  ~SpawnSetup();

  // Initialises both and sets the default signal state; `what` names the child in errors.
  Result<void> init(const std::string& what);
  // Adds POSIX_SPAWN_* flags (POSIX_SPAWN_SETSID, ...) to the signal ones.
  Result<void> add_flags(short flags);

  posix_spawn_file_actions_t* actions() { return &fa_; }
  posix_spawnattr_t* attr() { return &attr_; }

 private:
  std::string what_;
  posix_spawn_file_actions_t fa_{};
  posix_spawnattr_t attr_{};
  bool fa_ok_ = false;
  bool attr_ok_ = false;
  short flags_ = 0;
};

}  // namespace berth::util
