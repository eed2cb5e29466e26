// Layer extraction: a tar stream (plain, gzip, zstd, ...) written into a layer directory without
// ever touching anything outside it.
//
// Path policy (decided here, tested in tests/unit/archive):
// - Entry names are cleaned lexically: "./" prefixes, empty and "." components are dropped and
//   ".." pops a component. A name whose ".." climbs above the layer root is refused. Unlike
//   containers/storage, which re-roots "/x" under the layer, an absolute name is refused outright:
//   layer tars written by container tools never carry one, so one here means a hand-made or
//   hostile archive, and the API promises to refuse it.
// - Every parent directory is opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//   RESOLVE_NO_MAGICLINKS) from the layer root; the last component is created with *at() calls
//   that never follow it (O_NOFOLLOW | O_EXCL, mkdirat, symlinkat, linkat without FOLLOW,
//   mknodat). A symlink planted earlier (in this archive or already in dest) therefore can never
//   redirect a write.
// - Hard link targets follow the same rules as entry names. Relative symlink targets may not
//   climb above the layer root when resolved lexically from the entry's directory; absolute
//   symlink targets are kept (they resolve against the container root at run time).
// - Overlay metadata xattrs (trusted.overlay.*, user.overlay.*) in the archive are never restored:
//   only whiteout entries may create them, so a layer cannot plant redirects or metacopy markers.
#include "berth/sdk/layer_archive.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <isa-l/igzip_lib.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "berth/sdk/unique_fd.hpp"

namespace berth::sdk {
namespace {

constexpr size_t kReadBlockSize = 1024 * 1024;
// Files at least this big start their writeback as soon as they are written (make_file).
constexpr la_int64_t kEarlyWritebackBytes = 256 * 1024;
constexpr std::string_view kWhiteoutPrefix = ".wh.";
constexpr std::string_view kWhiteoutMetaPrefix = ".wh..wh.";
constexpr std::string_view kOpaqueMarker = ".wh..wh..opq";
constexpr const char* kTrustedOpaque = "trusted.overlay.opaque";
constexpr const char* kUserOpaque = "user.overlay.opaque";

struct ArchiveReadDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchiveReadPtr = std::unique_ptr<archive, ArchiveReadDeleter>;

int sys_openat2(int dirfd, const char* path, uint64_t flags, uint64_t resolve) {
  open_how how{};
  how.flags = flags;
  how.resolve = resolve;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

constexpr uint64_t kResolveSafe = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

std::string proc_fd_path(int fd, std::string_view name = {}) {
  std::string p = "/proc/self/fd/" + std::to_string(fd);
  if (!name.empty()) {
    p += '/';
    p += name;
  }
  return p;
}

// Splits a tar name into cleaned components. Returns false when ".." climbs above the root.
bool clean_components(std::string_view name, std::vector<std::string_view>& out) {
  out.clear();
  size_t pos = 0;
  while (pos <= name.size()) {
    size_t slash = name.find('/', pos);
    if (slash == std::string_view::npos) {
      slash = name.size();
    }
    std::string_view comp = name.substr(pos, slash - pos);
    pos = slash + 1;
    if (comp.empty() || comp == ".") {
      continue;
    }
    if (comp == "..") {
      if (out.empty()) {
        return false;
      }
      out.pop_back();
      continue;
    }
    out.push_back(comp);
  }
  return true;
}

std::string join(const std::vector<std::string_view>& comps, size_t count) {
  std::string s;
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) {
      s += '/';
    }
    s += comps[i];
  }
  return s;
}

// Removes `name` under `dirfd`, recursively when it is a directory. ENOENT is success.
Result<void> remove_at(int dirfd, const std::string& name, const std::string& shown) {
  if (::unlinkat(dirfd, name.c_str(), 0) == 0 || errno == ENOENT) {
    return {};
  }
  if (errno != EISDIR && errno != EPERM) {
    return fail_errno("remove", shown);
  }
  UniqueFd sub(::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!sub) {
    return fail_errno("open directory to remove", shown);
  }
  DIR* d = ::fdopendir(sub.get());
  if (d == nullptr) {
    return fail_errno("read directory", shown);
  }
  sub.release();
  std::unique_ptr<DIR, int (*)(DIR*)> dir(d, ::closedir);
  std::vector<std::string> children;
  errno = 0;
  while (dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") {
      children.emplace_back(n);
    }
  }
  for (const auto& c : children) {
    BERTH_TRYV(remove_at(::dirfd(d), c, shown + "/" + c));
  }
  if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return fail_errno("remove directory", shown);
  }
  return {};
}

