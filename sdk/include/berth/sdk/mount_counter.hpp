#pragma once
// Mount counts shared by every process that uses one store: one small file per layer under a
// directory of the run root (tmpfs, so a reboot forgets them with the mounts), read and written
// under an exclusive flock. Storage drivers hold the lock across the real mount or unmount so
// that "first mount mounts, last unmount unmounts" holds between processes and threads alike.
#include <filesystem>
#include <string>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {

// One layer's count, locked for as long as this object lives.
class LockedMountCount {
 public:
  LockedMountCount(LockedMountCount&&) = default;
  LockedMountCount& operator=(LockedMountCount&&) = default;

  long value() const { return value_; }
  // Stores `count` (clamped at 0).
  Result<void> set(long count);
  // Deletes the count file while still holding the lock: the layer is going away. Processes
  // waiting for this lock notice and retry on a fresh file.
  Result<void> remove();
  // Releases the lock before the object dies.
  void unlock() { fd_.reset(); }

 private:
  friend class MountCounter;
  LockedMountCount(UniqueFd fd, std::filesystem::path file, long value)
      : fd_(std::move(fd)), file_(std::move(file)), value_(value) {}

  UniqueFd fd_;
  std::filesystem::path file_;
  long value_ = 0;
};

class MountCounter {
 public:
  // `dir` holds the count files (created if missing); `who` prefixes error messages ("vfs").
  static Result<MountCounter> open(std::filesystem::path dir, std::string who);

  // Waits for the exclusive lock on `id`'s count. `id` must already be a safe file name.
  Result<LockedMountCount> lock(const std::string& id) const;
  std::filesystem::path file(const std::string& id) const { return dir_ / id; }

 private:
  MountCounter(std::filesystem::path dir, std::string who)
      : dir_(std::move(dir)), who_(std::move(who)) {}

  std::filesystem::path dir_;
  std::string who_;
};

}  // namespace berth::sdk
