#include "berth/store/store.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "berth/util/fs.hpp"
#include "berth/util/log.hpp"
#include "sqlite_db.hpp"

namespace berth::store {

namespace {

constexpr int kSchemaVersion = 1;

// Containers (another module) add their own table in a later schema version; they reference
// images(id) and own a read-write layer whose parent is the image's top layer, so the layer
// reference count below already covers them.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE IF NOT EXISTS layers (
  id TEXT PRIMARY KEY,
  parent TEXT NOT NULL DEFAULT '',
  diff_id TEXT NOT NULL DEFAULT '',
  compressed_digest TEXT NOT NULL DEFAULT '',
  compressed_size INTEGER NOT NULL DEFAULT -1,
  uncompressed_size INTEGER NOT NULL DEFAULT -1,
  created INTEGER NOT NULL,
  incomplete INTEGER NOT NULL DEFAULT 1,
  writer TEXT NOT NULL DEFAULT '',
  driver TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS layers_parent ON layers(parent);
CREATE INDEX IF NOT EXISTS layers_incomplete ON layers(incomplete) WHERE incomplete = 1;
CREATE TABLE IF NOT EXISTS images (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL DEFAULT '',
  created INTEGER NOT NULL,
  size INTEGER NOT NULL DEFAULT 0,
  top_layer TEXT NOT NULL DEFAULT '',
  config BLOB NOT NULL,
  manifest BLOB NOT NULL,
  manifest_type TEXT NOT NULL DEFAULT '',
  names_history TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS images_top ON images(top_layer);
CREATE TABLE IF NOT EXISTS image_names (
  name TEXT PRIMARY KEY,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  added INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS image_names_image ON image_names(image_id);
CREATE TABLE IF NOT EXISTS image_digests (
  name TEXT NOT NULL,
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  PRIMARY KEY (name, image_id)
);
CREATE TABLE IF NOT EXISTS image_big_data (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (image_id, key)
);
)sql";

int64_t now_unix() {
  return static_cast<int64_t>(std::time(nullptr));
}

std::string read_small(const char* path) {
  auto r = util::read_file(path);
  if (!r) {
    return {};
  }
  std::string s = *r;
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
std::string start_time(pid_t pid) {
  std::string stat = read_small(("/proc/" + std::to_string(pid) + "/stat").c_str());
  auto close = stat.rfind(')');
  if (close == std::string::npos) {
    return {};
  }
  // Fields after the command: state is field 3; start time is field 22.
  size_t pos = close + 2;
  for (int field = 3; field < 22; ++field) {
    pos = stat.find(' ', pos);
    if (pos == std::string::npos) {
      return {};
    }
    ++pos;
  }
  return stat.substr(pos, stat.find(' ', pos) - pos);
}

const std::string& boot_id() {
  static const std::string id = read_small("/proc/sys/kernel/random/boot_id");
  return id;
}

class LayerLock {
 public:
  static Result<LayerLock> acquire(const std::string& run_root, const std::string& id,
                                   bool blocking) {
    std::string dir = run_root + "/locks";
    BERTH_TRYV(util::make_dirs(dir, 0700));
    std::string path = dir + "/layer-" + id + ".lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
      return fail_errno("open lock file", path);
    }
    UniqueFd ufd(fd);
    for (;;) {
      if (::flock(fd, LOCK_EX | (blocking ? 0 : LOCK_NB)) == 0) {
        break;
      }
      if (errno == EINTR) {
        continue;
      }
      if (errno == EWOULDBLOCK) {
        return fail(Errc::Busy, "layer " + id + " is locked by another process");
      }
      return fail_errno("lock", path);
    }
    return LayerLock(std::move(ufd));
  }

 private:
  explicit LayerLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;  // closing it releases the flock
};

LayerRecord layer_from(const Stmt& s) {
  LayerRecord l;
  l.id = s.text(0);
  l.parent = s.text(1);
  l.diff_id = s.text(2);
  l.compressed_digest = s.text(3);
  l.compressed_size = s.integer(4);
  l.uncompressed_size = s.integer(5);
  l.created = s.integer(6);
  l.incomplete = s.integer(7) != 0;
  l.writer = s.text(8);
  l.driver = s.text(9);
  return l;
}

constexpr const char* kLayerCols =
    "id, parent, diff_id, compressed_digest, compressed_size, uncompressed_size, created, "
    "incomplete, writer, driver";
constexpr const char* kImageCols =
    "id, digest, created, size, top_layer, config, manifest, manifest_type, names_history";

}  // namespace

struct Store::Impl {
  StoreOptions opts;
  sdk::StorageDriver* driver = nullptr;
  Db db;
  std::mutex mu;  // one connection shared by this process's threads; transactions never interleave