// ISA-L's igzip inflates layers about 3.5x faster than zlib. It is resolved at run time so the
// SDK support library adds no link dependency for drivers; without it libarchive's zlib filter
// does the work.
struct IsalApi {
  void (*init)(inflate_state*) = nullptr;
  void (*reset)(inflate_state*) = nullptr;
  int (*inflate)(inflate_state*) = nullptr;
};

const IsalApi* isal_api() {
  static const IsalApi* api = []() -> const IsalApi* {
    if (::getenv("BERTH_NO_ISAL") != nullptr) {
      return nullptr;
    }
    void* h = ::dlopen("libisal.so.2", RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      return nullptr;
    }
    static IsalApi a;
    a.init = reinterpret_cast<void (*)(inflate_state*)>(::dlsym(h, "isal_inflate_init"));
    a.reset = reinterpret_cast<void (*)(inflate_state*)>(::dlsym(h, "isal_inflate_reset"));
    a.inflate = reinterpret_cast<int (*)(inflate_state*)>(::dlsym(h, "isal_inflate"));
    if (a.init == nullptr || a.reset == nullptr || a.inflate == nullptr) {
      return nullptr;
    }
    return &a;
  }();
  return api;
}

// The layer stream as libarchive reads it: gzip is inflated here with ISA-L when available,
// anything else (plain, zstd, xz, or gzip without ISA-L) is handed through for libarchive's
// own filters.
class LayerSource {
 public:
  explicit LayerSource(int fd) : fd_(fd), in_(kReadBlockSize) {}

  // Reads the first bytes to recognise gzip.
  Result<void> start() {
    size_t have = 0;
    while (have < 2) {
      ssize_t n = ::read(fd_, in_.data() + have, in_.size() - have);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno("read", "layer stream");
      }
      if (n == 0) {
        in_eof_ = true;
        break;
      }
      have += static_cast<size_t>(n);
    }
    pending_ = have;
    const IsalApi* api = isal_api();
    if (api != nullptr && have >= 2 && in_[0] == 0x1f && in_[1] == 0x8b) {
      api_ = api;
      st_ = std::make_unique<inflate_state>();
      api_->init(st_.get());
      st_->crc_flag = ISAL_GZIP;
      st_->next_in = in_.data();
      st_->avail_in = static_cast<uint32_t>(have);
      pending_ = 0;
      out_.resize(kReadBlockSize);
    }
    return {};
  }

  static la_ssize_t read_cb(archive* a, void* self, const void** buf) {
    auto* src = static_cast<LayerSource*>(self);
    return src->api_ != nullptr ? src->inflate(a, buf) : src->pass(a, buf);
  }

 private:
  // Refills the input buffer; false on a read error (reported to libarchive).
  bool fill(archive* a, size_t* got) {
    for (;;) {
      ssize_t n = ::read(fd_, in_.data(), in_.size());
      if (n >= 0) {
        in_eof_ = n == 0;
        *got = static_cast<size_t>(n);
        return true;
      }
      if (errno != EINTR) {
        archive_set_error(a, errno, "read layer stream: %s", std::strerror(errno));
        return false;
      }
    }
  }

  la_ssize_t pass(archive* a, const void** buf) {
    *buf = in_.data();
    if (pending_ > 0) {
      return static_cast<la_ssize_t>(std::exchange(pending_, 0));
    }
    size_t got = 0;
    if (in_eof_) {
      return 0;
    }
    if (!fill(a, &got)) {
      return -1;
    }
    return static_cast<la_ssize_t>(got);
  }

  bool refill_inflate(archive* a) {
    size_t got = 0;
    if (!fill(a, &got)) {
      return false;
    }
    st_->next_in = in_.data();
    st_->avail_in = static_cast<uint32_t>(got);
    return true;
  }

  la_ssize_t inflate(archive* a, const void** buf) {
    for (;;) {
      if (st_->block_state == ISAL_BLOCK_FINISH) {
        // End of a gzip member; another may follow (concatenated gzip, as gzip -d accepts).
        if (st_->avail_in == 0 && !in_eof_ && !refill_inflate(a)) {
          return -1;
        }
        if (st_->avail_in == 0 || st_->next_in[0] != 0x1f) {
          return 0;  // end of stream (trailing padding is ignored, as gzip -d does)
        }
        uint8_t* next = st_->next_in;
        uint32_t avail = st_->avail_in;
        api_->reset(st_.get());
        st_->crc_flag = ISAL_GZIP;
        st_->next_in = next;
        st_->avail_in = avail;
      }
      if (st_->avail_in == 0 && !in_eof_ && !refill_inflate(a)) {
        return -1;
      }
      st_->next_out = out_.data();
      st_->avail_out = static_cast<uint32_t>(out_.size());
      int r = api_->inflate(st_.get());
      if (r < 0 || r == ISAL_NEED_DICT) {
        archive_set_error(a, EINVAL, "gzip stream is corrupt (isa-l inflate error %d)", r);
        return -1;
      }
      const size_t produced = out_.size() - st_->avail_out;
      if (produced > 0) {
        *buf = out_.data();
        return static_cast<la_ssize_t>(produced);
      }
      if (st_->block_state != ISAL_BLOCK_FINISH && st_->avail_in == 0 && in_eof_) {
        archive_set_error(a, EINVAL, "gzip stream is truncated");
        return -1;
      }
    }
  }

  int fd_;
  std::vector<uint8_t> in_;
  std::vector<uint8_t> out_;
  size_t pending_ = 0;
  bool in_eof_ = false;
  const IsalApi* api_ = nullptr;
  std::unique_ptr<inflate_state> st_;
};

