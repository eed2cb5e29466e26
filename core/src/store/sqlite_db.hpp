#pragma once
// A thin RAII wrapper over sqlite3: statements, typed binds and column reads, errors as Result.
#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "berth/sdk/result.hpp"

namespace berth::store {

class Db;

class Stmt {
 public:
  Stmt() = default;
  Stmt(Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_) { o.s_ = nullptr; }
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt() { sqlite3_finalize(s_); }

  Stmt& bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind_blob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  // true: a row is available; false: done.
  Result<bool> step();
  // Runs to completion.
  Result<void> run();
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(s_, col));
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(p, static_cast<size_t>(n)) : std::string();
  }
  int64_t integer(int col) const { return sqlite3_column_int64(s_, col); }

 private:
  Db* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
};

class Db {
 public:
  static Result<Db> open(const std::string& path, bool read_only);
  Db() = default;
  Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), read_only_(o.read_only_) {
    o.db_ = nullptr;
  }
  Db& operator=(Db&& o) noexcept {
    std::swap(db_, o.db_);
    std::swap(path_, o.path_);
    std::swap(read_only_, o.read_only_);
    return *this;
  }
  // An idle connection goes back to the process's pool (one per database) instead of closing.
  ~Db();

  Result<Stmt> prepare(std::string_view sql);
  Result<void> exec(const std::string& sql);
  Error error(std::string_view op) const;
  const std::string& path() const { return path_; }
  int64_t changes() const { return sqlite3_changes64(db_); }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
  bool read_only_ = false;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back unless committed.
class WriteTx {
 public:
  static Result<WriteTx> begin(Db& db);
  WriteTx(WriteTx&& o) noexcept : db_(o.db_) { o.db_ = nullptr; }
  WriteTx& operator=(WriteTx&&) = delete;
  ~WriteTx();
  Result<void> commit();

 private:
  explicit WriteTx(Db* db) : db_(db) {}
  Db* db_ = nullptr;
};

}  // namespace berth::store
