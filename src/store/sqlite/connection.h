// One SQLite connection with its cache of prepared statements, and the
// mapping of SQLite result codes onto MPIM status codes.
//
// Not thread-safe: a Connection belongs to one thread (the writer thread or
// one reader thread) for its whole life.
#pragma once

#include <sqlite3.h>

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"
#include "store/sqlite/options.h"
#include "store/status_macros.h"

namespace mpim::store::sqlite {

// The Status for an SQLite result code (extended codes understood):
//   constraint unique/primary key -> kAlreadyExists, foreign key -> kNotFound,
//   check/not null -> kInvalidArgument; full, I/O error, read-only, cannot
//   open, busy, locked, out of memory -> kUnavailable; anything else ->
//   kInternal. `context` names the operation for the message.
core::Status StatusFromSqlite(int rc, sqlite3* db, std::string_view context);

// True for the codes that mean "the storage cannot take writes now".
bool IsStorageFailure(const core::Status& status);

// A cached prepared statement borrowed for one execution: bound on creation,
// reset and unbound when destroyed.
class Stmt {
 public:
  Stmt(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Stmt(Stmt&& other) noexcept : stmt_(other.stmt_), db_(other.db_) { other.stmt_ = nullptr; }
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  // Steps once: true when a row is ready, false when done.
  [[nodiscard]] core::StatusOr<bool> Next();
  // Steps to the end, ignoring rows.
  [[nodiscard]] core::Status Run();

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  bool Bool(int col) const { return sqlite3_column_int64(stmt_, col) != 0; }
  bool IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string Text(int col) const;

  sqlite3_stmt* raw() const { return stmt_; }

 private:
  sqlite3_stmt* stmt_;
  sqlite3* db_;
};

// Binding of C++ values to parameters.
inline int BindValue(sqlite3_stmt* s, int i, std::nullptr_t) { return sqlite3_bind_null(s, i); }
template <std::integral T>
int BindValue(sqlite3_stmt* s, int i, T v) {
  return sqlite3_bind_int64(s, i, static_cast<sqlite3_int64>(v));
}
inline int BindValue(sqlite3_stmt* s, int i, std::string_view v) {
  return sqlite3_bind_text64(s, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}
inline int BindValue(sqlite3_stmt* s, int i, const std::string& v) {
  return BindValue(s, i, std::string_view(v));
}
inline int BindValue(sqlite3_stmt* s, int i, const char* v) {
  return BindValue(s, i, std::string_view(v));
}
template <typename T>
int BindValue(sqlite3_stmt* s, int i, const std::optional<T>& v) {
  return v ? BindValue(s, i, *v) : sqlite3_bind_null(s, i);
}

class Connection {
 public:
  // Opens (creating if `writer`) the database and sets the pragmas: WAL,
  // foreign keys, synchronous, busy timeout, cache size.
  static core::StatusOr<std::unique_ptr<Connection>> Open(const SqliteOptions& options,
                                                          bool writer);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The cached statement for `sql` with `args` bound to ?1, ?2, ...
  template <typename... Args>
  [[nodiscard]] core::StatusOr<Stmt> Query(std::string_view sql, const Args&... args) {
    auto stmt = Prepare(sql);
    if (!stmt.ok()) return stmt.status();
    Stmt bound(*stmt, db_);
    int index = 0;
    int rc = SQLITE_OK;
    ((rc = rc == SQLITE_OK ? BindValue(*stmt, ++index, args) : rc), ...);
    (void)index;
    if (rc != SQLITE_OK) return StatusFromSqlite(rc, db_, "bind");
    return bound;
  }

  // Runs a statement to completion.
  template <typename... Args>
  [[nodiscard]] core::Status Exec(std::string_view sql, const Args&... args) {
    auto stmt = Query(sql, args...);
    if (!stmt.ok()) return stmt.status();
    return stmt->Run();
  }

  // The first column of the first row, nullopt if there is no row. Runs the
  // statement to its end.
  template <typename... Args>
  [[nodiscard]] core::StatusOr<std::optional<int64_t>> QueryInt(std::string_view sql,
                                                                const Args&... args) {
    auto stmt = Query(sql, args...);
    if (!stmt.ok()) return stmt.status();
    auto row = stmt->Next();
    if (!row.ok()) return row.status();
    if (!*row) return std::optional<int64_t>();
    int64_t value = stmt->Int(0);
    // Finish it: a write with RETURNING counts as done only at the end.
    core::Status done = stmt->Run();
    if (!done.ok()) return done;
    return std::optional<int64_t>(value);
  }

  // Runs SQL text holding several statements (migrations), uncached.
  [[nodiscard]] core::Status ExecScript(const std::string& sql);

  // Rows changed by completed statements since the connection opened.
  int64_t TotalChanges() const { return sqlite3_total_changes64(db_); }
  // Rows changed by the last statement.
  int64_t Changes() const { return sqlite3_changes64(db_); }
  bool InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }
  sqlite3* raw() const { return db_; }

 private:
  explicit Connection(sqlite3* db) : db_(db) {}
  core::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql);

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*, StringHash, std::equal_to<>> cache_;
};

}  // namespace mpim::store::sqlite