  Result<std::optional<LayerRecord>> get_layer(const std::string& id) {
    BERTH_TRY(auto s, db.prepare(std::string("SELECT ") + kLayerCols + " FROM layers WHERE id=?"));
    s.bind(1, id);
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return std::optional<LayerRecord>();
    }
    return std::optional<LayerRecord>(layer_from(s));
  }

  Result<int64_t> users(const std::string& id, bool exclude_mine) {
    BERTH_TRY(auto s, db.prepare("SELECT (SELECT COUNT(*) FROM images WHERE top_layer=?1) + "
                                 "(SELECT COUNT(*) FROM layers WHERE parent=?1 AND "
                                 "NOT (?2 AND incomplete=1 AND writer=?3))"));
    s.bind(1, id).bind(2, int64_t{exclude_mine ? 1 : 0}).bind(3, self_writer());
    BERTH_TRY(bool row, s.step());
    return row ? s.integer(0) : 0;
  }

  Result<ImageRecord> image_from(const Stmt& s) {
    ImageRecord r;
    r.id = s.text(0);
    r.digest = s.text(1);
    r.created = s.integer(2);
    r.size = s.integer(3);
    r.top_layer = s.text(4);
    r.config = s.text(5);
    r.manifest = s.text(6);
    r.manifest_type = s.text(7);
    auto hist = nlohmann::json::parse(s.text(8), nullptr, false);
    if (hist.is_array()) {
      for (auto& h : hist) {
        if (h.is_string()) {
          r.names_history.push_back(h.get<std::string>());
        }
      }
    }
    BERTH_TRY(auto n,
              db.prepare("SELECT name FROM image_names WHERE image_id=? ORDER BY added, name"));
    n.bind(1, r.id);
    for (;;) {
      BERTH_TRY(bool row, n.step());
      if (!row) {
        break;
      }
      r.names.push_back(n.text(0));
    }
    BERTH_TRY(auto d, db.prepare("SELECT name FROM image_digests WHERE image_id=? ORDER BY name"));
    d.bind(1, r.id);
    for (;;) {
      BERTH_TRY(bool row, d.step());
      if (!row) {
        break;
      }
      r.digests.push_back(d.text(0));
    }
    return r;
  }

  Result<std::optional<ImageRecord>> get_image(const std::string& id) {
    BERTH_TRY(auto s, db.prepare(std::string("SELECT ") + kImageCols + " FROM images WHERE id=?"));
    s.bind(1, id);
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return std::optional<ImageRecord>();
    }
    BERTH_TRY(auto img, image_from(s));
    return std::optional<ImageRecord>(std::move(img));
  }

