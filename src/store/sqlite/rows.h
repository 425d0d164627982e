// Row mapping and argument checks shared by the SQLite stores.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/common.h"
#include "store/message_store.h"
#include "store/sqlite/connection.h"

namespace mpim::store::sqlite {

// The message columns in the order ReadMessage expects, for "SELECT
// <kMessageColumns> FROM messages".
inline constexpr const char* kMessageColumns =
    "msg_id, conv_id, seq, sender, recipient, type, body, ts, client_msg_id, recalled";

// kMessageColumns, each qualified with `alias` ("m" -> "m.msg_id, ...").
std::string MessageColumns(const std::string& alias);

// Reads a message from the current row, starting at column `first`.
Message ReadMessage(const Stmt& row, int first = 0);

// Creates the private conversation `conv_id` of users a and b (the row and
// both users' cursors), with last_seq = 0. kNotFound for an unknown user.
core::Status InsertPrivateConversation(Connection& c, const std::string& conv_id, int64_t user_a,
                                       int64_t user_b, int64_t now);

// kInvalidArgument unless 1 <= limit <= kMaxPageLimit.
core::Status CheckLimit(int limit);

// Runs `stmt` and appends `read(row)` for each row to page->items, taking at
// most `limit` and setting has_more when the query returned limit + 1 rows
// (so query with LIMIT limit + 1).
template <typename T, typename Read>
core::Status FillPage(Stmt& stmt, int limit, Page<T>* page, Read&& read) {
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, stmt.Next());
    if (!row) return core::Status();
    if (static_cast<int>(page->items.size()) == limit) {
      page->has_more = true;
      return core::Status();
    }
    page->items.push_back(read(stmt));
  }
}

// One page of T read by `read` from `sql`, whose last parameter is its LIMIT:
// `args` are bound first, then limit + 1. kInvalidArgument for a bad limit.
template <typename T, typename Read, typename... Args>
core::StatusOr<Page<T>> QueryPage(Connection& c, std::string_view sql, int limit, Read&& read,
                                  const Args&... args) {
  MPIM_RETURN_IF_ERROR(CheckLimit(limit));
  MPIM_ASSIGN_OR_RETURN(Stmt st, c.Query(sql, args..., limit + 1));
  Page<T> page;
  MPIM_RETURN_IF_ERROR(FillPage(st, limit, &page, read));
  return page;
}

// Every row of `stmt`, read by `read`.
template <typename T, typename Read>
core::StatusOr<std::vector<T>> CollectRows(Stmt& stmt, Read&& read) {
  std::vector<T> out;
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, stmt.Next());
    if (!row) return out;
    out.push_back(read(stmt));
  }
}

}  // namespace mpim::store::sqlite
