#pragma once
// An exclusive flock(2) on a lock file, held for the object's life.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "berth/sdk/result.hpp"
#include "berth/sdk/unique_fd.hpp"
#include "berth/util/fs.hpp"

namespace berth::network {

class FileLock {
 public:
  static Result<FileLock> acquire(const std::filesystem::path& file) {
    BERTH_TRYV(util::make_dirs(file.parent_path()));
    for (;;) {
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
      // The holder before us may have removed the file (remove_locked): then this lock is on a
      // dead inode, and the path's new file is the one to lock.
      struct stat held {};
      struct stat now {};
      if (::fstat(fd, &held) != 0) {
        return fail_errno("stat lock file", file.string());
      }
      if (::stat(file.c_str(), &now) == 0 && now.st_ino == held.st_ino &&
          now.st_dev == held.st_dev) {
        l.path_ = file;
        return l;
      }
    }
  }

  // Removes the lock file while holding it (nothing else may be kept under it); a process
  // waiting for it retries on a new file.
  void remove_locked() { ::unlink(path_.c_str()); }

 private:
  FileLock() = default;
  UniqueFd fd_;  // closing it releases the lock
  std::filesystem::path path_;
};

}  // namespace berth::network