  Result<void> push_history(const std::string& image_id, const std::string& name) {
    BERTH_TRY(auto s, db.prepare("SELECT names_history FROM images WHERE id=?"));
    s.bind(1, image_id);
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return {};
    }
    auto hist = nlohmann::json::parse(s.text(0), nullptr, false);
    nlohmann::json out = nlohmann::json::array({name});
    if (hist.is_array()) {
      for (auto& h : hist) {
        if (h != name) {
          out.push_back(h);
        }
      }
    }
    BERTH_TRY(auto u, db.prepare("UPDATE images SET names_history=? WHERE id=?"));
    u.bind(1, out.dump()).bind(2, image_id);
    return u.run();
  }

  Result<void> insert_name(const std::string& image_id, const std::string& name) {
    BERTH_TRY(auto s, db.prepare("INSERT INTO image_names(name, image_id, added) VALUES(?, ?, ?) "
                                 "ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id, "
                                 "added=excluded.added WHERE image_id<>excluded.image_id"));
    s.bind(1, name).bind(2, image_id).bind(3, now_unix());
    BERTH_TRYV(s.run());
    return push_history(image_id, name);
  }

  // Removes a layer this process marked (incomplete, writer = self) from the driver and the db.
  Result<void> destroy_marked(const std::string& id) {
    BERTH_TRY(auto lock, LayerLock::acquire(opts.run_root, id, true));
    (void)lock;
    {
      std::lock_guard g(mu);
      BERTH_TRY(auto cur, get_layer(id));
      if (!cur || !cur->incomplete || cur->writer != self_writer()) {
        return {};  // taken over or already gone
      }
    }
    if (auto r = driver->remove(id); !r) {
      return fail(std::move(r).error().wrap("remove layer " + id));
    }
    std::error_code ec;
    std::filesystem::remove(opts.graph_root + "/layers/" + id + ".tar-split", ec);
    std::lock_guard g(mu);
    BERTH_TRY(auto tx, WriteTx::begin(db));
    BERTH_TRY(auto s, db.prepare("DELETE FROM layers WHERE id=? AND writer=? AND incomplete=1"));
    s.bind(1, id).bind(2, self_writer());
    BERTH_TRYV(s.run());
    return tx.commit();
  }

  struct Marked {
    std::vector<std::string> ids;  // top first
    // Where the walk stopped, still used, after marking some: to look at again once the
    // marked ones are gone (release_unused). Two processes removing siblings at once may each
    // count the other's child as a user (one marked, not yet deleted), and both stop; each
    // deletes its own, then looks again, and the later look finds the parent unused instead
    // of leaving it behind with no user at all.
    std::string recheck;
  };

  // Marks `top` and each parent no longer used for removal (in the caller's transaction).
  Result<Marked> mark_unused_chain(std::string id) {
    Marked marked;
    while (!id.empty()) {
      BERTH_TRY(auto l, get_layer(id));
      if (!l || l->incomplete) {
        break;
      }
      BERTH_TRY(int64_t n, users(id, true));
      if (n > 0) {
        if (!marked.ids.empty()) {
          marked.recheck = id;
        }
        break;
      }
      BERTH_TRY(auto s, db.prepare("UPDATE layers SET incomplete=1, writer=? WHERE id=?"));
      s.bind(1, self_writer()).bind(2, id);
      BERTH_TRYV(s.run());
      marked.ids.push_back(id);
      id = l->parent;
    }
    return marked;
  }

  // After this process removed a child of `id` (or gave up creating one): `id` and its parents
  // go too if nothing uses them now. -> the layers removed.
  Result<std::vector<std::string>> release_unused(std::string id) {
    std::vector<std::string> removed;
    while (!id.empty()) {  // up the chain, looking again wherever this walk stops in turn
      Marked m;
      {
        std::lock_guard g(mu);
        BERTH_TRY(auto tx, WriteTx::begin(db));
        BERTH_TRY(m, mark_unused_chain(id));
        BERTH_TRYV(tx.commit());
      }
      for (auto& l : m.ids) {
        BERTH_TRYV(destroy_marked(l));
        removed.push_back(l);
      }
      id = m.recheck;
    }
    return removed;
  }

  // Removes incomplete layers whose writer is gone. Cheap when there are none (indexed query).
  Result<std::vector<std::string>> clean_stale(bool only_list, std::vector<std::string>* found) {
    std::vector<LayerRecord> stale;
    {
      std::lock_guard g(mu);
      BERTH_TRY(auto s, db.prepare(std::string("SELECT ") + kLayerCols +
                                   " FROM layers WHERE incomplete=1"));
      for (;;) {
        BERTH_TRY(bool row, s.step());
        if (!row) {
          break;
        }
        auto l = layer_from(s);
        if (!writer_alive(l.writer)) {
          stale.push_back(std::move(l));
        }
      }
    }
    // Children before parents: a driver may refuse to remove a layer another one stands on.
    {
      std::vector<LayerRecord> ordered;
      while (!stale.empty()) {
        size_t before = stale.size();
        for (auto it = stale.begin(); it != stale.end();) {
          bool is_parent = std::any_of(stale.begin(), stale.end(),
                                       [&](const LayerRecord& o) { return o.parent == it->id; });
          if (is_parent) {
            ++it;
            continue;
          }
          ordered.push_back(std::move(*it));
          it = stale.erase(it);
        }
        if (stale.size() == before) {  // a cycle cannot happen; keep whatever order is left
          std::move(stale.begin(), stale.end(), std::back_inserter(ordered));
          stale.clear();
        }
      }
      stale = std::move(ordered);
    }
    std::vector<std::string> removed;
    for (auto& l : stale) {
      if (found) {
        found->push_back("layer " + l.id + " is incomplete (its writer " + l.writer + " is gone)");
      }
      if (only_list) {
        continue;
      }
      auto lock = LayerLock::acquire(opts.run_root, l.id, false);
      if (!lock) {
        continue;  // someone is on it right now
      }
      {
        std::lock_guard g(mu);
        BERTH_TRY(auto tx, WriteTx::begin(db));
        BERTH_TRY(auto cur, get_layer(l.id));
        if (!cur || !cur->incomplete || writer_alive(cur->writer)) {
          continue;
        }
        BERTH_TRY(auto s, db.prepare("UPDATE layers SET writer=? WHERE id=?"));
        s.bind(1, self_writer()).bind(2, l.id);
        BERTH_TRYV(s.run());
        BERTH_TRYV(tx.commit());
      }
      lock = fail(Errc::Internal, "released");  // destroy_marked takes the lock itself
      if (auto r = destroy_marked(l.id); !r) {
        // Not this command's business: the layer stays marked, with no live writer, for the
        // next command to try, and this one goes on (a layer still mounted by someone made
        // every command fail).
        spdlog::warn("incomplete layer {} left by a process that is gone: {}", l.id,
                     r.error().message());
        std::lock_guard g(mu);
        if (auto u = db.prepare("UPDATE layers SET writer='' WHERE id=? AND writer=? AND "
                                "incomplete=1");
            u) {
          (void)u->bind(1, l.id).bind(2, self_writer()).run();
        }
        continue;
      }
      spdlog::info("removed incomplete layer {} left by a process that is gone", l.id);
      removed.push_back(l.id);
      if (auto up = release_unused(l.parent); up) {
        removed.insert(removed.end(), up->begin(), up->end());
      } else {
        spdlog::warn("the parent of incomplete layer {}: {}", l.id, up.error().message());
      }
    }
    return removed;
  }
};

