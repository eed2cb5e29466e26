// Tree operations on layer directories: tar creation (write_tree_tar), a full-fidelity copy
// (copy_tree) and disk usage (tree_usage). The trees are the driver's own directories, so plain
// paths are used; symlinks are never followed.
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {
namespace {

struct DevIno {
  dev_t dev;
  ino_t ino;
  bool operator<(const DevIno& o) const { return dev != o.dev ? dev < o.dev : ino < o.ino; }
};

// Sorted names of a directory's children.
Result<std::vector<std::string>> list_dir(const std::string& path) {
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(path.c_str()), ::closedir);
  if (!d) {
    return fail_errno("open directory", path);
  }
  std::vector<std::string> names;
  errno = 0;
  while (dirent* de = ::readdir(d.get())) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") {
      names.emplace_back(n);
    }
  }
  if (errno != 0) {
    return fail_errno("read directory", path);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// All xattrs of `path` (not following a final symlink), in name order.
Result<std::vector<std::pair<std::string, std::string>>> read_xattrs(const std::string& path) {
  std::vector<std::pair<std::string, std::string>> out;
  ssize_t len = ::llistxattr(path.c_str(), nullptr, 0);
  if (len < 0) {
    if (errno == ENOTSUP) {
      return out;
    }
    return fail_errno("list xattrs of", path);
  }
  if (len == 0) {
    return out;
  }
  std::string names(static_cast<size_t>(len), '\0');
  len = ::llistxattr(path.c_str(), names.data(), names.size());
  if (len < 0) {
    return fail_errno("list xattrs of", path);
  }
  names.resize(static_cast<size_t>(len));
  for (size_t pos = 0; pos < names.size();) {
    std::string name(names.c_str() + pos);
    pos += name.size() + 1;
    if (name.empty()) {
      continue;
    }
    ssize_t vlen = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (vlen < 0) {
      if (errno == ENODATA) {
        continue;
      }
      return fail_errno("read xattr " + name + " of", path);
    }
    std::string value(static_cast<size_t>(vlen), '\0');
    vlen = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (vlen < 0) {
      return fail_errno("read xattr " + name + " of", path);
    }
    value.resize(static_cast<size_t>(vlen));
    out.emplace_back(std::move(name), std::move(value));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool is_overlay_xattr(std::string_view n) {
  return n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.");
}

// ---------------------------------------------------------------------------------------------
// write_tree_tar

struct ArchiveWriteDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

class TreeWriter {
 public:
  TreeWriter(std::string root, const TreeTarOptions& opts)
      : root_(std::move(root)), wf_(opts.whiteouts), ids_(opts.ids) {}

  Result<void> run(int out_fd) {
    a_.reset(archive_write_new());
    if (!a_) {
      return fail(Errc::Internal, "write tar: archive_write_new: out of memory");
    }
    if (archive_write_set_format_pax_restricted(a_.get()) != ARCHIVE_OK ||
        archive_write_add_filter_none(a_.get()) != ARCHIVE_OK ||
        archive_write_open_fd(a_.get(), out_fd) != ARCHIVE_OK) {
      return fail(Errc::Internal, "write tar of " + root_ + ": " + error());
    }
    if (wf_ == WhiteoutFormat::Overlay) {
      // The tree root itself may be opaque (a layer that replaced "/" wholesale).
      BERTH_TRY(auto xattrs, read_xattrs(root_));
      for (const auto& [name, value] : xattrs) {
        if (is_overlay_xattr(name) && name.ends_with(".overlay.opaque") && value == "y") {
          struct stat st;
          if (::lstat(root_.c_str(), &st) != 0) {
            return fail_errno("stat", root_);
          }
          BERTH_TRYV(marker(".wh..wh..opq", st));
          break;
        }
      }
    }
    BERTH_TRYV(dir(root_, ""));
    if (archive_write_close(a_.get()) != ARCHIVE_OK) {
      return fail(Errc::Internal, "write tar of " + root_ + ": " + error());
    }
    return {};
  }

 private:
  std::string error() {
    const char* m = archive_error_string(a_.get());
    return m ? m : "unknown error";
  }

  Result<void> dir(const std::string& path, const std::string& rel) {
    BERTH_TRY(auto names, list_dir(path));
    for (const auto& n : names) {
      std::string cpath = path + "/" + n;
      std::string crel = rel.empty() ? n : rel + "/" + n;
      struct stat st;
      if (::lstat(cpath.c_str(), &st) != 0) {
        return fail_errno("stat", cpath);
      }
      if (S_ISSOCK(st.st_mode)) {
        continue;  // tar cannot hold sockets; GNU tar skips them too
      }
      BERTH_TRYV(entry(cpath, crel, st));
      if (S_ISDIR(st.st_mode)) {
        BERTH_TRYV(dir(cpath, crel));
      }
    }
    return {};
  }

  Result<void> write_header(archive_entry* e, const std::string& path) {
    if (archive_write_header(a_.get(), e) < ARCHIVE_WARN) {
      return fail(Errc::Internal, "write tar entry for " + path + ": " + error());
    }
    return {};
  }

  Result<void> marker(const std::string& rel, const struct stat& st) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), rel.c_str());
    archive_entry_set_filetype(e.get(), AE_IFREG);
    archive_entry_set_perm(e.get(), 0);
    archive_entry_set_size(e.get(), 0);
    archive_entry_set_mtime(e.get(), st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
    return write_header(e.get(), rel);
  }

  Result<void> entry(const std::string& path, const std::string& rel, const struct stat& st) {
    const bool overlay = wf_ == WhiteoutFormat::Overlay;
    if (overlay && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) {
      auto slash = rel.rfind('/');
      std::string wh = slash == std::string::npos
                           ? ".wh." + rel
                           : rel.substr(0, slash + 1) + ".wh." + rel.substr(slash + 1);
      return marker(wh, st);
    }
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    archive_entry_copy_stat(e.get(), &st);
    archive_entry_set_pathname(e.get(), rel.c_str());
    if (!ids_.identity()) {
      const Owner o = ids_.to_container({st.st_uid, st.st_gid});
      archive_entry_set_uid(e.get(), o.uid);
      archive_entry_set_gid(e.get(), o.gid);
    }
    // Access times change on every read: leaving them out keeps the output deterministic.
    archive_entry_unset_atime(e.get());
    archive_entry_unset_ctime(e.get());
    archive_entry_unset_birthtime(e.get());
    bool opaque = false;
    if (S_ISLNK(st.st_mode)) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlink(path.c_str(), target.data(), target.size());
      if (n < 0) {
        return fail_errno("read symlink", path);
      }
      target.resize(static_cast<size_t>(n));
      archive_entry_set_symlink(e.get(), target.c_str());
    }
    bool content = S_ISREG(st.st_mode) && st.st_size > 0;
    if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
      auto [it, inserted] = links_.emplace(DevIno{st.st_dev, st.st_ino}, rel);
      if (!inserted) {
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
        content = false;
      }
    }
    BERTH_TRY(auto xattrs, read_xattrs(path));
    for (const auto& [name, value] : xattrs) {
      if (is_overlay_xattr(name)) {
        if (name.ends_with(".overlay.opaque") && value == "y") {
          opaque = true;
        }
        continue;
      }
      archive_entry_xattr_add_entry(e.get(), name.c_str(), value.data(), value.size());
    }
    if (archive_entry_hardlink(e.get()) != nullptr) {
      archive_entry_xattr_clear(e.get());
    }
    BERTH_TRYV(write_header(e.get(), rel));
    if (content) {
      BERTH_TRYV(copy_content(path, st));
    }
    if (overlay && opaque && S_ISDIR(st.st_mode)) {
      BERTH_TRYV(marker(rel + "/.wh..wh..opq", st));
    }
    return {};
  }

  Result<void> copy_content(const std::string& path, const struct stat& st) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd) {
      return fail_errno("open", path);
    }
    if (buf_.empty()) {
      buf_.resize(1024 * 1024);
    }
    off_t left = st.st_size;
    while (left > 0) {
      ssize_t n =
          ::read(fd.get(), buf_.data(),
                 static_cast<size_t>(std::min<off_t>(left, static_cast<off_t>(buf_.size()))));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno("read", path);
      }
      if (n == 0) {
        return fail(Errc::Conflict, "write tar: " + path + " shrank while being archived");
      }
      if (archive_write_data(a_.get(), buf_.data(), static_cast<size_t>(n)) < 0) {
        return fail(Errc::Internal, "write tar content of " + path + ": " + error());
      }
      left -= n;
    }
    return {};
  }

  std::string root_;
  WhiteoutFormat wf_;
  IdMappings ids_;
  std::unique_ptr<archive, ArchiveWriteDeleter> a_;
  std::map<DevIno, std::string> links_;
  std::vector<char> buf_;
};