struct DirTimes {
  std::string rel;
  timespec times[2];
};

class Extractor {
 public:
  Extractor(const std::filesystem::path& dest, const ExtractOptions& opts)
      : dest_(dest.string()), opts_(opts), is_root_(::geteuid() == 0) {}

  Result<ExtractStats> run(int tar_fd);

 private:
  Result<void> entry(archive* a, archive_entry* e);
  Result<int> open_parent(const std::vector<std::string_view>& comps, size_t count,
                          std::string_view entry_name);
  Result<void> make_dir(int pfd, const std::string& name, const std::string& rel, archive_entry* e);
  Result<void> make_file(archive* a, int pfd, const std::string& name, const std::string& rel,
                         archive_entry* e);
  Result<void> make_link(int pfd, const std::string& name, const std::string& rel,
                         archive_entry* e);
  Result<void> make_symlink(int pfd, const std::string& name, const std::string& rel, size_t depth,
                            archive_entry* e);
  Result<void> make_node(int pfd, const std::string& name, const std::string& rel,
                         archive_entry* e);
  Result<void> whiteout(int pfd, const std::string& parent_rel, std::string_view name,
                        std::string_view entry_name, archive_entry* e);
  Result<void> opaque_overlay(int pfd, const std::string& parent_rel);
  Result<void> apply_opaque_delete(const std::string& rel);
  Result<void> remove_existing(int pfd, const std::string& name, const std::string& rel);

  Result<void> chown_at(int fd, int pfd, const std::string& name, const std::string& rel,
                        archive_entry* e);
  Result<void> xattrs(int fd, int pfd, const std::string& name, const std::string& rel,
                      archive_entry* e);
  static void entry_times(archive_entry* e, timespec ts[2]);
  Error refuse(std::string_view entry_name, std::string_view why) const {
    return Error(Errc::InvalidArgument, "extract layer into " + dest_ + ": refusing entry \"" +
                                            std::string(entry_name) + "\": " + std::string(why));
  }
  std::string shown(const std::string& rel) const {
    return rel.empty() ? dest_ : dest_ + "/" + rel;
  }
  // Drops cached parents that are `rel` (about to be removed) or lie below it.
  void invalidate_cache_if_under(const std::string& rel) {
    for (auto& c : cache_) {
      if (c.fd && (c.rel == rel || (c.rel.starts_with(rel) && c.rel[rel.size()] == '/'))) {
        c.fd.reset();
        c.rel.clear();
      }
    }
  }
  void invalidate_cache() { cache_.clear(); }
  std::string dest_;
  ExtractOptions opts_;
  bool is_root_;
  UniqueFd root_;
  // Parent directories opened recently: layers are mostly sorted, but a few directories (/usr/lib,
  // /usr/share/doc, ...) are revisited between siblings' subtrees.
  struct CachedDir {
    std::string rel;
    UniqueFd fd;
    uint64_t used = 0;
  };
  static constexpr size_t kCachedDirs = 8;
  std::vector<CachedDir> cache_;
  uint64_t tick_ = 0;
  std::vector<std::string_view> comps_;
  std::vector<DirTimes> dir_times_;
  std::unordered_map<std::string, size_t> dir_index_;
  std::unordered_set<std::string> created_;
  std::vector<std::string> opaque_dirs_;
  ExtractStats stats_;
};

