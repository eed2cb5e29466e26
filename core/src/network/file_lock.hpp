#pragma once
// An exclusive flock(2) on a lock file, held for the object's life.
#include <fcntl.h>
#include <sys/file.h>

#include <filesystem>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {

class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& file) {
    BERTH_TRYV(util::make_dirs(file.parent_path()));
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail_errno("open lock file", file.string());
    }
    FileLock l;
    l.fd_.reset(fd);
    while (::flock(fd, LOCK_EX) != 0) {
      if (errno != EINTR) {
        return fail_errno("lock", file.string());
      }
    }
    return l;
  }

 private:
  FileLock() = default;
  UniqueFd fd_;  // closing it releases the lock
};

}  // namespace berth::network
