#include "store/mysql/connection.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace mpim::store::mysql {
namespace {

bool IsIntType(int type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_YEAR:
      return true;
    default:
      return false;
  }
}

// Errors after which the connection cannot be used again.
bool BreaksConnection(unsigned int error) {
  return (error >= CR_MIN_ERROR && error <= CR_MAX_ERROR) || error == ER_CONNECTION_KILLED ||
         error == ER_SERVER_SHUTDOWN || error == ER_QUERY_INTERRUPTED;
}

}  // namespace

core::Status StatusFromMysql(unsigned int error, std::string_view message,
                             std::string_view context) {
  std::string text = std::string(context) + ": " + std::string(message) + " (" +
                     std::to_string(error) + ")";
  switch (error) {
    case ER_DUP_ENTRY:
    case ER_DUP_KEY:
    case ER_DUP_ENTRY_WITH_KEY_NAME:
      return absl::AlreadyExistsError(text);
    case ER_NO_REFERENCED_ROW:
    case ER_NO_REFERENCED_ROW_2:
      return absl::NotFoundError(text);
    case ER_BAD_NULL_ERROR:
    case ER_DATA_TOO_LONG:
    case ER_TRUNCATED_WRONG_VALUE_FOR_FIELD:
    case ER_WARN_DATA_OUT_OF_RANGE:
    case ER_CONSTRAINT_FAILED:
      return absl::InvalidArgumentError(text);
    case ER_LOCK_DEADLOCK:
    case ER_LOCK_WAIT_TIMEOUT:
      return absl::AbortedError(text);
    case ER_CON_COUNT_ERROR:
    case ER_TOO_MANY_USER_CONNECTIONS:
    case ER_OPTION_PREVENTS_STATEMENT:  // read-only
    case ER_READ_ONLY_MODE:
    case ER_DISK_FULL:
    case ER_RECORD_FILE_FULL:
    case ER_GET_ERRNO:
    case ER_CONNECTION_KILLED:
    case ER_SERVER_SHUTDOWN:
    case ER_QUERY_INTERRUPTED:
    case ER_ACCESS_DENIED_ERROR:
    case ER_DBACCESS_DENIED_ERROR:
    case ER_BAD_DB_ERROR:
      return absl::UnavailableError(text);
    default:
      break;
  }
  if (error >= CR_MIN_ERROR && error <= CR_MAX_ERROR) return absl::UnavailableError(text);
  return absl::InternalError(text);
}

int64_t Rows::Int(int col) const {
  const CellValue& c = Cell(col);
  if (c.null) return 0;
  if (c.is_int) return c.i;
  // DECIMAL results (SUM) arrive as text; take the integer part.
  int64_t v = 0;
  std::from_chars(c.text.data(), c.text.data() + c.text.size(), v);
  return v;
}