Result<ExtractStats> Extractor::run(int tar_fd) {
  root_.reset(::open(dest_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root_) {
    return fail_errno("open layer directory", dest_);
  }
  ArchiveReadPtr a(archive_read_new());
  if (!a) {
    return fail(Errc::Internal, "extract layer: archive_read_new: out of memory");
  }
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  LayerSource source(tar_fd);
  BERTH_TRYV(source.start());
  if (archive_read_open(a.get(), &source, nullptr, &LayerSource::read_cb, nullptr) != ARCHIVE_OK) {
    return fail(Errc::Corrupt, "extract layer into " + dest_ + ": cannot read the layer stream: " +
                                   archive_error_string(a.get()));
  }
  archive_entry* e = nullptr;
  for (;;) {
    int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(a.get());
      return fail(Errc::Corrupt, "extract layer into " + dest_ + ": bad tar stream after " +
                                     std::to_string(stats_.entries) +
                                     " entries: " + (msg ? msg : "unknown error"));
    }
    ++stats_.entries;
    BERTH_TRYV(entry(a.get(), e));
  }
  invalidate_cache();
  for (const auto& d : opaque_dirs_) {
    BERTH_TRYV(apply_opaque_delete(d));
  }
  // Later entries change directory mtimes: set them last.
  for (auto it = dir_times_.begin(); it != dir_times_.end(); ++it) {
    int fd = root_.get();
    UniqueFd owned;
    if (!it->rel.empty()) {
      owned.reset(sys_openat2(root_.get(), it->rel.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC,
                              kResolveSafe));
      if (!owned) {
        if (errno == ENOENT || errno == ENOTDIR) {
          continue;  // removed or replaced by a later entry
        }
        return fail_errno("open directory", shown(it->rel));
      }
      fd = owned.get();
    }
    if (::utimensat(fd, "", it->times, AT_EMPTY_PATH) != 0) {
      return fail_errno("set times of", shown(it->rel));
    }
  }
  return stats_;
}

Result<int> Extractor::open_parent(const std::vector<std::string_view>& comps, size_t count,
                                   std::string_view entry_name) {
  if (count == 0) {
    return root_.get();
  }
  std::string rel = join(comps, count);
  for (auto& c : cache_) {
    if (c.fd && c.rel == rel) {
      c.used = ++tick_;
      return c.fd.get();
    }
  }
  UniqueFd fd(
      sys_openat2(root_.get(), rel.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, kResolveSafe));
  if (!fd && errno == ENOENT) {
    // Parents missing from the archive are created 0755, as containers/storage does.
    UniqueFd step;
    int err = 0;
    for (size_t i = 0; i < count; ++i) {
      const int cur = step ? step.get() : root_.get();
      std::string c(comps[i]);
      if (::mkdirat(cur, c.c_str(), 0755) != 0 && errno != EEXIST) {
        return fail_errno("create parent directory", shown(join(comps, i + 1)));
      }
      UniqueFd next(sys_openat2(cur, c.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, kResolveSafe));
      if (!next) {
        err = errno;
        break;
      }
      created_.insert(join(comps, i + 1));
      step = std::move(next);
    }
    if (err == 0) {
      fd = std::move(step);
    } else {
      step.reset();
      errno = err;
    }
  }
  if (!fd) {
    int err = errno;
    if (err == ELOOP) {
      return std::unexpected(refuse(entry_name, "its parent \"" + rel + "\" is a symlink"));
    }
    if (err == EXDEV) {
      return std::unexpected(refuse(entry_name, "its parent \"" + rel + "\" is outside the layer"));
    }
    if (err == ENOTDIR) {
      return std::unexpected(refuse(entry_name, "its parent \"" + rel + "\" is not a directory"));
    }
    return fail_errno("open parent directory", shown(rel), err);
  }
  CachedDir* slot = nullptr;
  if (cache_.size() < kCachedDirs) {
    slot = &cache_.emplace_back();
  } else {
    slot =
        &*std::min_element(cache_.begin(), cache_.end(),
                           [](const CachedDir& a, const CachedDir& b) { return a.used < b.used; });
  }
  slot->rel = std::move(rel);
  slot->fd = std::move(fd);
  slot->used = ++tick_;
  return slot->fd.get();
}

