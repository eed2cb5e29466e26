#pragma once
// Helpers shared by the volume module's files.
#include <sys/file.h>

#include <filesystem>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/volume/volume.hpp"

namespace berth::volume::internal {

// An flock held for the object's lifetime.
class FileLock {
 public:
  // Opens (creating, and with `make_parent` its directory) and locks `path` (LOCK_SH/LOCK_EX).
  static Result<FileLock> open(const std::filesystem::path& path, int how,
                               bool make_parent = false);
  // As open() but without waiting: an error when someone else holds it.
  static Result<FileLock> try_open(const std::filesystem::path& path, int how);
  int fd() const { return fd_.get(); }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// The mount count stored in an open count file (empty file = 0).
Result<uint64_t> read_count_fd(int fd, const std::filesystem::path& path);
Result<void> write_count_fd(int fd, const std::filesystem::path& path, uint64_t count);

// Mounts an option volume (type=, device=, o=) on its _data directory; unmount undoes it.
Result<void> mount_volume(const Volume& v);
Result<void> unmount_volume(const Volume& v);
// Whether `path` is the root of a mount (its device or mount id differs from its parent's).
Result<bool> is_mount_point(const std::filesystem::path& path);

}  // namespace berth::volume::internal
