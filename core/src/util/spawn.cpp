#include "berth/util/spawn.hpp"

#include <signal.h>

namespace berth::util {

SpawnSetup::~SpawnSetup() {
  if (fa_ok_) {
    posix_spawn_file_actions_destroy(&fa_);
  }
  if (attr_ok_) {
    posix_spawnattr_destroy(&attr_);
  }
}

Result<void> SpawnSetup::init(const std::string& what) {
  what_ = what;
  if (int rc = posix_spawn_file_actions_init(&fa_); rc != 0) {
    return fail_errno("posix_spawn_file_actions_init", what_, rc);
  }
  fa_ok_ = true;
  if (int rc = posix_spawnattr_init(&attr_); rc != 0) {
    return fail_errno("posix_spawnattr_init", what_, rc);
  }
  attr_ok_ = true;
  sigset_t none;
  sigset_t all;
  sigemptyset(&none);
  sigfillset(&all);
  int rc = posix_spawnattr_setsigmask(&attr_, &none);
  rc = rc != 0 ? rc : posix_spawnattr_setsigdefault(&attr_, &all);
  if (rc != 0) {
    return fail_errno("set the signal state of", what_, rc);
  }
  return add_flags(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

Result<void> SpawnSetup::add_flags(short flags) {
  flags_ = static_cast<short>(flags_ | flags);
  if (int rc = posix_spawnattr_setflags(&attr_, flags_); rc != 0) {
    return fail_errno("set the spawn flags of", what_, rc);
  }
  return {};
}

}  // namespace berth::util