Result<void> Extractor::entry(archive* a, archive_entry* e) {
  const char* raw = archive_entry_pathname(e);
  if (raw == nullptr) {
    return fail(Errc::Corrupt, "extract layer into " + dest_ + ": entry " +
                                   std::to_string(stats_.entries) + " has no name");
  }
  std::string_view entry_name = raw;
  if (!entry_name.empty() && entry_name.front() == '/') {
    return std::unexpected(refuse(entry_name, "absolute path"));
  }
  if (!clean_components(entry_name, comps_)) {
    return std::unexpected(refuse(entry_name, "\"..\" climbs out of the layer"));
  }
  const mode_t type = archive_entry_filetype(e);
  const char* hardlink = archive_entry_hardlink(e);

  if (comps_.empty()) {
    // "./": the layer root itself; only its metadata can be applied.
    if (hardlink == nullptr && type == AE_IFDIR) {
      return make_dir(root_.get(), ".", "", e);
    }
    return std::unexpected(refuse(entry_name, "the layer root can only be a directory"));
  }

  const size_t depth = comps_.size() - 1;
  std::string name(comps_.back());
  BERTH_TRY(int pfd, open_parent(comps_, depth, entry_name));
  std::string rel = join(comps_, comps_.size());

  if (name.starts_with(kWhiteoutPrefix)) {
    return whiteout(pfd, join(comps_, depth), name, entry_name, e);
  }
  created_.insert(rel);

  if (hardlink != nullptr) {
    return make_link(pfd, name, rel, e);
  }
  switch (type) {
    case AE_IFDIR:
      return make_dir(pfd, name, rel, e);
    case AE_IFREG:
      return make_file(a, pfd, name, rel, e);
    case AE_IFLNK:
      return make_symlink(pfd, name, rel, depth, e);
    case AE_IFCHR:
    case AE_IFBLK:
    case AE_IFIFO:
      return make_node(pfd, name, rel, e);
    default:
      return std::unexpected(refuse(entry_name, "unsupported entry type"));
  }
}

Result<void> Extractor::remove_existing(int pfd, const std::string& name, const std::string& rel) {
  invalidate_cache_if_under(rel);
  return remove_at(pfd, name, shown(rel));
}

void Extractor::entry_times(archive_entry* e, timespec ts[2]) {
  ts[1].tv_sec = archive_entry_mtime(e);
  ts[1].tv_nsec = archive_entry_mtime_nsec(e);
  if (archive_entry_atime_is_set(e)) {
    ts[0].tv_sec = archive_entry_atime(e);
    ts[0].tv_nsec = archive_entry_atime_nsec(e);
  } else {
    ts[0] = ts[1];
  }
}

Result<void> Extractor::chown_at(int fd, int pfd, const std::string& name, const std::string& rel,
                                 archive_entry* e) {
  if (!opts_.restore_ownership) {
    return {};
  }
  const uid_t uid = static_cast<uid_t>(archive_entry_uid(e)) + opts_.uid_shift;
  const gid_t gid = static_cast<gid_t>(archive_entry_gid(e)) + opts_.gid_shift;
  int r = fd >= 0 ? ::fchown(fd, uid, gid)
                  : ::fchownat(pfd, name.c_str(), uid, gid, AT_SYMLINK_NOFOLLOW);
  if (r != 0) {
    auto err = Error::from_errno("chown " + std::to_string(uid) + ":" + std::to_string(gid),
                                 shown(rel), errno);
    if (err.sys_errno() == EPERM || err.sys_errno() == EINVAL) {
      return fail(std::move(err).hint(
          "restoring ownership needs CAP_CHOWN and the ids mapped in this user namespace"));
    }
    return fail(std::move(err));
  }
  return {};
}

Result<void> Extractor::xattrs(int fd, int pfd, const std::string& name, const std::string& rel,
                               archive_entry* e) {
  if (archive_entry_xattr_reset(e) == 0) {
    return {};
  }
  const char* xname = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  std::string via;
  while (archive_entry_xattr_next(e, &xname, &value, &size) == ARCHIVE_OK) {
    std::string_view n = xname;
    const bool security = n.starts_with("security.");
    const bool trusted = n.starts_with("trusted.");
    if (n.starts_with("trusted.overlay.") || n.starts_with("user.overlay.")) {
      continue;  // overlay metadata only ever comes from whiteout entries
    }
    if (!security && !trusted && !n.starts_with("user.")) {
      continue;  // system.* (ACLs) and unknown namespaces are not restored
    }
    if (trusted && !is_root_) {
      continue;  // needs CAP_SYS_ADMIN
    }
    int r;
    if (fd >= 0) {
      r = ::fsetxattr(fd, xname, value, size, 0);
    } else {
      if (via.empty()) {
        via = proc_fd_path(pfd, name);
      }
      r = ::lsetxattr(via.c_str(), xname, value, size, 0);
    }
    if (r != 0) {
      int err = errno;
      if (!security && (err == ENOTSUP || err == EPERM)) {
        continue;  // user.* on a symlink or filesystem without user xattrs: nothing to keep
      }
      return fail(Error::from_errno(std::string("set xattr ") + xname + " on", shown(rel), err)
                      .hint("the layer filesystem must support extended attributes"));
    }
  }
  return {};
}

