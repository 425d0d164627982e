// Paging and row collection shared by the SQL engines (SQLite and MySQL):
// templates over the engine's row cursor (anything with
// `core::StatusOr<bool> Next()`) and connection (with `Query(sql, args...)`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/common.h"
#include "store/status_macros.h"

namespace mpim::store {

// kInvalidArgument unless 1 <= limit <= kMaxPageLimit.
core::Status CheckLimit(int limit);

// Steps through `rows` and appends `read(rows)` for each row to page->items,
// taking at most `limit` and setting has_more when the query returned
// limit + 1 rows (so query with LIMIT limit + 1).
template <typename T, typename Rows, typename Read>
core::Status FillPage(Rows& rows, int limit, Page<T>* page, Read&& read) {
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row) return core::Status();
    if (static_cast<int>(page->items.size()) == limit) {
      page->has_more = true;
      return core::Status();
    }
    page->items.push_back(read(rows));
  }
}

// One page of T read by `read` from `sql`, whose last parameter is its LIMIT:
// `args` are bound first, then limit + 1. kInvalidArgument for a bad limit.
template <typename T, typename Conn, typename Read, typename... Args>
core::StatusOr<Page<T>> QueryPage(Conn& c, std::string_view sql, int limit, Read&& read,
                                  const Args&... args) {
  MPIM_RETURN_IF_ERROR(CheckLimit(limit));
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(sql, args..., limit + 1));
  Page<T> page;
  MPIM_RETURN_IF_ERROR(FillPage(rows, limit, &page, read));
  return page;
}

// Every row, read by `read`.
template <typename T, typename Rows, typename Read>
core::StatusOr<std::vector<T>> CollectRows(Rows& rows, Read&& read) {
  std::vector<T> out;
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row) return out;
    out.push_back(read(rows));
  }
}

}  // namespace mpim::store
