// What the SQLite stores share beyond store/sql_rows.h and store/sql_pages.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/common.h"
#include "store/message_store.h"
#include "store/sql_pages.h"
#include "store/sql_rows.h"
#include "store/sqlite/connection.h"

namespace mpim::store::sqlite {

// Creates the private conversation `conv_id` of users a and b (the row and
// both users' cursors), with last_seq = 0. kNotFound for an unknown user.
core::Status InsertPrivateConversation(Connection& c, const std::string& conv_id, int64_t user_a,
                                       int64_t user_b, int64_t now);

// The id the last INSERT generated (for store/sql_queries.h).
inline int64_t LastInsertId(Connection& c) { return sqlite3_last_insert_rowid(c.raw()); }
// A table of the ids in a JSON array bound as one parameter (IdsJson).
inline const char* IdsTable(Connection&) { return "(SELECT value FROM json_each(?))"; }

using store::CheckLimit;
using store::CollectRows;
using store::FillPage;
using store::QueryPage;

}  // namespace mpim::store::sqlite
