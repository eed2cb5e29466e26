#include "vfs_driver.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

#include "berth/sdk/layer_archive.hpp"
#include "berth/sdk/staging_dir.hpp"

namespace berth::storage_vfs {

namespace fs = std::filesystem;
using sdk::Change;

namespace {

// Layer ids become directory names: refuse anything that could name another path.
Result<void> check_id(const std::string& id) {
  if (id.empty() || id.size() > 128 || id == "." || id == ".." || id.front() == '.' ||
      id.find('/') != std::string::npos || id.find('\0') != std::string::npos) {
    return fail(Errc::InvalidArgument, "vfs: invalid layer id '" + id +
                                           "' (1-128 characters, no '/', not starting "
                                           "with '.')");
  }
  return {};
}

Result<void> make_dir(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) {
    return fail_errno("vfs: create directory", p.string(), ec.value());
  }
  return {};
}

Result<void> remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  if (ec) {
    return fail_errno("vfs: remove", p.string(), ec.value());
  }
  return {};
}

Result<void> write_all(int fd, const char* data, size_t len, const fs::path& what) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      return fail_errno("vfs: write", what.string());
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return {};
}

// Writes `content` beside `p`, fsyncs and renames it into place.
Result<void> write_atomic(const fs::path& p, const std::string& content) {
  std::string tmp = p.string() + ".tmp-XXXXXX";
  UniqueFd fd(::mkostemp(tmp.data(), O_CLOEXEC));
  if (!fd) {
    return fail_errno("vfs: create", tmp);
  }
  auto w = write_all(fd.get(), content.data(), content.size(), tmp);
  if (w && ::fsync(fd.get()) != 0) {
    w = fail_errno("vfs: fsync", tmp);
  }
  if (w && ::rename(tmp.c_str(), p.c_str()) != 0) {
    w = fail_errno("vfs: rename " + tmp + " to", p.string());
  }
  if (!w) {
    ::unlink(tmp.c_str());
  }
  return w;
}

// Staging directories come from the SDK (berth/sdk/staging_dir.hpp).
Result<std::unique_ptr<sdk::StagingDir>> make_staging(const fs::path& home,
                                                      const std::string& what) {
  return sdk::make_staging(home / "staging", what, "vfs");
}

void clean_staging(const fs::path& home) { sdk::clean_staging(home / "staging"); }

struct Entry {
  struct stat st {};
  std::string link;  // symlink target
};
using TreeMap = std::map<std::string, Entry>;

// Every path under `root` ("" excluded) with its lstat, keyed relative ("etc/hosts").
Result<TreeMap> scan(const fs::path& root) {
  TreeMap out;
  std::error_code ec;
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    Entry e;
    if (::lstat(it->path().c_str(), &e.st) != 0) {
      return fail_errno("vfs: stat", it->path().string());
    }
    if (S_ISLNK(e.st.st_mode)) {
      e.link = fs::read_symlink(it->path(), ec).string();
      if (ec) {
        break;
      }
    }
    out.emplace(it->path().lexically_relative(root).string(), std::move(e));
  }
  if (ec) {
    return fail_errno("vfs: walk", root.string(), ec.value());
  }
  return out;
}

bool same_entry(const Entry& a, const Entry& b) {
  const auto& x = a.st;
  const auto& y = b.st;
  if (x.st_mode != y.st_mode || x.st_uid != y.st_uid || x.st_gid != y.st_gid ||
      x.st_rdev != y.st_rdev || a.link != b.link) {
    return false;
  }
  if (S_ISDIR(x.st_mode)) {
    return x.st_mtim.tv_sec == y.st_mtim.tv_sec && x.st_mtim.tv_nsec == y.st_mtim.tv_nsec;
  }
  return x.st_size == y.st_size && x.st_mtim.tv_sec == y.st_mtim.tv_sec &&
         x.st_mtim.tv_nsec == y.st_mtim.tv_nsec;
}