// ---------------------------------------------------------------------------------------------
// copy_tree

Result<void> copy_data(const std::string& from, int in, const std::string& to, int out,
                       off_t size) {
  if (::ioctl(out, FICLONE, in) == 0) {
    return {};
  }
  off_t left = size;
  bool use_cfr = true;
  std::vector<char> buf;
  while (left > 0) {
    if (use_cfr) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(left), 0);
      if (n > 0) {
        left -= n;
        continue;
      }
      if (n == 0) {
        return fail(Errc::Conflict, "copy " + from + ": file shrank while being copied");
      }
      if (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP) {
        use_cfr = false;
        continue;
      }
      return fail_errno("copy " + from + " to", to);
    }
    if (buf.empty()) {
      buf.resize(1024 * 1024);
    }
    ssize_t n = ::read(in, buf.data(), static_cast<size_t>(std::min<off_t>(left, 1024 * 1024)));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("read", from);
    }
    if (n == 0) {
      return fail(Errc::Conflict, "copy " + from + ": file shrank while being copied");
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = ::write(out, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno("write", to);
      }
      done += w;
    }
    left -= n;
  }
  return {};
}

class TreeCopier {
 public:
  Result<void> run(const std::string& from, const std::string& to) {
    struct stat st;
    if (::lstat(from.c_str(), &st) != 0) {
      return fail_errno("stat", from);
    }
    if (!S_ISDIR(st.st_mode)) {
      return fail(Errc::InvalidArgument, "copy tree: " + from + " is not a directory");
    }
    BERTH_TRYV(dir(from, to));
    return metadata(from, to, st);
  }

