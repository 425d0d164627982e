#include "store/sqlite/rows.h"

#include <string>

namespace mpim::store::sqlite {

std::string MessageColumns(const std::string& alias) {
  std::string out;
  std::string_view cols = kMessageColumns;
  while (!cols.empty()) {
    size_t comma = cols.find(", ");
    if (!out.empty()) out += ", ";
    out += alias + "." + std::string(cols.substr(0, comma));
    cols = comma == std::string_view::npos ? std::string_view() : cols.substr(comma + 2);
  }
  return out;
}

Message ReadMessage(const Stmt& row, int first) {
  Message m;
  m.msg_id = row.Int(first + 0);
  m.conv_id = row.Text(first + 1);
  m.seq = row.Int(first + 2);
  m.sender = row.Int(first + 3);
  m.recipient = row.Int(first + 4);
  m.type = row.Text(first + 5);
  m.body = row.Text(first + 6);
  m.ts = row.Int(first + 7);
  m.client_msg_id = row.Text(first + 8);
  m.recalled = row.Bool(first + 9);
  return m;
}

core::Status InsertPrivateConversation(Connection& c, const std::string& conv_id, int64_t user_a,
                                       int64_t user_b, int64_t now) {
  MPIM_RETURN_IF_ERROR(
      c.Exec("INSERT INTO conversations (conv_id, type, last_activity, created_at)"
             " VALUES (?1, 0, ?2, ?2)",
             conv_id, now));
  core::Status st =
      c.Exec("INSERT INTO user_conversations (user_id, conv_id) VALUES (?1, ?3), (?2, ?3)", user_a,
             user_b, conv_id);
  if (st.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("user " + std::to_string(user_a) + " or " + std::to_string(user_b) +
                               " not found");
  }
  return st;
}

core::Status CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxPageLimit) {
    return absl::InvalidArgumentError("limit must be in [1, " + std::to_string(kMaxPageLimit) +
                                      "], got " + std::to_string(limit));
  }
  return core::Status();
}

}  // namespace mpim::store::sqlite
