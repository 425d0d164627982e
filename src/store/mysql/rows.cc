#include "store/mysql/rows.h"

namespace mpim::store::mysql {

core::Status InsertPrivateConversation(Connection& c, const std::string& conv_id, int64_t user_a,
                                       int64_t user_b, int64_t now) {
  // IGNORE: only the primary key can conflict (every value is checked), and
  // then the conversation exists, which is what we want.
  MPIM_RETURN_IF_ERROR(
      c.Exec("INSERT IGNORE INTO conversations (conv_id, type, last_activity, created_at)"
             " VALUES (?, 0, ?, ?)",
             conv_id, now, now));
  core::Status st = c.Exec(
      "INSERT INTO user_conversations (user_id, conv_id) VALUES (?, ?), (?, ?)"
      " ON DUPLICATE KEY UPDATE user_id = user_id",
      user_a, conv_id, user_b, conv_id);
  if (st.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("user " + std::to_string(user_a) + " or " + std::to_string(user_b) +
                               " not found");
  }
  return st;
}

}  // namespace mpim::store::mysql