std::string Store::self_writer() {
  // Recomputed after fork(): a child is a different writer from its parent.
  static std::mutex mu;
  static pid_t cached_pid = 0;
  static std::string cached;
  std::lock_guard g(mu);
  pid_t pid = ::getpid();
  if (pid != cached_pid) {
    cached = boot_id() + ":" + std::to_string(pid) + ":" + start_time(pid);
    cached_pid = pid;
  }
  return cached;
}

bool Store::writer_alive(const std::string& writer) {
  auto a = writer.find(':');
  auto b = writer.rfind(':');
  if (a == std::string::npos || a == b) {
    return false;
  }
  if (writer.substr(0, a) != boot_id()) {
    return false;
  }
  pid_t pid = static_cast<pid_t>(std::atoi(writer.substr(a + 1, b - a - 1).c_str()));
  if (pid <= 0) {
    return false;
  }
  if (pid == ::getpid()) {
    return writer == self_writer();
  }
  std::string st = start_time(pid);
  return !st.empty() && st == writer.substr(b + 1);
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const StoreOptions& Store::options() const {
  return impl_->opts;
}
sdk::StorageDriver& Store::driver() {
  return *impl_->driver;
}

std::string Store::layer_meta_path(const std::string& id, const std::string& suffix) const {
  return impl_->opts.graph_root + "/layers/" + id + suffix;
}

Result<std::unique_ptr<Store>> Store::open(const StoreOptions& opts, sdk::StorageDriver& driver) {
  if (opts.graph_root.empty() || opts.run_root.empty()) {
    return fail(Errc::InvalidArgument, "open store: graph root and run root must be set");
  }
  auto impl = std::make_unique<Impl>();
  impl->opts = opts;
  impl->driver = &driver;
  std::string path = opts.graph_root + "/berth.db";
  if (!opts.read_only) {
    BERTH_TRYV(util::make_dirs(opts.graph_root + "/layers", 0700));
    BERTH_TRYV(util::make_dirs(opts.run_root + "/locks", 0700));
  }
  BERTH_TRY(impl->db, Db::open(path, opts.read_only));
  auto& db = impl->db;
  BERTH_TRYV(db.exec("PRAGMA foreign_keys=ON"));
  if (!opts.read_only) {
    BERTH_TRYV(db.exec("PRAGMA journal_mode=WAL"));
    BERTH_TRYV(db.exec("PRAGMA synchronous=NORMAL"));
    BERTH_TRY(auto s, db.prepare("PRAGMA user_version"));
    BERTH_TRY(bool row, s.step());
    int64_t version = row ? s.integer(0) : 0;
    if (version > kSchemaVersion) {
      return fail(Errc::NotSupported, "store " + path + " has schema version " +
                                          std::to_string(version) +
                                          ", newer than this berth understands (" +
                                          std::to_string(kSchemaVersion) + "); upgrade berth");
    }
    if (version < kSchemaVersion) {
      BERTH_TRY(auto tx, WriteTx::begin(db));
      BERTH_TRYV(db.exec(kSchemaV1));
      BERTH_TRYV(db.exec("PRAGMA user_version=" + std::to_string(kSchemaVersion)));
      BERTH_TRYV(tx.commit());
    }
  }
  std::unique_ptr<Store> store(new Store(std::move(impl)));
  if (!opts.read_only) {
    BERTH_TRYV(store->impl_->clean_stale(false, nullptr));
  }
  return store;
}

Result<std::optional<LayerRecord>> Store::layer(const std::string& id) {
  std::lock_guard g(impl_->mu);
  return impl_->get_layer(id);
}

Result<std::vector<LayerRecord>> Store::layers() {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s, impl_->db.prepare(std::string("SELECT ") + kLayerCols + " FROM layers"));
  std::vector<LayerRecord> out;
  for (;;) {
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return out;
    }
    out.push_back(layer_from(s));
  }
}

