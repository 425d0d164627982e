#include "store/sqlite/rows.h"

#include <string>

namespace mpim::store::sqlite {

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

}  // namespace mpim::store::sqlite