// Relative-path changes of `layer` against `base`; a deleted directory is listed alone.
Result<std::vector<std::pair<std::string, Change::Kind>>> compare(const fs::path& base,
                                                                  const fs::path& layer) {
  BERTH_TRY(TreeMap old_tree, scan(base));
  BERTH_TRY(TreeMap new_tree, scan(layer));
  std::vector<std::pair<std::string, Change::Kind>> out;
  for (const auto& [path, e] : new_tree) {
    auto it = old_tree.find(path);
    if (it == old_tree.end()) {
      out.emplace_back(path, Change::Kind::Added);
    } else if (!same_entry(it->second, e)) {
      out.emplace_back(path, Change::Kind::Modified);
    }
  }
  std::string deleted_dir;
  for (const auto& [path, e] : old_tree) {
    if (!deleted_dir.empty() && path.starts_with(deleted_dir)) {
      continue;
    }
    if (new_tree.count(path) == 0) {
      out.emplace_back(path, Change::Kind::Deleted);
      deleted_dir = S_ISDIR(e.st.st_mode) ? path + "/" : "";
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct ArchiveDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct DiskDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

}  // namespace

Result<sdk::StorageDriverPtr> VfsDriver::make(const sdk::PluginContext& ctx) {
  if (ctx.home.empty() || ctx.run_root.empty()) {
    return fail(Errc::InvalidArgument,
                "vfs: the driver needs a home and a run root (graphroot and runroot)");
  }
  BERTH_TRY(auto counter, sdk::MountCounter::open(fs::path(ctx.run_root) / "vfs-mounts", "vfs"));
  auto d = std::unique_ptr<VfsDriver>(new VfsDriver(ctx.home, std::move(counter)));
  for (const fs::path& p : {d->home_ / "dir", d->home_ / "parents", d->home_ / "staging"}) {
    BERTH_TRYV(make_dir(p));
  }
  clean_staging(d->home_);
  return d;
}

sdk::ProbeResult VfsDriver::probe() {
  return {true, "copies every layer; works on any filesystem, slow, uses the most disk"};
}

std::vector<std::pair<std::string, std::string>> VfsDriver::status() {
  return {{"Backing Filesystem", "any (full copies)"},
          {"Native Overlay Diff", "false"},
          {"Layer Directory", (home_ / "dir").string()}};
}

bool VfsDriver::exists(const std::string& id) {
  if (!check_id(id)) {
    return false;
  }
  struct stat st {};
  return ::lstat(layer_dir(id).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Result<void> VfsDriver::require(const std::string& id) {
  BERTH_TRYV(check_id(id));
  if (!exists(id)) {
    return fail(Errc::NotFound, "vfs: layer " + id + " not found in " + (home_ / "dir").string());
  }
  return {};
}

Result<void> VfsDriver::create(const std::string& id, const std::string& parent,
                               const sdk::CreateOptions& opts) {
  BERTH_TRYV(check_id(id));
  if (!opts.storage_opts.empty()) {
    return fail(Errc::InvalidArgument, "vfs: create layer " + id + ": storage option '" +
                                           opts.storage_opts.begin()->first +
                                           "' is not supported by the vfs driver");
  }
  if (exists(id)) {
    return fail(Errc::AlreadyExists, "vfs: layer " + id + " already exists");
  }
  if (!parent.empty()) {
    auto r = require(parent);
    if (!r) {
      return fail(std::move(r).error().wrap("vfs: create layer " + id + " on parent " + parent));
    }
  }
  BERTH_TRY(auto staging, make_staging(home_, id));
  if (parent.empty()) {
    if (::chmod(staging->path().c_str(), 0755) != 0) {
      return fail_errno("vfs: chmod", staging->path().string());
    }
  } else {
    auto copied = sdk::copy_tree(layer_dir(parent), staging->path());
    if (!copied) {
      return fail(
          std::move(copied).error().wrap("vfs: copy parent " + parent + " into layer " + id));
    }
    struct stat st {};
    if (::lstat(layer_dir(parent).c_str(), &st) != 0) {
      return fail_errno("vfs: stat", layer_dir(parent).string());
    }
    if (::chmod(staging->path().c_str(), st.st_mode & 07777) != 0) {
      return fail_errno("vfs: chmod", staging->path().string());
    }
    if (::lchown(staging->path().c_str(), st.st_uid, st.st_gid) != 0) {
      return fail_errno("vfs: chown", staging->path().string());
    }
  }
  // NOREPLACE makes a concurrent create of the same id lose cleanly. The parent record is only
  // informational (the core passes the parent to diff and changes), so it may follow.
  if (::renameat2(AT_FDCWD, staging->path().c_str(), AT_FDCWD, layer_dir(id).c_str(),
                  RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST || errno == ENOTEMPTY) {
      return fail(Errc::AlreadyExists, "vfs: layer " + id + " already exists");
    }
    return fail_errno("vfs: rename " + staging->path().string() + " to", layer_dir(id).string());
  }
  staging->release();
  auto recorded = write_atomic(parent_file(id), parent);
  if (!recorded) {
    std::error_code ec;
    fs::remove_all(layer_dir(id), ec);
    return fail(std::move(recorded).error().wrap("vfs: create layer " + id));
  }
  return {};
}

Result<void> VfsDriver::remove(const std::string& id) {
  BERTH_TRYV(check_id(id));
  if (exists(id)) {
    // Under the mount-count lock, so that no mount slips in between the check and the rename.
    BERTH_TRY(auto lock, counter_.lock(id));
    const long mounts = lock.value();
    if (mounts > 0) {
      return fail(Errc::Busy, "vfs: layer " + id + " is mounted " + std::to_string(mounts) +
                                  " time(s); unmount it (stop its containers) before removing");
    }
    // Rename first so the layer vanishes at once, then delete at leisure.
    BERTH_TRY(auto trash, make_staging(home_, id + "-removing"));
    const fs::path target = trash->path() / "layer";
    if (::rename(layer_dir(id).c_str(), target.c_str()) != 0 && errno != ENOENT) {
      return fail_errno("vfs: move layer " + id + " to", target.string());
    }
    // A mount waiting for the lock finds the layer gone and reports NotFound.
    BERTH_TRYV(lock.remove());
    lock.unlock();
    BERTH_TRYV(remove_tree(trash->path()));
    trash->release();
  }
  if (::unlink(parent_file(id).c_str()) != 0 && errno != ENOENT) {
    return fail_errno("vfs: remove", parent_file(id).string());
  }
  return {};
}

Result<long> VfsDriver::add_mounts(const std::string& id, long delta) {
  BERTH_TRYV(require(id));
  BERTH_TRY(auto lock, counter_.lock(id));
  BERTH_TRYV(require(id));  // again under the lock: a remove may have won the race
  BERTH_TRYV(lock.set(lock.value() + delta));
  return lock.value();
}

Result<std::string> VfsDriver::mount(const std::string& id, const sdk::MountOptions& /*opts*/) {
  BERTH_TRYV(add_mounts(id, 1));
  return layer_dir(id).string();
}

Result<void> VfsDriver::unmount(const std::string& id) {
  BERTH_TRYV(add_mounts(id, -1));
  return {};
}

Result<std::string> VfsDriver::layer_path(const std::string& id) {
  BERTH_TRYV(require(id));
  return layer_dir(id).string();
}

Result<uint64_t> VfsDriver::apply_diff(const std::string& id, int tar_fd,
                                       const sdk::ApplyOptions& opts) {
  BERTH_TRYV(require(id));
  sdk::ExtractOptions x;
  x.whiteouts = sdk::WhiteoutFormat::Delete;
  x.allow_devices = opts.allow_devices;
  x.uid_shift = opts.uid_shift;
  x.gid_shift = opts.gid_shift;
  auto stats = sdk::extract_layer(tar_fd, layer_dir(id), x);
  if (!stats) {
    return fail(std::move(stats).error().wrap("vfs: apply diff to layer " + id));
  }
  return stats->bytes;
}

Result<sdk::LayerUsage> VfsDriver::usage(const std::string& id) {
  BERTH_TRYV(require(id));
  auto u = sdk::tree_usage(layer_dir(id));
  if (!u) {
    return fail(std::move(u).error().wrap("vfs: usage of layer " + id));
  }
  return *u;
}

Result<fs::path> VfsDriver::base_of(const std::string& id, const std::string& parent) {
  BERTH_TRYV(require(id));
  if (parent.empty()) {
    return fs::path();
  }
  auto r = require(parent);
  if (!r) {
    return fail(std::move(r).error().wrap("vfs: compare layer " + id + " with its parent"));
  }
  return layer_dir(parent);
}

Result<std::vector<Change>> VfsDriver::changes(const std::string& id, const std::string& parent) {
  BERTH_TRY(fs::path base, base_of(id, parent));
  BERTH_TRY(auto staging, make_staging(home_, "empty"));
  BERTH_TRY(auto diffs, compare(base.empty() ? staging->path() : base, layer_dir(id)));
  std::vector<Change> out;
  out.reserve(diffs.size());
  for (auto& [path, kind] : diffs) {
    out.push_back(Change{"/" + path, kind});
  }
  return out;
}

Result<UniqueFd> VfsDriver::diff(const std::string& id, const std::string& parent) {
  BERTH_TRY(fs::path base, base_of(id, parent));
  BERTH_TRY(auto empty, make_staging(home_, "empty"));
  const fs::path layer = layer_dir(id);
  BERTH_TRY(auto diffs, compare(base.empty() ? empty->path() : base, layer));

  // An unnamed file in the store: diffs can be as large as the layer.
  UniqueFd out(::open((home_ / "staging").c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
  if (!out) {
    return fail_errno("vfs: create diff file in", (home_ / "staging").string());
  }
  std::unique_ptr<archive, ArchiveDeleter> w(archive_write_new());
  std::unique_ptr<archive, DiskDeleter> disk(archive_read_disk_new());
  if (!w || !disk) {
    return fail(Errc::Internal, "vfs: diff layer " + id + ": out of memory");
  }
  const auto lib_error = [&](archive* a, const std::string& what) {
    return fail(Errc::Internal, "vfs: diff layer " + id + ": " + what + ": " +
                                    (archive_error_string(a) ? archive_error_string(a) : "?"));
  };
  if (archive_write_set_format_pax_restricted(w.get()) != ARCHIVE_OK ||
      archive_write_open_fd(w.get(), out.get()) != ARCHIVE_OK) {
    return lib_error(w.get(), "open tar writer");
  }
  archive_read_disk_set_symlink_physical(disk.get());
  std::map<std::pair<dev_t, ino_t>, std::string> links;
  for (const auto& [path, kind] : diffs) {
    std::unique_ptr<archive_entry, EntryDeleter> e(archive_entry_new());
    if (kind == Change::Kind::Deleted) {
      const fs::path rel(path);
      const fs::path wh = rel.parent_path() / (".wh." + rel.filename().string());
      archive_entry_set_pathname(e.get(), wh.c_str());
      archive_entry_set_filetype(e.get(), AE_IFREG);
      archive_entry_set_perm(e.get(), 0644);
      archive_entry_set_size(e.get(), 0);
      if (archive_write_header(w.get(), e.get()) != ARCHIVE_OK) {
        return lib_error(w.get(), "write " + wh.string());
      }
      continue;
    }
    const fs::path full = layer / path;
    struct stat st {};
    if (::lstat(full.c_str(), &st) != 0) {
      return fail_errno("vfs: stat", full.string());
    }
    archive_entry_copy_sourcepath(e.get(), full.c_str());
    if (archive_read_disk_entry_from_file(disk.get(), e.get(), -1, &st) != ARCHIVE_OK) {
      return lib_error(disk.get(), "read " + full.string());
    }
    archive_entry_set_pathname(e.get(), path.c_str());
    const bool regular = S_ISREG(st.st_mode);
    if (regular && st.st_nlink > 1) {
      auto [it, first] = links.try_emplace({st.st_dev, st.st_ino}, path);
      if (!first) {
        archive_entry_set_hardlink(e.get(), it->second.c_str());
        archive_entry_set_size(e.get(), 0);
      }
    }
    if (archive_write_header(w.get(), e.get()) != ARCHIVE_OK) {
      return lib_error(w.get(), "write " + path);
    }
    if (regular && archive_entry_size(e.get()) > 0) {
      UniqueFd in(::open(full.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
      if (!in) {
        return fail_errno("vfs: open", full.string());
      }
      char buf[65536];
      for (;;) {
        ssize_t n = ::read(in.get(), buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
          continue;
        }
        if (n < 0) {
          return fail_errno("vfs: read", full.string());
        }
        if (n == 0) {
          break;
        }
        if (archive_write_data(w.get(), buf, static_cast<size_t>(n)) != n) {
          return lib_error(w.get(), "write " + path);
        }
      }
    }
  }
  if (archive_write_close(w.get()) != ARCHIVE_OK) {
    return lib_error(w.get(), "finish tar");
  }
  if (::lseek(out.get(), 0, SEEK_SET) != 0) {
    return fail_errno("vfs: seek diff of layer", id);
  }
  return out;
}

}  // namespace berth::storage_vfs
