#include "sqlite_db.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <vector>

namespace berth::store {

namespace {
Errc code_of(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Errc::Busy;
    case SQLITE_CONSTRAINT:
      return Errc::Conflict;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Errc::Corrupt;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return Errc::PermissionDenied;
    case SQLITE_CANTOPEN:
      return Errc::NotFound;
    default:
      return Errc::Internal;
  }
}
// One idle connection per database file, kept for the life of the process. The first connection
// of a process rebuilds SQLite's WAL index by reading every frame since the last checkpoint (no
// other connection holds the -shm mapping; SQLite truncates it); a `run` opened each database
// four times and paid that four times, plus the open and schema read. A pooled connection is
// reused only for the same file (device and inode: a store removed and made again is a new
// file) and never read-only for a writer.
struct Pooled {
  std::string path;
  dev_t dev = 0;
  ino_t ino = 0;
  bool read_only = false;
  sqlite3* db = nullptr;
};

std::mutex& pool_mutex() {
  static std::mutex mu;
  return mu;
}

std::vector<Pooled>& pool() {
  static auto* p = new std::vector<Pooled>();  // never destroyed: connections outlive exit
  return *p;
}

sqlite3* take_pooled(const std::string& path, bool read_only) {
  std::lock_guard lock(pool_mutex());
  auto& p = pool();
  for (auto it = p.begin(); it != p.end(); ++it) {
    if (it->path != path) {
      continue;
    }
    Pooled e = *it;
    p.erase(it);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0 && st.st_dev == e.dev && st.st_ino == e.ino &&
        (!e.read_only || read_only)) {
      return e.db;
    }
    sqlite3_close_v2(e.db);
    return nullptr;
  }
  return nullptr;
}

}  // namespace

Db::~Db() {
  if (db_ == nullptr) {
    return;
  }
  struct stat st;
  // Idle: no statement left and no transaction open.
  if (sqlite3_next_stmt(db_, nullptr) == nullptr && sqlite3_get_autocommit(db_) != 0 &&
      ::stat(path_.c_str(), &st) == 0) {
    std::lock_guard lock(pool_mutex());
    Pooled mine{path_, st.st_dev, st.st_ino, read_only_, db_};
    auto& p = pool();
    auto it = std::find_if(p.begin(), p.end(), [&](const Pooled& e) { return e.path == path_; });
    if (it != p.end()) {
      db_ = it->db;  // the newer connection stays; the older one closes below
      *it = mine;
    } else if (p.size() < 16) {
      p.push_back(mine);
      db_ = nullptr;
    }
  }
  sqlite3_close_v2(db_);
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return fail(db_->error("sqlite step"));
}

Result<void> Stmt::run() {
  for (;;) {
    BERTH_TRY(bool row, step());
    if (!row) {
      return {};
    }
  }
}

Error Db::error(std::string_view op) const {
  int rc = sqlite3_extended_errcode(db_);
  std::string msg = std::string(op) + " on " + path_ + ": " + sqlite3_errmsg(db_);
  if ((rc & 0xff) == SQLITE_BUSY) {
    msg += " (another berth process holds the store; retry, or look for a hung berth process)";
  }
  return Error(code_of(rc), std::move(msg));
}

Result<Db> Db::open(const std::string& path, bool read_only) {
  Db db;
  db.path_ = path;
  if (sqlite3* pooled = take_pooled(path, read_only)) {
    db.db_ = pooled;
    db.read_only_ = read_only && sqlite3_db_readonly(pooled, "main") == 1;
    return db;
  }
  db.read_only_ = read_only;
  int flags = SQLITE_OPEN_FULLMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  int rc = sqlite3_open_v2(path.c_str(), &db.db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    Error e = db.db_ ? db.error("open database")
                     : Error(Errc::Internal, "open database " + path + ": out of memory");
    return fail(std::move(e));
  }
  sqlite3_busy_timeout(db.db_, 30000);
  sqlite3_extended_result_codes(db.db_, 1);
  // Every berth command is a short-lived process: by default the last one to close the database
  // checkpoints the WAL (two fdatasyncs) and deletes it, and the next one re-creates it (a sync of
  // the directory). Keep the WAL file and leave checkpoints to SQLite's automatic ones; nothing is
  // less durable, a commit is as safe in the WAL as in the database.
  // But the first connection of a process finds no other holder of the -shm index, so it rebuilds
  // the index by reading every frame since the last checkpoint: at SQLite's default of 1000 pages
  // that was up to 4 MB of preads per open (1017 preads in one `run` on a store used for a day).
  // A checkpoint every 64 pages bounds that to 256 KB for one sync per dozen or so commands.
  int persist = 1;
  (void)sqlite3_file_control(db.db_, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  (void)sqlite3_db_config(db.db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  (void)sqlite3_wal_autocheckpoint(db.db_, 64);
  return db;
}

Result<Stmt> Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr) != SQLITE_OK) {
    return fail(error("prepare \"" + std::string(sql.substr(0, 60)) + "\""));
  }
  return Stmt(this, s);
}

Result<void> Db::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return fail(error("exec \"" + sql.substr(0, 60) + "\""));
  }
  return {};
}

Result<WriteTx> WriteTx::begin(Db& db) {
  BERTH_TRYV(db.exec("BEGIN IMMEDIATE"));
  return WriteTx(&db);
}

WriteTx::~WriteTx() {
  if (db_ != nullptr) {
    (void)db_->exec("ROLLBACK");
  }
}

Result<void> WriteTx::commit() {
  Db* db = db_;
  db_ = nullptr;
  auto r = db->exec("COMMIT");
  if (!r) {
    (void)db->exec("ROLLBACK");
  }
  return r;
}

}  // namespace berth::store
