#include "tmpcopyup.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>

#include "berth/sdk/unique_fd.hpp"

namespace berth::runtime {
namespace {

Result<void> copy_file_data(int from, int to, const std::string& path) {
  for (;;) {
    ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, size_t{1} << 30, 0);
    if (n == 0) {
      return {};
    }
    if (n > 0) {
      continue;
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
      return fail_errno("copy", path);
    }
    break;  // not between these file systems: a plain copy
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(from, buf, sizeof buf);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("read", path);
    }
    if (n == 0) {
      return {};
    }
    for (ssize_t off = 0; off < n;) {
      ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
      if (w < 0 && errno == EINTR) {
        continue;
      }
      if (w < 0) {
        return fail_errno("write", path);
      }
      off += w;
    }
  }
}

// Owner, then mode (a chown clears set-id bits), then times of `name` in `dir`.
Result<void> copy_attrs(int dir, const char* name, const struct stat& st, const std::string& path) {
  if (::fchownat(dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno("chown", path);
  }
  if (!S_ISLNK(st.st_mode) && ::fchmodat(dir, name, st.st_mode & 07777, 0) != 0) {
    return fail_errno("chmod", path);
  }
  const struct timespec times[2] = {st.st_atim, st.st_mtim};
  if (::utimensat(dir, name, times, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno("set the times of", path);
  }
  return {};
}

}  // namespace

Result<void> copy_dir_contents(int src_dir, int dst_dir, const std::string& what) {
  int dup = ::fcntl(src_dir, F_DUPFD_CLOEXEC, 3);
  if (dup < 0) {
    return fail_errno("dup directory fd of", what);
  }
  DIR* d = ::fdopendir(dup);
  if (d == nullptr) {
    ::close(dup);
    return fail_errno("read directory", what);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  ::rewinddir(d);
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(d);
    if (e == nullptr) {
      if (errno != 0) {
        return fail_errno("read directory", what);
      }
      return {};
    }
    const char* name = e->d_name;
    if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) {
      continue;
    }
    const std::string path = what + "/" + name;
    struct stat st {};
    if (::fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno("stat", path);
    }
    if (S_ISDIR(st.st_mode)) {
      if (::mkdirat(dst_dir, name, 0700) != 0 && errno != EEXIST) {
        return fail_errno("create directory", path);
      }
      UniqueFd from(::openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      UniqueFd to(::openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!from || !to) {
        return fail_errno("open directory", path);
      }
      BERTH_TRYV(copy_dir_contents(from.get(), to.get(), path));
    } else if (S_ISREG(st.st_mode)) {
      UniqueFd from(::openat(src_dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
      if (!from) {
        return fail_errno("open", path);
      }
      UniqueFd to(
          ::openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!to) {
        return fail_errno("create", path);
      }
      BERTH_TRYV(copy_file_data(from.get(), to.get(), path));
    } else if (S_ISLNK(st.st_mode)) {
      char buf[PATH_MAX];
      ssize_t n = ::readlinkat(src_dir, name, buf, sizeof buf - 1);
      if (n < 0) {
        return fail_errno("read link", path);
      }
      const std::string target(buf, static_cast<size_t>(n));
      if (::symlinkat(target.c_str(), dst_dir, name) != 0) {
        return fail_errno("create symlink", path);
      }
    } else if (::mknodat(dst_dir, name, st.st_mode, st.st_rdev) != 0) {
      return fail_errno("create node", path);
    }
    BERTH_TRYV(copy_attrs(dst_dir, name, st, path));
  }
}

}  // namespace berth::runtime