 private:
  Result<void> metadata(const std::string& from, const std::string& to, const struct stat& st) {
    if (::lchown(to.c_str(), st.st_uid, st.st_gid) != 0) {
      return fail(Error::from_errno("chown", to, errno).hint("copying a layer needs CAP_CHOWN"));
    }
    if (!S_ISLNK(st.st_mode) && ::chmod(to.c_str(), st.st_mode & 07777) != 0) {
      return fail_errno("chmod", to);
    }
    BERTH_TRY(auto xattrs, read_xattrs(from));
    for (const auto& [name, value] : xattrs) {
      if (::lsetxattr(to.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
        if (errno == ENOTSUP && !name.starts_with("security.") && !name.starts_with("trusted.")) {
          continue;
        }
        return fail_errno("set xattr " + name + " on", to);
      }
    }
    const timespec ts[2] = {st.st_atim, st.st_mtim};
    if (::utimensat(AT_FDCWD, to.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno("set times of", to);
    }
    return {};
  }

  Result<void> dir(const std::string& from, const std::string& to) {
    BERTH_TRY(auto names, list_dir(from));
    for (const auto& n : names) {
      std::string src = from + "/" + n;
      std::string dst = to + "/" + n;
      struct stat st;
      if (::lstat(src.c_str(), &st) != 0) {
        return fail_errno("stat", src);
      }
      if (!S_ISDIR(st.st_mode) && st.st_nlink > 1) {
        auto it = links_.find(DevIno{st.st_dev, st.st_ino});
        if (it != links_.end()) {
          if (::link(it->second.c_str(), dst.c_str()) != 0) {
            return fail_errno("hard link " + dst + " to", it->second);
          }
          continue;
        }
        links_.emplace(DevIno{st.st_dev, st.st_ino}, dst);
      }
      if (S_ISDIR(st.st_mode)) {
        if (::mkdir(dst.c_str(), 0700) != 0 && errno != EEXIST) {
          return fail_errno("create directory", dst);
        }
        BERTH_TRYV(dir(src, dst));
      } else if (S_ISREG(st.st_mode)) {
        UniqueFd in(::open(src.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!in) {
          return fail_errno("open", src);
        }
        UniqueFd out(
            ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out) {
          return fail_errno("create file", dst);
        }
        if (st.st_size > 0) {
          BERTH_TRYV(copy_data(src, in.get(), dst, out.get(), st.st_size));
        }
      } else if (S_ISLNK(st.st_mode)) {
        std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
        ssize_t len = ::readlink(src.c_str(), target.data(), target.size());
        if (len < 0) {
          return fail_errno("read symlink", src);
        }
        target.resize(static_cast<size_t>(len));
        if (::symlink(target.c_str(), dst.c_str()) != 0) {
          return fail_errno("create symlink", dst);
        }
      } else {
        if (::mknod(dst.c_str(), (st.st_mode & S_IFMT) | 0600, st.st_rdev) != 0) {
          return fail(Error::from_errno("create device node", dst, errno)
                          .hint("copying device nodes needs CAP_MKNOD"));
        }
      }
      BERTH_TRYV(metadata(src, dst, st));
    }
    return {};
  }

  std::map<DevIno, std::string> links_;
};

// ---------------------------------------------------------------------------------------------
// tree_usage

struct DevInoHash {
  size_t operator()(const DevIno& d) const {
    return std::hash<uint64_t>()(static_cast<uint64_t>(d.ino) * 1000003u ^ d.dev);
  }
};
struct DevInoEq {
  bool operator()(const DevIno& a, const DevIno& b) const {
    return a.dev == b.dev && a.ino == b.ino;
  }
};

Result<void> usage_dir(int dfd, const std::string& shown, LayerUsage& u,
                       std::unordered_set<DevIno, DevInoHash, DevInoEq>& seen) {
  DIR* d = ::fdopendir(dfd);
  if (d == nullptr) {
    int err = errno;
    ::close(dfd);
    return fail_errno("read directory", shown, err);
  }
  std::unique_ptr<DIR, int (*)(DIR*)> guard(d, ::closedir);
  errno = 0;
  while (dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n == "." || n == "..") {
      continue;
    }
    struct stat st;
    if (::fstatat(::dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno("stat", shown + "/" + std::string(n));
    }
    if (st.st_nlink > 1 && !S_ISDIR(st.st_mode)) {
      if (!seen.insert(DevIno{st.st_dev, st.st_ino}).second) {
        continue;
      }
    }
    ++u.inodes;
    if (S_ISREG(st.st_mode)) {
      u.bytes += static_cast<uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      int sub = ::openat(::dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      std::string sshown = shown + "/" + std::string(n);
      if (sub < 0) {
        return fail_errno("open directory", sshown);
      }
      BERTH_TRYV(usage_dir(sub, sshown, u, seen));
    }
    errno = 0;
  }
  if (errno != 0) {
    return fail_errno("read directory", shown);
  }
  return {};
}

}  // namespace

Result<void> write_tree_tar(const std::filesystem::path& dir, int out_fd,
                            WhiteoutFormat whiteouts) {
  TreeTarOptions opts;
  opts.whiteouts = whiteouts;
  return write_tree_tar(dir, out_fd, opts);
}

Result<void> write_tree_tar(const std::filesystem::path& dir, int out_fd,
                            const TreeTarOptions& opts) {
  TreeWriter w(dir.string(), opts);
  return w.run(out_fd);
}

Result<void> copy_tree(const std::filesystem::path& from, const std::filesystem::path& to) {
  TreeCopier c;
  return c.run(from.string(), to.string());
}

Result<LayerUsage> tree_usage(const std::filesystem::path& dir) {
  LayerUsage u;
  std::unordered_set<DevIno, DevInoHash, DevInoEq> seen;
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return fail_errno("open directory", dir.string());
  }
  u.inodes = 1;  // the root directory itself
  BERTH_TRYV(usage_dir(fd, dir.string(), u, seen));
  return u;
}

}  // namespace berth::sdk