core::StatusOr<std::unique_ptr<Connection>> Connection::Open(const MysqlOptions& options) {
  MYSQL* db = mysql_init(nullptr);
  if (db == nullptr) return absl::UnavailableError("mysql_init: out of memory");
  unsigned int timeout_s = static_cast<unsigned int>(std::max(1, (options.timeout_ms + 999) / 1000));
  my_bool no = 0;
  mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout_s);
  mysql_optionsv(db, MYSQL_OPT_RECONNECT, &no);
  mysql_optionsv(db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  // A lock held by a node that died waits at most the timeout, then the
  // write fails (kAborted, retried) instead of hanging for 50 s.
  mysql_optionsv(db, MYSQL_INIT_COMMAND, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
  const std::string session =
      "SET SESSION sql_mode = "
      "'STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
      "innodb_lock_wait_timeout = " +
      std::to_string(timeout_s) + ", time_zone = '+00:00'";
  mysql_optionsv(db, MYSQL_INIT_COMMAND, session.c_str());
  if (mysql_real_connect(db, options.host.c_str(), options.user.c_str(), options.password.c_str(),
                         options.database.c_str(), options.port, nullptr,
                         CLIENT_FOUND_ROWS) == nullptr) {
    core::Status st = StatusFromMysql(mysql_errno(db), mysql_error(db),
                                      "connect to " + options.host + ":" +
                                          std::to_string(options.port) + "/" + options.database);
    mysql_close(db);
    // A refused login or an unknown database will not heal by retrying the
    // same call, but it is still the engine being unreachable for us.
    return absl::UnavailableError(st.message());
  }
  std::unique_ptr<Connection> conn(new Connection(db));
  if (mysql_autocommit(db, 0) != 0) {
    return conn->Fail(mysql_errno(db), mysql_error(db), "autocommit off");
  }
  return conn;
}

Connection::~Connection() {
  for (auto& [sql, p] : cache_) mysql_stmt_close(p.stmt);
  mysql_close(db_);
}

core::Status Connection::Fail(unsigned int error, std::string_view message,
                              std::string_view context) {
  if (BreaksConnection(error)) broken_ = true;
  if (error == ER_LOCK_DEADLOCK || error == ER_LOCK_WAIT_TIMEOUT) must_retry_ = true;
  return StatusFromMysql(error, message, context);
}

core::StatusOr<Connection::Prepared*> Connection::Prepare(std::string_view sql) {
  if (auto it = cache_.find(sql); it != cache_.end()) return &it->second;
  MYSQL_STMT* stmt = mysql_stmt_init(db_);
  if (stmt == nullptr) return Fail(mysql_errno(db_), mysql_error(db_), "prepare");
  if (mysql_stmt_prepare(stmt, sql.data(), sql.size()) != 0) {
    core::Status st = Fail(mysql_stmt_errno(stmt), mysql_stmt_error(stmt),
                           "prepare \"" + std::string(sql.substr(0, 80)) + "\"");
    mysql_stmt_close(stmt);
    return st;
  }
  Prepared p;
  p.stmt = stmt;
  if (MYSQL_RES* meta = mysql_stmt_result_metadata(stmt)) {
    unsigned int n = mysql_num_fields(meta);
    MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    for (unsigned int i = 0; i < n; ++i) p.column_types.push_back(fields[i].type);
    mysql_free_result(meta);
  }
  return &cache_.emplace(std::string(sql), std::move(p)).first->second;
}

core::StatusOr<Rows> Connection::Run(std::string_view sql, const Param* params, size_t count) {
  if (broken_) return absl::UnavailableError("database connection lost");
  MPIM_ASSIGN_OR_RETURN(Prepared * p, Prepare(sql));
  MYSQL_STMT* stmt = p->stmt;
  if (mysql_stmt_param_count(stmt) != count) {
    return absl::InternalError("statement takes " + std::to_string(mysql_stmt_param_count(stmt)) +
                               " values, given " + std::to_string(count));
  }
  std::vector<MYSQL_BIND> binds(count);
  for (size_t i = 0; i < count; ++i) {
    MYSQL_BIND& b = binds[i];
    switch (params[i].kind) {
      case Param::Kind::kNull:
        b.buffer_type = MYSQL_TYPE_NULL;
        break;
      case Param::Kind::kInt:
        b.buffer_type = MYSQL_TYPE_LONGLONG;
        b.buffer = const_cast<int64_t*>(&params[i].i);
        break;
      case Param::Kind::kText:
        b.buffer_type = MYSQL_TYPE_STRING;
        b.buffer = const_cast<char*>(params[i].s.data());
        b.buffer_length = params[i].s.size();
        break;
    }
  }
  if (count > 0 && mysql_stmt_bind_param(stmt, binds.data()) != 0) {
    return Fail(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), "bind");
  }
  if (mysql_stmt_execute(stmt) != 0) {
    return Fail(mysql_stmt_errno(stmt), mysql_stmt_error(stmt), "execute");
  }
  Rows rows;
  if (!p->column_types.empty()) {
    MPIM_RETURN_IF_ERROR(FetchAll(*p, &rows));
    // INSERT/DELETE ... RETURNING: each row returned is a row changed.
    const bool select = sql.size() >= 6 && (sql[0] == 'S' || sql[0] == 's');
    changes_ = select ? 0 : static_cast<int64_t>(rows.size());
    total_changes_ += changes_;
  } else {
    changes_ = static_cast<int64_t>(mysql_stmt_affected_rows(stmt));
    total_changes_ += changes_;
    last_insert_id_ = static_cast<int64_t>(mysql_stmt_insert_id(stmt));
  }
  return rows;
}

