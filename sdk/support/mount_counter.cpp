#include "berth/sdk/mount_counter.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <system_error>

namespace berth::sdk {

namespace fs = std::filesystem;

Result<void> LockedMountCount::set(long count) {
  count = std::max(0L, count);
  const std::string text = std::to_string(count);
  if (::pwrite(fd_.get(), text.data(), text.size(), 0) != static_cast<ssize_t>(text.size()) ||
      ::ftruncate(fd_.get(), static_cast<off_t>(text.size())) != 0) {
    return fail_errno("write mount count", file_.string());
  }
  value_ = count;
  return {};
}

Result<void> LockedMountCount::remove() {
  if (::unlink(file_.c_str()) != 0 && errno != ENOENT) {
    return fail_errno("remove mount count", file_.string());
  }
  value_ = 0;
  return {};
}

Result<MountCounter> MountCounter::open(fs::path dir, std::string who) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return fail_errno(who + ": create directory", dir.string(), ec.value());
  }
  return MountCounter(std::move(dir), std::move(who));
}

Result<LockedMountCount> MountCounter::lock(const std::string& id) const {
  const fs::path p = file(id);
  for (;;) {
    UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
      return fail_errno(who_ + ": open mount count", p.string());
    }
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR) {
        return fail_errno(who_ + ": lock mount count", p.string());
      }
    }
    // The holder before us may have removed the file (its layer went away): then our fd is a
    // dead inode, and the count that matters is a new file.
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
      return fail_errno(who_ + ": stat mount count", p.string());
    }
    if (st.st_nlink == 0) {
      continue;
    }
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
    if (n < 0) {
      return fail_errno(who_ + ": read mount count", p.string());
    }
    long count = 0;
    if (n > 0 && std::from_chars(buf, buf + n, count).ec != std::errc()) {
      return fail(Errc::Corrupt, who_ + ": mount count " + p.string() +
                                     " is unreadable; delete it if no container uses layer " + id);
    }
    return LockedMountCount(std::move(fd), p, count);
  }
}

}  // namespace berth::sdk
