// What the MySQL stores share beyond store/sql_rows.h and store/sql_pages.h.
#pragma once

#include <string>

#include "core/status.h"
#include "store/message_store.h"
#include "store/mysql/connection.h"
#include "store/sql_pages.h"
#include "store/sql_rows.h"

namespace mpim::store::mysql {

using store::CheckLimit;
using store::CollectRows;
using store::FillPage;
using store::QueryPage;

// The id the last INSERT generated (for store/sql_queries.h).
inline int64_t LastInsertId(Connection& c) { return c.LastInsertId(); }
// A table of the ids in a JSON array bound as one parameter (IdsJson).
inline const char* IdsTable(Connection&) {
  return "(SELECT id FROM JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS ids)";
}

// Creates the private conversation `conv_id` of users a and b (the row and
// both users' cursors), with last_seq = 0. kNotFound for an unknown user.
// Another node making it at the same time is fine: the second one finds it.
core::Status InsertPrivateConversation(Connection& c, const std::string& conv_id, int64_t user_a,
                                       int64_t user_b, int64_t now);

}  // namespace mpim::store::mysql
