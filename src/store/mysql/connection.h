// One MariaDB/MySQL connection (Connector/C) with its cache of prepared
// statements, and the mapping of server and client error codes onto MPIM
// status codes. Every statement with values goes through a prepared
// statement: values are bound, never spliced into SQL text.
//
// Not thread-safe: a Connection belongs to one thread (the writer thread or
// one reader thread) for its whole life. Calls block that thread (the
// executor's threads, never an io thread) for at most the timeout.
//
// A connection that lost its server (or timed out) is `broken()`: every
// call fails with kUnavailable until the executor opens a new one.
#pragma once

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/mysql/options.h"
#include "store/status_macros.h"

struct st_mysql;
struct st_mysql_stmt;

namespace mpim::store::mysql {

// The Status for a MySQL error number (server ER_* or client CR_*):
//   duplicate key -> kAlreadyExists; missing foreign key -> kNotFound;
//   check, null, too long, bad value -> kInvalidArgument; lock deadlock or
//   lock wait timeout -> kAborted (the executor retries the transaction);
//   lost connection, server gone or shutting down, read-only, disk or table
//   full, too many connections -> kUnavailable; anything else -> kInternal.
core::Status StatusFromMysql(unsigned int error, std::string_view message,
                             std::string_view context);

// A value bound to one parameter.
struct Param {
  enum class Kind { kNull, kInt, kText } kind = Kind::kNull;
  int64_t i = 0;
  std::string_view s;
};
inline Param ToParam(std::nullptr_t) { return {}; }
template <std::integral T>
Param ToParam(T v) {
  return {Param::Kind::kInt, static_cast<int64_t>(v), {}};
}
inline Param ToParam(std::string_view v) { return {Param::Kind::kText, 0, v}; }
inline Param ToParam(const std::string& v) { return ToParam(std::string_view(v)); }
inline Param ToParam(const char* v) { return ToParam(std::string_view(v)); }
template <typename T>
Param ToParam(const std::optional<T>& v) {
  return v ? ToParam(*v) : Param{};
}

// The rows of one executed statement, fetched whole; Next() steps through
// them like an SQLite statement.
class Rows {
 public:
  // True when a row is current, false past the last. (StatusOr so that the
  // SQL code reads like the SQLite engine's.)
  core::StatusOr<bool> Next() {
    if (next_ >= rows_) return false;
    row_ = next_++;
    return true;
  }
  int64_t Int(int col) const;
  bool Bool(int col) const { return Int(col) != 0; }
  bool IsNull(int col) const { return Cell(col).null; }
  std::string Text(int col) const { return Cell(col).text; }
  size_t size() const { return rows_; }

 private:
  friend class Connection;
  struct CellValue {
    bool null = true;
    bool is_int = false;
    int64_t i = 0;
    std::string text;
  };
  const CellValue& Cell(int col) const {
    return cells_[row_ * columns_ + static_cast<size_t>(col)];
  }
  size_t columns_ = 0;
  size_t rows_ = 0;
  size_t next_ = 0;
  size_t row_ = 0;
  std::vector<CellValue> cells_;
};

class Connection {
 public:
  // Connects (utf8mb4, READ COMMITTED, autocommit off, found rows counted as
  // changed like SQLite). kUnavailable if the server cannot be reached.
  static core::StatusOr<std::unique_ptr<Connection>> Open(const MysqlOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Executes `sql` with `args` bound to its ?s and fetches its rows.
  template <typename... Args>
  [[nodiscard]] core::StatusOr<Rows> Query(std::string_view sql, const Args&... args) {
    const Param params[] = {ToParam(args)..., Param{}};
    return Run(sql, params, sizeof...(Args));
  }

  // Executes a statement; Changes() tells the rows it changed (or matched).
  template <typename... Args>
  [[nodiscard]] core::Status Exec(std::string_view sql, const Args&... args) {
    const Param params[] = {ToParam(args)..., Param{}};
    return Run(sql, params, sizeof...(Args)).status();
  }

  // The first column of the first row, nullopt if there is no row.
  template <typename... Args>
  [[nodiscard]] core::StatusOr<std::optional<int64_t>> QueryInt(std::string_view sql,
                                                                const Args&... args) {
    MPIM_ASSIGN_OR_RETURN(Rows rows, Query(sql, args...));
    MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row || rows.IsNull(0)) return std::optional<int64_t>();
    return std::optional<int64_t>(rows.Int(0));
  }

  // Query and Exec with values built at run time (multi-row statements).
  [[nodiscard]] core::StatusOr<Rows> QueryParams(std::string_view sql,
                                                 const std::vector<Param>& params) {
    return Run(sql, params.data(), params.size());
  }
  [[nodiscard]] core::Status ExecParams(std::string_view sql, const std::vector<Param>& params) {
    return Run(sql, params.data(), params.size()).status();
  }

  // Runs SQL text without values (migrations, transaction control), through
  // the text protocol.
  [[nodiscard]] core::Status ExecText(std::string_view sql);

  core::Status Commit();
  core::Status Rollback();

  // Rows changed (or matched, for UPDATE) by the last statement.
  int64_t Changes() const { return changes_; }
  // Rows changed by every statement since the connection opened.
  int64_t TotalChanges() const { return total_changes_; }
  // The AUTO_INCREMENT value the last INSERT generated.
  int64_t LastInsertId() const { return last_insert_id_; }

  bool broken() const { return broken_; }
  // A lock deadlock or wait timeout hit the open transaction: the server
  // rolled back (all or part of) it, so it must be rolled back and run
  // again. Cleared by Commit and Rollback.
  bool must_retry() const { return must_retry_; }

 private:
  struct Prepared {
    st_mysql_stmt* stmt = nullptr;
    std::vector<int> column_types;  // enum_field_types of the result set
  };

  explicit Connection(st_mysql* db) : db_(db) {}
  core::StatusOr<Rows> Run(std::string_view sql, const Param* params, size_t count);
  core::StatusOr<Prepared*> Prepare(std::string_view sql);
  core::Status Fail(unsigned int error, std::string_view message, std::string_view context);
  core::Status FetchAll(Prepared& p, Rows* rows);

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  st_mysql* db_;
  std::unordered_map<std::string, Prepared, StringHash, std::equal_to<>> cache_;
  int64_t changes_ = 0;
  int64_t total_changes_ = 0;
  int64_t last_insert_id_ = 0;
  bool broken_ = false;
  bool must_retry_ = false;
};

}  // namespace mpim::store::mysql