Result<int64_t> Store::layer_users(const std::string& id) {
  std::lock_guard g(impl_->mu);
  return impl_->users(id, false);
}

Result<LayerRecord> Store::create_layer(
    const LayerRecord& want, const std::function<Result<LayerFill>(const std::string&)>& fill,
    const sdk::CreateOptions& create_opts, bool parent_in_progress) {
  auto& im = *impl_;
  const std::string& id = want.id;
  auto ctx = [&](Error e) { return std::move(e).wrap("create layer " + id); };
  for (int attempt = 0;; ++attempt) {
    BERTH_TRY(auto lock, LayerLock::acquire(im.opts.run_root, id, true));
    bool wait = false;
    {
      std::lock_guard g(im.mu);
      BERTH_TRY(auto tx, WriteTx::begin(im.db));
      BERTH_TRY(auto cur, im.get_layer(id));
      if (cur && !cur->incomplete) {
        return *cur;  // another image or process made it: shared
      }
      if (cur && writer_alive(cur->writer)) {
        wait = true;  // being removed by a live process; it holds the lock shortly
      } else {
        if (!want.parent.empty()) {
          BERTH_TRY(auto parent, im.get_layer(want.parent));
          bool usable = parent && (!parent->incomplete ||
                                   (parent_in_progress && parent->writer == self_writer()));
          if (!usable) {
            return fail(Errc::Conflict, "create layer " + id + ": parent layer " + want.parent +
                                            " is missing or incomplete");
          }
        }
        if (cur) {
          // Left by a dead writer: take it over and start again from an empty layer.
          BERTH_TRY(auto s, im.db.prepare("UPDATE layers SET writer=? WHERE id=?"));
          s.bind(1, self_writer()).bind(2, id);
          BERTH_TRYV(s.run());
        } else {
          BERTH_TRY(auto s,
                    im.db.prepare("INSERT INTO layers(id, parent, diff_id, created, incomplete, "
                                  "writer, driver) VALUES(?, ?, ?, ?, 1, ?, ?)"));
          s.bind(1, id).bind(2, want.parent).bind(3, want.diff_id).bind(4, now_unix());
          s.bind(5, self_writer()).bind(6, im.driver->name());
          BERTH_TRYV(s.run());
        }
        BERTH_TRYV(tx.commit());
      }
    }
    if (wait) {
      if (attempt > 600) {
        return fail(Errc::Timeout, "create layer " + id + ": another process keeps it busy");
      }
      { LayerLock released = std::move(lock); }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    // We own the layer row (incomplete, writer = self) and its lock.
    auto undo = [&](Error e) -> Result<LayerRecord> {
      (void)im.driver->remove(id);
      std::error_code ec;
      std::filesystem::remove(layer_meta_path(id, ".tar-split"), ec);
      {
        std::lock_guard g(im.mu);
        auto tx = WriteTx::begin(im.db);
        if (tx) {
          auto s = im.db.prepare("DELETE FROM layers WHERE id=? AND writer=?");
          if (s) {
            s->bind(1, id).bind(2, self_writer());
            if (s->run()) {
              (void)tx->commit();
            }
          }
        }
      }
      if (!want.parent.empty()) {
        (void)im.release_unused(want.parent);  // best effort: the error to report is `e`
      }
      return fail(std::move(e));
    };
    if (im.driver->exists(id)) {
      if (auto r = im.driver->remove(id); !r) {
        return undo(ctx(std::move(r).error()));
      }
    }
    if (auto r = im.driver->create(id, want.parent, create_opts); !r) {
      return undo(ctx(std::move(r).error()));
    }
    auto filled = fill(id);
    if (!filled) {
      return undo(std::move(filled).error());
    }
    // One syncfs per layer rather than an fsync per file.
    if (auto path = im.driver->layer_path(id); filled->sync && path) {
      int fd = ::open(path->c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) {
        return undo(Error::from_errno("open layer directory", *path, errno));
      }
      UniqueFd ufd(fd);
      if (::syncfs(fd) != 0) {
        return undo(Error::from_errno("syncfs", *path, errno));
      }
    }
    LayerRecord done = want;
    {
      std::lock_guard g(im.mu);
      BERTH_TRY(auto tx, WriteTx::begin(im.db));
      BERTH_TRY(auto s, im.db.prepare("UPDATE layers SET incomplete=0, writer='', diff_id=?, "
                                      "compressed_digest=?, compressed_size=?, uncompressed_size=? "
                                      "WHERE id=? AND writer=?"));
      s.bind(1, filled->diff_id).bind(2, filled->compressed_digest);
      s.bind(3, filled->compressed_size).bind(4, filled->uncompressed_size);
      s.bind(5, id).bind(6, self_writer());
      BERTH_TRYV(s.run());
      if (im.db.changes() != 1) {
        return fail(Errc::Internal, "create layer " + id + ": its record vanished while writing");
      }
      BERTH_TRYV(tx.commit());
      BERTH_TRY(auto rec, im.get_layer(id));
      done = *rec;
    }
    return done;
  }
}

Result<std::vector<std::string>> Store::remove_layer(const std::string& id) {
  std::vector<std::string> marked;
  std::string recheck;
  {
    std::lock_guard g(impl_->mu);
    BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
    BERTH_TRY(auto l, impl_->get_layer(id));
    if (!l) {
      return fail(Errc::NotFound, "layer " + id + " is not known");
    }
    BERTH_TRY(int64_t n, impl_->users(id, false));
    if (n > 0) {
      return fail(Errc::Conflict,
                  "layer " + id + " is in use by " + std::to_string(n) + " image(s) or layer(s)");
    }
    BERTH_TRY(auto m, impl_->mark_unused_chain(id));
    marked = std::move(m.ids);
    recheck = std::move(m.recheck);
    BERTH_TRYV(tx.commit());
  }
  for (size_t i = 0; i < marked.size(); ++i) {
    if (auto r = impl_->destroy_marked(marked[i]); !r) {
      // The driver refused (a layer still mounted): the rest of the chain stays as it was.
      // Left marked, the layer would be destroyed by the next command's clean-up of stale
      // layers once unmounted, under the container whose removal failed here.
      std::lock_guard g(impl_->mu);
      if (auto tx = WriteTx::begin(impl_->db); tx) {
        bool ok = true;
        for (size_t j = i; j < marked.size() && ok; ++j) {
          auto u = impl_->db.prepare(
              "UPDATE layers SET incomplete=0, writer='' WHERE id=? AND writer=? AND "
              "incomplete=1");
          ok = u && u->bind(1, marked[j]).bind(2, self_writer()).run().has_value();
        }
        if (ok) {
          (void)tx->commit();
        }
      }
      return fail(std::move(r).error());
    }
  }
  BERTH_TRY(auto up, impl_->release_unused(recheck));
  marked.insert(marked.end(), up.begin(), up.end());
  return marked;
}

Result<ImageRecord> Store::put_image(const ImageRecord& rec) {
  auto& im = *impl_;
  {
    std::lock_guard g(im.mu);
    BERTH_TRY(auto tx, WriteTx::begin(im.db));
    // Every layer of the chain must be complete (another process may still write a parent).
    for (std::string lid = rec.top_layer; !lid.empty();) {
      BERTH_TRY(auto l, im.get_layer(lid));
      if (!l || l->incomplete) {
        return fail(Errc::Conflict, "record image " + rec.id + ": layer " + lid +
                                        " was removed meanwhile or is still being written");
      }
      lid = l->parent;
    }
    BERTH_TRY(auto s,
              im.db.prepare("INSERT INTO images(id, digest, created, size, top_layer, config, "
                            "manifest, manifest_type) VALUES(?, ?, ?, ?, ?, ?, ?, ?) "
                            "ON CONFLICT(id) DO NOTHING"));
    s.bind(1, rec.id).bind(2, rec.digest).bind(3, rec.created).bind(4, rec.size);
    s.bind(5, rec.top_layer).bind_blob(6, rec.config).bind_blob(7, rec.manifest);
    s.bind(8, rec.manifest_type);
    BERTH_TRYV(s.run());
    for (auto& n : rec.names) {
      BERTH_TRYV(im.insert_name(rec.id, n));
    }
    for (auto& d : rec.digests) {
      BERTH_TRY(auto ds,
                im.db.prepare("INSERT OR IGNORE INTO image_digests(name, image_id) VALUES(?, ?)"));
      ds.bind(1, d).bind(2, rec.id);
      BERTH_TRYV(ds.run());
    }
    BERTH_TRYV(tx.commit());
  }
  BERTH_TRY(auto out, image(rec.id));
  if (!out) {
    return fail(Errc::Conflict, "record image " + rec.id + ": removed meanwhile");
  }
  return *out;
}

Result<std::optional<ImageRecord>> Store::image(const std::string& id) {
  std::lock_guard g(impl_->mu);
  return impl_->get_image(id);
}

Result<std::vector<ImageRecord>> Store::images() {
  std::lock_guard g(impl_->mu);
  // One read transaction so the list is a consistent snapshot.
  BERTH_TRYV(impl_->db.exec("BEGIN"));
  auto body = [&]() -> Result<std::vector<ImageRecord>> {
    BERTH_TRY(auto s, impl_->db.prepare(std::string("SELECT ") + kImageCols + " FROM images"));
    std::vector<ImageRecord> out;
    for (;;) {
      BERTH_TRY(bool row, s.step());
      if (!row) {
        return out;
      }
      BERTH_TRY(auto img, impl_->image_from(s));
      out.push_back(std::move(img));
    }
  };
  auto r = body();
  (void)impl_->db.exec("COMMIT");
  return r;
}

Result<std::optional<std::string>> Store::image_by_name(const std::string& name) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s, impl_->db.prepare("SELECT image_id FROM image_names WHERE name=?"));
  s.bind(1, name);
  BERTH_TRY(bool row, s.step());
  if (!row) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(s.text(0));
}

