#include "store/sql_rows.h"

#include <algorithm>
#include <string>
#include <string_view>

namespace mpim::store {

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

const std::string& SelectUserConversations() {
  static const std::string kSql =
      std::string("SELECT ") + kConversationColumns +
      ", uc.read_seq, uc.muted, uc.pinned,"
      " (SELECT count(*) FROM messages m WHERE m.conv_id = c.conv_id"
      "   AND m.seq > uc.read_seq AND m.sender <> uc.user_id), " +
      MessageColumns("lm") +
      " FROM user_conversations uc JOIN conversations c ON c.conv_id = uc.conv_id"
      " LEFT JOIN messages lm ON lm.msg_id = c.last_msg_id ";
  return kSql;
}

core::Status CheckPair(int64_t a, int64_t b) {
  if (a == b) return absl::InvalidArgumentError("a user cannot do this to themself");
  return core::Status();
}

core::Status UnknownUsers(const core::Status& status, int64_t a, int64_t b) {
  if (status.code() != absl::StatusCode::kNotFound) return status;
  return absl::NotFoundError("user " + std::to_string(a) + " or " + std::to_string(b) +
                             " not found");
}

int64_t RevokeTime(int64_t now) { return now > 0 ? now : 1; }

core::Status GroupNotFound(int64_t group_id) {
  return absl::NotFoundError("group " + std::to_string(group_id) + " not found");
}

core::Status NotTakingPart(int64_t user_id, const std::string& conv_id) {
  return absl::NotFoundError("user " + std::to_string(user_id) + " has no conversation " + conv_id);
}

int64_t Backoff(int64_t base, int64_t max, int attempt) {
  int64_t delay = base;
  for (int i = 1; i < attempt && delay < max; ++i) delay = delay > max / 2 ? max : delay * 2;
  return std::min(delay, max);
}

std::string IdsJson(const std::vector<int64_t>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(ids[i]);
  }
  out += ']';
  return out;
}

core::Status LeaseLost(int64_t job_id, int attempt) {
  return absl::NotFoundError("job " + std::to_string(job_id) + " attempt " +
                             std::to_string(attempt) + " is not leased (expired or settled)");
}

}  // namespace mpim::store
