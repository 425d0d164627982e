#include "store/message_store.h"

namespace mpim::store {

core::Status ValidateAppend(const AppendRequest& r, ConvRef* ref) {
  constexpr size_t kMaxClientMsgIdBytes = 64;
  auto parsed = ParseConvId(r.conv_id);
  if (!parsed) return absl::InvalidArgumentError("malformed conv_id: " + r.conv_id);
  *ref = *parsed;
  if (r.msg_id <= 0) return absl::InvalidArgumentError("msg_id must be > 0");
  if (r.type != "text" && r.type != "custom" && r.type != "system") {
    return absl::InvalidArgumentError("unknown message type: " + r.type);
  }
  if (r.client_msg_id.size() > kMaxClientMsgIdBytes) {
    return absl::InvalidArgumentError("client_msg_id longer than 64 bytes");
  }
  return core::Status();
}

}  // namespace mpim::store