Result<std::vector<std::pair<std::string, std::string>>> Store::image_names() {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s, impl_->db.prepare("SELECT name, image_id FROM image_names ORDER BY name"));
  std::vector<std::pair<std::string, std::string>> out;
  for (;;) {
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return out;
    }
    out.emplace_back(s.text(0), s.text(1));
  }
}

Result<std::vector<std::string>> Store::images_by_id_prefix(const std::string& prefix) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s, impl_->db.prepare("SELECT id FROM images WHERE substr(id, 1, ?)=?"));
  s.bind(1, static_cast<int64_t>(prefix.size())).bind(2, prefix);
  std::vector<std::string> out;
  for (;;) {
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return out;
    }
    out.push_back(s.text(0));
  }
}

Result<void> Store::add_name(const std::string& image_id, const std::string& name) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
  BERTH_TRY(auto img, impl_->get_image(image_id));
  if (!img) {
    return fail(Errc::NotFound, "image " + image_id + " not known");
  }
  BERTH_TRYV(impl_->insert_name(image_id, name));
  return tx.commit();
}

Result<void> Store::remove_name(const std::string& image_id, const std::string& name) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
  BERTH_TRY(auto s, impl_->db.prepare("DELETE FROM image_names WHERE name=? AND image_id=?"));
  s.bind(1, name).bind(2, image_id);
  BERTH_TRYV(s.run());
  if (impl_->db.changes() == 0) {
    return fail(Errc::NotFound, "image " + image_id.substr(0, 12) + " has no name " + name);
  }
  return tx.commit();
}

