// The message pipeline (architecture.md section 4): validate, rate-limit,
// check blocks, dedup on (sender, client_msg_id), assign msg_id and seq,
// persist through the store's group commit, and only then answer; then
// dispatch to the recipients' live connections.
//
// Asynchronous; callbacks run once on an internal thread. Errors:
// invalid_argument, not_found (unknown recipient), permission_denied
// (blocked, not a member), payload_too_large, rate_limited, unavailable.
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "core/callback.h"
#include "service/auth_service.h"
#include "service/deliverer.h"
#include "store/message_store.h"

namespace mpim::service {

struct SendRequest {
  bool to_group = false;  // false: to a user
  int64_t to_id = 0;
  std::string client_msg_id;  // 1-64 characters
  std::string type = "text";  // "text" | "custom"
  std::string body;           // JSON object text, already parsed and re-serialized
  bool qos1 = true;
  Priority priority = Priority::kNormal;
  uint64_t origin_conn = 0;  // the sending socket (not sent the msg event); 0: REST
};

struct SendResult {
  int64_t msg_id = 0;
  std::string conv_id;
  int64_t seq = 0;
  int64_t ts = 0;
};

class MessageService {
 public:
  virtual ~MessageService() = default;
  // `ordered` (may be empty) runs once the send's place is fixed: any Send
  // by the same user to the same conversation that starts after it is
  // stored after it. A caller that waits for `ordered` (or `done`, whichever
  // comes first) before its next send may have many sends in flight and
  // still get seqs in its send order. It runs on any thread, before or after
  // `done`, at most once, and not at all if the send fails before then.
  using OrderedCallback = absl::AnyInvocable<void() &&>;
  virtual void Send(Principal who, SendRequest request, core::Callback<SendResult> done,
                    OrderedCallback ordered) = 0;

  // A server-made `system` message in a group conversation (membership
  // changes), from `by`, delivered like any other message.
  virtual void PostSystem(int64_t group_id, int64_t by, std::string body_json,
                          core::Callback<store::Message> done) = 0;

  // Replaces the body with a tombstone for everyone and sends `recall` to
  // the members: the sender within messages.recall_window_ms, or a group's
  // owner or admin at any time. Returns the recalled message.
  virtual void Recall(Principal who, int64_t msg_id, core::Callback<store::Message> done) = 0;
};

}  // namespace mpim::service
