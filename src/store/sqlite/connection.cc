#include "store/sqlite/connection.h"

#include <mutex>
#include <string>

#include "store/sqlite/wal_batch_vfs.h"

namespace mpim::store::sqlite {
namespace {

// Process-wide SQLite settings, applied before SQLite initializes (if
// something initialized it already, they are left as they were).
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Memory statistics take a global mutex on every allocation.
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_initialize();
  });
}

std::string Message(int rc, sqlite3* db, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  // The connection's message is only about this code if it reports it.
  if (db != nullptr && sqlite3_extended_errcode(db) == rc) {
    msg += sqlite3_errmsg(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  return msg;
}

}  // namespace

core::Status StatusFromSqlite(int rc, sqlite3* db, std::string_view context) {
  if (rc == SQLITE_OK || rc == SQLITE_DONE || rc == SQLITE_ROW) return core::Status();
  std::string msg = Message(rc, db, context);
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
      return absl::AlreadyExistsError(msg);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::NotFoundError(msg);
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return absl::InvalidArgumentError(msg);
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_NOMEM:
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

bool IsStorageFailure(const core::Status& status) {
  return status.code() == absl::StatusCode::kUnavailable;
}

Stmt::~Stmt() {
  if (stmt_ != nullptr) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
}

core::StatusOr<bool> Stmt::Next() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return StatusFromSqlite(sqlite3_extended_errcode(db_), db_, sqlite3_sql(stmt_));
}

core::Status Stmt::Run() {
  for (;;) {
    auto row = Next();
    if (!row.ok()) return row.status();
    if (!*row) return core::Status();
  }
}

std::string Stmt::Text(int col) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  if (p == nullptr) return std::string();
  return std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
}

core::StatusOr<std::unique_ptr<Connection>> Connection::Open(const SqliteOptions& options,
                                                             bool writer) {
  ConfigureSqliteOnce();
  sqlite3* db = nullptr;
  // Each connection is used by one thread at a time: no SQLite mutexes.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  if (writer) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(options.path.c_str(), &db, flags, WalBatchVfs(options.vfs));
  if (rc != SQLITE_OK) {
    core::Status status = StatusFromSqlite(rc, db, "open " + options.path);
    sqlite3_close_v2(db);
    if (status.code() == absl::StatusCode::kInternal) {
      return absl::UnavailableError(std::string(status.message()));
    }
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  // More and larger lookaside slots: statements allocate small objects on
  // every step.
  sqlite3_db_config(db, SQLITE_DBCONFIG_LOOKASIDE, nullptr, 512, 512);
  std::unique_ptr<Connection> conn(new Connection(db));
  std::string sync = options.synchronous == "full" ? "FULL" : "NORMAL";
  std::string pragmas =
      "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;"
      "PRAGMA synchronous = " +
      sync + ";" + "PRAGMA cache_size = -" + std::to_string(options.cache_kib) + ";" +
      "PRAGMA temp_store = MEMORY;";
  if (writer) {
    // journal_size_limit: a WAL that grew (a burst, a long read holding the
    // checkpoint back) is cut back to 64 MiB when it starts over.
    pragmas = "PRAGMA journal_mode = WAL; PRAGMA journal_size_limit = 67108864;" + pragmas;
  } else {
    pragmas += "PRAGMA query_only = ON;";
  }
  MPIM_RETURN_IF_ERROR(conn->ExecScript(pragmas));
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
  sqlite3_close_v2(db_);
}

core::StatusOr<sqlite3_stmt*> Connection::Prepare(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return StatusFromSqlite(rc, db_, "prepare");
  cache_.emplace(std::string(sql), stmt);
  return stmt;
}

core::Status Connection::ExecScript(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  return StatusFromSqlite(rc == SQLITE_OK ? rc : sqlite3_extended_errcode(db_), db_, "exec");
}

}  // namespace mpim::store::sqlite