Result<std::vector<std::string>> Store::remove_image(const std::string& id) {
  std::vector<std::string> marked;
  std::string recheck;
  {
    std::lock_guard g(impl_->mu);
    BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
    BERTH_TRY(auto img, impl_->get_image(id));
    if (!img) {
      return fail(Errc::NotFound, "image " + id + " not known");
    }
    BERTH_TRY(auto s, impl_->db.prepare("DELETE FROM images WHERE id=?"));
    s.bind(1, id);
    BERTH_TRYV(s.run());
    BERTH_TRY(auto m, impl_->mark_unused_chain(img->top_layer));
    marked = std::move(m.ids);
    recheck = std::move(m.recheck);
    BERTH_TRYV(tx.commit());
  }
  for (auto& m : marked) {
    BERTH_TRYV(impl_->destroy_marked(m));
  }
  BERTH_TRY(auto up, impl_->release_unused(recheck));
  marked.insert(marked.end(), up.begin(), up.end());
  return marked;
}

Result<void> Store::set_big_data(const std::string& image_id, const std::string& key,
                                 const std::string& value) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
  BERTH_TRY(auto s,
            impl_->db.prepare("INSERT INTO image_big_data(image_id, key, value) VALUES(?, ?, ?) "
                              "ON CONFLICT(image_id, key) DO UPDATE SET value=excluded.value"));
  s.bind(1, image_id).bind(2, key).bind_blob(3, value);
  BERTH_TRYV(s.run());
  return tx.commit();
}

