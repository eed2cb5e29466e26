// The file event logger: O_APPEND lines under a shared lock; rotation under the exclusive lock.
//
// Lock: <log>.lock. Writers hold it shared from open() to close() of the log, so a rotation
// (exclusive) never renames the file between a writer's open and its write, and no event is lost
// into an unlinked inode. Readers take no lock: they notice a rotation by the inode changing.
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "berth/events/events.hpp"
#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"

namespace berth::events {

namespace fs = std::filesystem;

namespace {

class FileLock {
 public:
  static Result<FileLock> open(const fs::path& path, int how) {
    BERTH_TRY(auto fd, util::open_file(path, O_RDWR | O_CREAT, 0600));
    while (::flock(fd.get(), how) != 0) {
      if (errno != EINTR) {
        return fail_errno("lock", path.string());
      }
    }
    return FileLock(std::move(fd));
  }
  int fd() const { return fd_.get(); }

 private:
  explicit FileLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

fs::path lock_path(const fs::path& log) {
  return log.string() + ".lock";
}

// events_logfile_max_size (1 MiB when unset, as Podman).
uint64_t max_size_from(const config::EngineSection& e) {
  uint64_t size = 1024 * 1024;
  if (e.events_logfile_max_size.empty()) {
    return size;
  }
  if (auto v = parse_size(e.events_logfile_max_size)) {
    return *v;
  } else {
    spdlog::warn("containers.conf: events_logfile_max_size: {}", v.error().message());
  }
  return size;
}

}  // namespace

void emit_or_warn(const config::Config& cfg, const Event& e) {
  if (auto r = EventLog::from_config(cfg).emit(e); !r) {
    spdlog::warn("{}", r.error().message());
  }
}

EventLog EventLog::from_config(const config::Config& cfg) {
  const auto& e = cfg.containers.engine;
  LogOptions o;
  o.path = e.events_logfile_path.empty() ? fs::path(cfg.storage.runroot) / "events" / "events.log"
                                         : fs::path(e.events_logfile_path);
  o.enabled = e.events_logger != "none";
  o.max_size = max_size_from(e);
  return EventLog(std::move(o));
}

Result<void> EventLog::emit(const Event& e) const {
  if (!opts_.enabled) {
    return {};
  }
  Event ev = e;
  if (ev.time_nano == 0) {
    ev.time_nano = now_nano();
  }
  std::string line = to_json(ev).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  auto wrap = [&](Error err) {
    return fail(std::move(err).wrap("log event to " + opts_.path.string()));
  };
  auto lock = FileLock::open(lock_path(opts_.path), LOCK_SH);
  if (!lock && lock.error().sys_errno() == ENOENT) {
    // First event of this run root: make the directory (not on every emit).
    if (auto r = util::make_dirs(opts_.path.parent_path(), 0700); !r) {
      return wrap(r.error());
    }
    lock = FileLock::open(lock_path(opts_.path), LOCK_SH);
  }
  if (!lock) {
    return wrap(lock.error());
  }
  auto fd = util::open_file(opts_.path, O_WRONLY | O_APPEND | O_CREAT, 0600);
  if (!fd) {
    return wrap(fd.error());
  }
  if (opts_.max_size > 0) {
    struct stat st {};
    if (::fstat(fd->get(), &st) != 0) {
      return fail_errno("stat", opts_.path.string());
    }
    if (static_cast<uint64_t>(st.st_size) + line.size() > opts_.max_size) {
      *fd = UniqueFd();
      // Shared -> exclusive: flock drops the shared lock first; rotate_locked re-checks the size.
      while (::flock(lock->fd(), LOCK_EX) != 0) {
        if (errno != EINTR) {
          return fail_errno("lock", lock_path(opts_.path).string());
        }
      }
      if (auto r = rotate_locked(lock->fd()); !r) {
        return wrap(r.error());
      }
      fd = util::open_file(opts_.path, O_WRONLY | O_APPEND | O_CREAT, 0600);
      if (!fd) {
        return wrap(fd.error());
      }
    }
  }
  // One write() per line: with O_APPEND the kernel appends it whole under the inode lock.
  ssize_t n;
  do {
    n = ::write(fd->get(), line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    return fail_errno("write event to", opts_.path.string());
  }
  if (static_cast<size_t>(n) != line.size()) {
    return fail(Errc::Internal, "write event to " + opts_.path.string() + ": short write (" +
                                    std::to_string(n) + " of " + std::to_string(line.size()) +
                                    " bytes; is the disk full?)");
  }
  return {};
}

// Keeps the newest half of the log, starting at a line boundary, as Podman's rotateLog; then
// records a system "log-rotation" event. Called with the lock held exclusively.
Result<void> EventLog::rotate_locked(int /*lock_fd*/) const {
  struct stat st {};
  if (::stat(opts_.path.c_str(), &st) != 0) {
    return errno == ENOENT ? Result<void>() : fail_errno("stat", opts_.path.string());
  }
  if (static_cast<uint64_t>(st.st_size) < opts_.max_size) {
    return {};  // another process rotated it meanwhile
  }
  BERTH_TRY(auto content, util::read_file(opts_.path));
  size_t keep_from = content.size() / 2;
  auto nl = content.find('\n', keep_from == 0 ? 0 : keep_from - 1);
  keep_from = nl == std::string::npos ? content.size() : nl + 1;
  Event rot;
  rot.type = std::string(type::kSystem);
  rot.status = "log-rotation";
  rot.name = opts_.path.string();
  rot.time_nano = now_nano();
  std::string tail = content.substr(keep_from);
  tail += to_json(rot).dump() + "\n";
  BERTH_TRYV(util::write_file_atomic(opts_.path, tail, 0600));
  return {};
}

Result<void> EventLog::read(const ReadOptions& o,
                            const std::function<bool(const Event&)>& cb) const {
  UniqueFd inotify;
  if (o.follow) {
    BERTH_TRYV(util::make_dirs(opts_.path.parent_path(), 0700));
    int ifd = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ifd < 0) {
      return fail_errno("inotify_init1 for", opts_.path.string());
    }
    inotify = UniqueFd(ifd);
    // A directory watch sees the log being written, created and renamed over (rotation).
    if (::inotify_add_watch(ifd, opts_.path.parent_path().c_str(),
                            IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
      return fail_errno("inotify_add_watch", opts_.path.parent_path().string());
    }
  }
  bool from_start = !o.follow || o.since || o.until;
  UniqueFd fd;
  ino_t ino = 0;
  int64_t last_time = INT64_MIN;
  bool after_rotation = false;
  std::string pending;

  auto open_log = [&]() -> Result<bool> {
    int f = ::open(opts_.path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f < 0) {
      if (errno == ENOENT) {
        return false;
      }
      return fail_errno("open", opts_.path.string());
    }
    fd = UniqueFd(f);
    struct stat st {};
    if (::fstat(f, &st) != 0) {
      return fail_errno("stat", opts_.path.string());
    }
    ino = st.st_ino;
    pending.clear();
    if (!from_start) {
      if (::lseek(f, 0, SEEK_END) < 0) {
        return fail_errno("seek", opts_.path.string());
      }
    }
    return true;
  };

  // Returns false when the callback asked to stop.
  auto deliver = [&](std::string_view line) -> bool {
    if (line.empty()) {
      return true;
    }
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) {
      spdlog::debug("{}: skipping a malformed event line", opts_.path.string());
      return true;
    }
    auto ev = from_json(j);
    if (!ev) {
      return true;
    }
    if (after_rotation && ev->time_nano <= last_time) {
      return true;  // already delivered before the rotation
    }
    last_time = std::max(last_time, ev->time_nano);
    if ((o.since && ev->time_nano < *o.since) || (o.until && ev->time_nano > *o.until)) {
      return true;
    }
    if (!o.filters.match(*ev)) {
      return true;
    }
    return cb(*ev);
  };

  BERTH_TRY(bool opened, open_log());
  if (!opened && !o.follow) {
    return {};
  }
  from_start = true;  // a file created or rotated later is read whole
  char buf[65536];
  for (;;) {
    if (fd.get() >= 0) {
      ssize_t n = ::read(fd.get(), buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        return fail_errno("read", opts_.path.string());
      }
      if (n > 0) {
        pending.append(buf, static_cast<size_t>(n));
        size_t start = 0;
        for (auto nl = pending.find('\n'); nl != std::string::npos;
             nl = pending.find('\n', start)) {
          if (!deliver(std::string_view(pending).substr(start, nl - start))) {
            return {};
          }
          start = nl + 1;
        }
        pending.erase(0, start);
        continue;
      }
    }
    if (!o.follow) {
      // A last line without newline (a writer mid-write is impossible: one write per line).
      if (!pending.empty()) {
        deliver(pending);
      }
      return {};
    }
    int64_t now = now_nano();
    if (o.until && now > *o.until) {
      return {};
    }
    // Rotated or created since we opened it?
    struct stat st {};
    if (::stat(opts_.path.c_str(), &st) == 0 && (fd.get() < 0 || st.st_ino != ino)) {
      after_rotation = fd.get() >= 0;
      BERTH_TRY(bool again, open_log());
      (void)again;
      continue;
    }
    int timeout_ms = 1000;
    if (o.until) {
      timeout_ms = static_cast<int>(std::min<int64_t>(1000, (*o.until - now) / 1000000 + 1));
    }
    struct pollfd p {
      inotify.get(), POLLIN, 0
    };
    int r = ::poll(&p, 1, timeout_ms);
    if (r < 0 && errno != EINTR) {
      return fail_errno("poll inotify for", opts_.path.string());
    }
    if (r > 0) {
      alignas(struct inotify_event) char ibuf[4096];
      while (::read(inotify.get(), ibuf, sizeof ibuf) > 0) {
      }
    }
  }
}

}  // namespace berth::events