Result<void> Extractor::make_dir(int pfd, const std::string& name, const std::string& rel,
                                 archive_entry* e) {
  const mode_t mode = archive_entry_perm(e);
  if (name != "." && ::mkdirat(pfd, name.c_str(), 0700) != 0) {
    if (errno != EEXIST) {
      return fail_errno("create directory", shown(rel));
    }
    struct stat st;
    if (::fstatat(pfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno("stat", shown(rel));
    }
    if (!S_ISDIR(st.st_mode)) {
      BERTH_TRYV(remove_existing(pfd, name, rel));
      if (::mkdirat(pfd, name.c_str(), 0700) != 0) {
        return fail_errno("create directory", shown(rel));
      }
    }
  }
  BERTH_TRYV(chown_at(-1, pfd, name, rel, e));
  if (::fchmodat(pfd, name.c_str(), mode, 0) != 0) {
    return fail_errno("chmod", shown(rel));
  }
  BERTH_TRYV(xattrs(-1, pfd, name, rel, e));
  // A directory declared twice keeps the times of its last declaration.
  auto [it, inserted] = dir_index_.try_emplace(rel, dir_times_.size());
  if (inserted) {
    dir_times_.push_back(DirTimes{rel, {}});
  }
  entry_times(e, dir_times_[it->second].times);
  return {};
}

Result<void> Extractor::make_file(archive* a, int pfd, const std::string& name,
                                  const std::string& rel, archive_entry* e) {
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
  UniqueFd fd(::openat(pfd, name.c_str(), kFlags, 0600));
  if (!fd && errno == EEXIST) {
    BERTH_TRYV(remove_existing(pfd, name, rel));
    fd.reset(::openat(pfd, name.c_str(), kFlags, 0600));
  }
  if (!fd) {
    return fail_errno("create file", shown(rel));
  }
  const void* buf = nullptr;
  size_t size = 0;
  la_int64_t offset = 0;
  la_int64_t end = 0;
  for (;;) {
    int r = archive_read_data_block(a, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) {
      break;
    }
    if (r < ARCHIVE_WARN) {
      const char* msg = archive_error_string(a);
      return fail(Errc::Corrupt, "extract layer into " + dest_ + ": read content of \"" + rel +
                                     "\": " + (msg ? msg : "unknown error"));
    }
    const char* p = static_cast<const char*>(buf);
    size_t left = size;
    off_t at = offset;
    while (left > 0) {
      ssize_t w = ::pwrite(fd.get(), p, left, at);
      if (w < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno("write", shown(rel));
      }
      p += w;
      left -= static_cast<size_t>(w);
      at += w;
    }
    end = offset + static_cast<la_int64_t>(size);
    stats_.bytes += size;
  }
  const la_int64_t want = archive_entry_size(e);
  if (want > end && ::ftruncate(fd.get(), want) != 0) {
    return fail_errno("truncate", shown(rel));
  }
  if (end >= kEarlyWritebackBytes) {
    // Start writing a big file out now, while the rest of the layer is inflated, so the layer's
    // one sync at the end (syncfs) finds little of ours left to write. Advice only: a file
    // system that does not take it (EINVAL, ENOSYS) is synced at the end all the same.
    (void)::sync_file_range(fd.get(), 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  BERTH_TRYV(chown_at(fd.get(), pfd, name, rel, e));
  if (::fchmod(fd.get(), archive_entry_perm(e)) != 0) {
    return fail_errno("chmod", shown(rel));
  }
  BERTH_TRYV(xattrs(fd.get(), pfd, name, rel, e));
  timespec ts[2];
  entry_times(e, ts);
  if (::futimens(fd.get(), ts) != 0) {
    return fail_errno("set times of", shown(rel));
  }
  return {};
}

Result<void> Extractor::make_link(int pfd, const std::string& name, const std::string& rel,
                                  archive_entry* e) {
  std::string_view target = archive_entry_hardlink(e);
  if (!target.empty() && target.front() == '/') {
    return std::unexpected(
        refuse(rel, "hard link to the absolute path \"" + std::string(target) + "\""));
  }
  std::vector<std::string_view> tcomps;
  if (!clean_components(target, tcomps) || tcomps.empty()) {
    return std::unexpected(
        refuse(rel, "hard link target \"" + std::string(target) + "\" is outside the layer"));
  }
  std::string trel = join(tcomps, tcomps.size() - 1);
  UniqueFd tfd;
  int tdir = root_.get();
  if (!trel.empty()) {
    tfd.reset(
        sys_openat2(root_.get(), trel.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC, kResolveSafe));
    if (!tfd) {
      if (errno == ELOOP || errno == EXDEV) {
        return std::unexpected(
            refuse(rel, "hard link target \"" + std::string(target) + "\" goes through a symlink"));
      }
      return fail_errno("open directory of hard link target", shown(trel));
    }
    tdir = tfd.get();
  }
  std::string tname(tcomps.back());
  if (::linkat(tdir, tname.c_str(), pfd, name.c_str(), 0) != 0) {
    if (errno != EEXIST) {
      return fail_errno("hard link " + shown(rel) + " to", std::string(target));
    }
    // Linking an entry onto itself (re-declared link) leaves it as is.
    struct stat a_st, b_st;
    if (::fstatat(tdir, tname.c_str(), &a_st, AT_SYMLINK_NOFOLLOW) == 0 &&
        ::fstatat(pfd, name.c_str(), &b_st, AT_SYMLINK_NOFOLLOW) == 0 &&
        a_st.st_ino == b_st.st_ino && a_st.st_dev == b_st.st_dev) {
      return {};
    }
    BERTH_TRYV(remove_existing(pfd, name, rel));
    if (::linkat(tdir, tname.c_str(), pfd, name.c_str(), 0) != 0) {
      return fail_errno("hard link " + shown(rel) + " to", std::string(target));
    }
  }
  return {};
}

Result<void> Extractor::make_symlink(int pfd, const std::string& name, const std::string& rel,
                                     size_t depth, archive_entry* e) {
  const char* t = archive_entry_symlink(e);
  std::string_view target = t ? t : "";
  if (target.empty()) {
    return std::unexpected(refuse(rel, "symlink with an empty target"));
  }
  if (target.front() != '/') {
    // Resolve lexically from the entry's directory: climbing above the root is refused.
    long level = static_cast<long>(depth);
    size_t pos = 0;
    while (pos <= target.size()) {
      size_t slash = target.find('/', pos);
      if (slash == std::string_view::npos) {
        slash = target.size();
      }
      std::string_view c = target.substr(pos, slash - pos);
      pos = slash + 1;
      if (c.empty() || c == ".") {
        continue;
      }
      if (c == "..") {
        if (--level < 0) {
          return std::unexpected(refuse(
              rel, "symlink target \"" + std::string(target) + "\" climbs out of the layer"));
        }
      } else {
        ++level;
      }
    }
  }
  std::string target_s(target);
  if (::symlinkat(target_s.c_str(), pfd, name.c_str()) != 0) {
    if (errno != EEXIST) {
      return fail_errno("create symlink", shown(rel));
    }
    BERTH_TRYV(remove_existing(pfd, name, rel));
    if (::symlinkat(target_s.c_str(), pfd, name.c_str()) != 0) {
      return fail_errno("create symlink", shown(rel));
    }
  }
  BERTH_TRYV(chown_at(-1, pfd, name, rel, e));
  BERTH_TRYV(xattrs(-1, pfd, name, rel, e));
  timespec ts[2];
  entry_times(e, ts);
  if (::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno("set times of", shown(rel));
  }
  return {};
}

Result<void> Extractor::make_node(int pfd, const std::string& name, const std::string& rel,
                                  archive_entry* e) {
  const mode_t type = archive_entry_filetype(e);
  if (type != AE_IFIFO && !opts_.allow_devices) {
    return std::unexpected(refuse(rel, "device nodes are not allowed in this layer"));
  }
  const dev_t dev =
      type == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
  const mode_t kind = type == AE_IFCHR ? S_IFCHR : type == AE_IFBLK ? S_IFBLK : S_IFIFO;
  if (::mknodat(pfd, name.c_str(), kind | 0600, dev) != 0) {
    if (errno != EEXIST) {
      return fail_errno("create device node", shown(rel));
    }
    BERTH_TRYV(remove_existing(pfd, name, rel));
    if (::mknodat(pfd, name.c_str(), kind | 0600, dev) != 0) {
      return fail_errno("create device node", shown(rel));
    }
  }
  BERTH_TRYV(chown_at(-1, pfd, name, rel, e));
  if (::fchmodat(pfd, name.c_str(), archive_entry_perm(e), 0) != 0) {
    return fail_errno("chmod", shown(rel));
  }
  BERTH_TRYV(xattrs(-1, pfd, name, rel, e));
  timespec ts[2];
  entry_times(e, ts);
  if (::utimensat(pfd, name.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail_errno("set times of", shown(rel));
  }
  return {};
}

Result<void> Extractor::whiteout(int pfd, const std::string& parent_rel, std::string_view name,
                                 std::string_view entry_name, archive_entry* e) {
  if (name == kOpaqueMarker) {
    if (opts_.whiteouts == WhiteoutFormat::Overlay) {
      return opaque_overlay(pfd, parent_rel);
    }
    opaque_dirs_.push_back(parent_rel);
    return {};
  }
  if (name.starts_with(kWhiteoutMetaPrefix)) {
    return {};  // AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): nothing to extract
  }
  std::string target(name.substr(kWhiteoutPrefix.size()));
  if (target.empty() || target == "." || target == "..") {
    return std::unexpected(refuse(entry_name, "whiteout of an invalid name"));
  }
  std::string rel = parent_rel.empty() ? target : parent_rel + "/" + target;
  BERTH_TRYV(remove_existing(pfd, target, rel));
  if (opts_.whiteouts == WhiteoutFormat::Overlay) {
    if (::mknodat(pfd, target.c_str(), S_IFCHR, makedev(0, 0)) != 0) {
      return fail(Error::from_errno("create whiteout", shown(rel), errno)
                      .hint("overlay whiteouts are 0:0 character devices and need CAP_MKNOD"));
    }
    timespec ts[2];
    entry_times(e, ts);
    if (::utimensat(pfd, target.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0) {
      return fail_errno("set times of", shown(rel));
    }
    created_.insert(rel);
  }
  return {};
}

Result<void> Extractor::opaque_overlay(int pfd, const std::string& parent_rel) {
  std::string via = proc_fd_path(pfd);
  if (::setxattr(via.c_str(), kTrustedOpaque, "y", 1, 0) == 0) {
    return {};
  }
  int err = errno;
  // Unprivileged (rootless) stores mount overlay with "userxattr": trusted.* is out of reach there
  // and user.overlay.opaque is what the kernel reads.
  if (err == EPERM && ::setxattr(via.c_str(), kUserOpaque, "y", 1, 0) == 0) {
    return {};
  }
  return fail(
      Error::from_errno(std::string("set ") + kTrustedOpaque + " on", shown(parent_rel), err)
          .hint("the layer filesystem must support trusted xattrs for overlay"));
}

Result<void> Extractor::apply_opaque_delete(const std::string& rel) {
  // Everything below an opaque directory that this archive did not write belongs to lower layers.
  UniqueFd fd(rel.empty() ? ::openat(root_.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                          : sys_openat2(root_.get(), rel.c_str(),
                                        O_RDONLY | O_DIRECTORY | O_CLOEXEC, kResolveSafe));
  if (!fd) {
    if (errno == ENOENT) {
      return {};
    }
    return fail_errno("open opaque directory", shown(rel));
  }
  DIR* d = ::fdopendir(fd.get());
  if (d == nullptr) {
    return fail_errno("read directory", shown(rel));
  }
  fd.release();
  std::unique_ptr<DIR, int (*)(DIR*)> dir(d, ::closedir);
  std::vector<std::pair<std::string, bool>> children;
  while (dirent* de = ::readdir(d)) {
    std::string_view n = de->d_name;
    if (n != "." && n != "..") {
      children.emplace_back(std::string(n), de->d_type == DT_DIR);
    }
  }
  for (const auto& [child, is_dir] : children) {
    std::string crel = rel.empty() ? child : rel + "/" + child;
    if (!created_.contains(crel)) {
      BERTH_TRYV(remove_at(::dirfd(d), child, shown(crel)));
    } else if (is_dir) {
      BERTH_TRYV(apply_opaque_delete(crel));
    }
  }
  return {};
}

}  // namespace

Result<ExtractStats> extract_layer(int tar_fd, const std::filesystem::path& dest,
                                   const ExtractOptions& opts) {
  Extractor x(dest, opts);
  return x.run(tar_fd);
}

}  // namespace berth::sdk