Result<std::optional<std::string>> Store::big_data(const std::string& image_id,
                                                   const std::string& key) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s,
            impl_->db.prepare("SELECT value FROM image_big_data WHERE image_id=? AND key=?"));
  s.bind(1, image_id).bind(2, key);
  BERTH_TRY(bool row, s.step());
  if (!row) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(s.text(0));
}

Result<std::vector<std::string>> Store::big_data_keys(const std::string& image_id) {
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto s,
            impl_->db.prepare("SELECT key FROM image_big_data WHERE image_id=? ORDER BY key"));
  s.bind(1, image_id);
  std::vector<std::string> out;
  for (;;) {
    BERTH_TRY(bool row, s.step());
    if (!row) {
      return out;
    }
    out.push_back(s.text(0));
  }
}

Result<CheckReport> Store::check(bool repair) {
  CheckReport rep;
  BERTH_TRY(auto removed, impl_->clean_stale(!repair, &rep.problems));
  for (auto& r : removed) {
    rep.repaired.push_back("removed incomplete layer " + r);
  }
  // Layers whose content the driver lacks, and layers whose parent is gone.
  BERTH_TRY(auto all, layers());
  std::set<std::string> ids;
  for (auto& l : all) {
    ids.insert(l.id);
  }
  std::set<std::string> broken;
  for (auto& l : all) {
    if (l.incomplete) {
      continue;
    }
    if (!impl_->driver->exists(l.id)) {
      rep.problems.push_back("layer " + l.id + ": the " + impl_->driver->name() +
                             " driver has no content for it");
      broken.insert(l.id);
    } else if (!l.parent.empty() && !ids.contains(l.parent)) {
      rep.problems.push_back("layer " + l.id + ": its parent " + l.parent + " is missing");
      broken.insert(l.id);
    }
  }
  // Children of broken layers are broken too.
  for (bool grew = true; grew;) {
    grew = false;
    for (auto& l : all) {
      if (!broken.contains(l.id) && broken.contains(l.parent)) {
        broken.insert(l.id);
        grew = true;
      }
    }
  }
  BERTH_TRY(auto imgs, images());
  std::vector<std::string> bad_images;
  for (auto& img : imgs) {
    if (!img.top_layer.empty() &&
        (!ids.contains(img.top_layer) || broken.contains(img.top_layer))) {
      rep.problems.push_back("image " + img.id + ": its layers are missing or damaged");
      bad_images.push_back(img.id);
    }
  }
  if (!repair) {
    return rep;
  }
  for (auto& id : bad_images) {
    BERTH_TRYV(remove_image(id));
    rep.repaired.push_back("removed image " + id);
  }
  // Broken layers no image uses any more: remove children first.
  for (bool progress = true; progress;) {
    progress = false;
    for (auto it = broken.begin(); it != broken.end();) {
      auto users = layer_users(*it);
      if (users && *users == 0) {
        {
          std::lock_guard g(impl_->mu);
          BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
          BERTH_TRY(auto s,
                    impl_->db.prepare("UPDATE layers SET incomplete=1, writer=? WHERE id=?"));
          s.bind(1, self_writer()).bind(2, *it);
          BERTH_TRYV(s.run());
          BERTH_TRYV(tx.commit());
        }
        std::string id = *it;
        it = broken.erase(it);
        BERTH_TRYV(impl_->destroy_marked(id));
        rep.repaired.push_back("removed damaged layer " + id);
        progress = true;
      } else {
        ++it;
      }
    }
  }
  return rep;
}

Result<void> Store::reset() {
  BERTH_TRY(auto imgs, images());
  for (auto& img : imgs) {
    auto r = remove_image(img.id);
    if (!r && r.error().code() != Errc::NotFound) {
      return fail(std::move(r).error());
    }
  }
  BERTH_TRY(auto rest, layers());
  for (auto& l : rest) {
    (void)impl_->driver->remove(l.id);
  }
  std::lock_guard g(impl_->mu);
  BERTH_TRY(auto tx, WriteTx::begin(impl_->db));
  BERTH_TRYV(impl_->db.exec(
      "DELETE FROM image_big_data; DELETE FROM image_digests; DELETE FROM image_names; "
      "DELETE FROM images; DELETE FROM layers;"));
  BERTH_TRYV(tx.commit());
  BERTH_TRYV(util::remove_tree(impl_->opts.graph_root + "/layers"));
  return util::make_dirs(impl_->opts.graph_root + "/layers", 0700);
}

}  // namespace berth::store