core::Status Connection::FetchAll(Prepared& p, Rows* rows) {
  MYSQL_STMT* stmt = p.stmt;
  const size_t n = p.column_types.size();
  constexpr unsigned long kInline = 256;
  std::vector<MYSQL_BIND> binds(n);
  std::vector<int64_t> ints(n);
  std::vector<unsigned long> lengths(n);
  std::vector<my_bool> nulls(n);
  std::vector<std::array<char, kInline>> buffers(n);
  for (size_t c = 0; c < n; ++c) {
    MYSQL_BIND& b = binds[c];
    b.is_null = &nulls[c];
    b.length = &lengths[c];
    if (IsIntType(p.column_types[c])) {
      b.buffer_type = MYSQL_TYPE_LONGLONG;
      b.buffer = &ints[c];
    } else {
      b.buffer_type = MYSQL_TYPE_STRING;
      b.buffer = buffers[c].data();
      b.buffer_length = kInline;
    }
  }
  auto fail = [&](const char* what) {
    // A fetch can fail with the error on the connection, not the statement
    // (its errno then 0): take whichever says why, so that a deadlock is
    // retried as one.
    const bool on_stmt = mysql_stmt_errno(stmt) != 0;
    core::Status st = Fail(on_stmt ? mysql_stmt_errno(stmt) : mysql_errno(db_),
                           on_stmt ? mysql_stmt_error(stmt) : mysql_error(db_), what);
    mysql_stmt_free_result(stmt);
    return st;
  };
  if (mysql_stmt_bind_result(stmt, binds.data()) != 0) return fail("bind result");
  rows->columns_ = n;
  for (;;) {
    int rc = mysql_stmt_fetch(stmt);
    if (rc == MYSQL_NO_DATA) break;
    if (rc != 0 && rc != MYSQL_DATA_TRUNCATED) return fail("fetch");
    for (size_t c = 0; c < n; ++c) {
      Rows::CellValue cell;
      cell.null = nulls[c] != 0;
      if (!cell.null) {
        if (binds[c].buffer_type == MYSQL_TYPE_LONGLONG) {
          cell.is_int = true;
          cell.i = ints[c];
        } else if (lengths[c] <= kInline) {
          cell.text.assign(buffers[c].data(), lengths[c]);
        } else {
          cell.text.resize(lengths[c]);
          MYSQL_BIND whole{};
          unsigned long length = 0;
          whole.buffer_type = MYSQL_TYPE_STRING;
          whole.buffer = cell.text.data();
          whole.buffer_length = lengths[c];
          whole.length = &length;
          if (mysql_stmt_fetch_column(stmt, &whole, static_cast<unsigned int>(c), 0) != 0) {
            return fail("fetch column");
          }
        }
      }
      rows->cells_.push_back(std::move(cell));
    }
    ++rows->rows_;
  }
  mysql_stmt_free_result(stmt);
  return core::Status();
}

core::Status Connection::ExecText(std::string_view sql) {
  if (broken_) return absl::UnavailableError("database connection lost");
  if (mysql_real_query(db_, sql.data(), sql.size()) != 0) {
    return Fail(mysql_errno(db_), mysql_error(db_), "query \"" + std::string(sql.substr(0, 80)) + "\"");
  }
  if (MYSQL_RES* res = mysql_store_result(db_)) mysql_free_result(res);
  changes_ = static_cast<int64_t>(mysql_affected_rows(db_));
  return core::Status();
}

core::Status Connection::Commit() {
  if (broken_) return absl::UnavailableError("database connection lost");
  must_retry_ = false;
  if (mysql_commit(db_) != 0) return Fail(mysql_errno(db_), mysql_error(db_), "commit");
  return core::Status();
}

core::Status Connection::Rollback() {
  if (broken_) return absl::UnavailableError("database connection lost");
  must_retry_ = false;
  if (mysql_rollback(db_) != 0) return Fail(mysql_errno(db_), mysql_error(db_), "rollback");
  return core::Status();
}

}  // namespace mpim::store::mysql
