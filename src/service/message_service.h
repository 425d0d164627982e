// The message pipeline (architecture.md section 4): validate, rate-limit,
// check blocks, dedup on (sender, client_msg_id), assign msg_id and seq,
// persist through the store's group commit, and only then answer; then
// dispatch to the recipients' live connections.
//
// Asynchronous; callbacks run once on an internal thread (or inline when
// the send fails before any I/O). Never blocks the caller: io threads call
// it. May be remote (a logic node over gRPC): then every call is a network
// round trip and fails with unavailable (node unreachable) or
// deadline_exceeded as well. Errors: invalid_argument, not_found (unknown
// recipient), permission_denied (blocked, not a member),
// payload_too_large, rate_limited, unavailable.
#pragma once

#include <cstdint>
#include <string>

#include "absl/functional/any_invocable.h"
#include "core/callback.h"
#include "core/trace.h"
#include "route/conn_id.h"
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
  route::ConnId origin_conn;  // the sending socket (not sent the msg event); empty: REST
  // The trace this send belongs to (core/trace.h); not recording: untraced.
  core::trace::SpanContext trace;
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
  // still get seqs in its send order (the gateway's send window does: up to
  // 64 sends per session in flight). It runs on any thread, before or after
  // `done`, at most once, and not at all if the send fails before then.
  //
  // What `ordered` means when the service is remote (role `gateway` calling
  // a logic node over gRPC), so that pipelining survives the network hop:
  //   - The ordering point is the logic node's, not the store's: the send
  //     has passed validation, rate limit, block/membership checks and
  //     dedup, and sits in the node's per-conversation append queue, whose
  //     order is the order of seqs. Sends for one conversation are routed
  //     to one logic node (consistent hash on the conversation), so the
  //     queue of that node is the only place their order is decided.
  //   - The remote call is a server stream: the logic node writes an early
  //     "ordered" message at that point and the result (or the error) after
  //     the commit; the client runs `ordered` on the first and `done` on
  //     the last. A client that sends two sends of one session to two
  //     logic nodes must still wait for the first's `ordered`: only one
  //     node's queue orders one conversation, but the next send may be for
  //     the same conversation.
  //   - An implementation that cannot report the point early must run
  //     `ordered` no earlier than `done` (or not at all): always correct,
  //     it only costs the caller its pipelining. Running it before the
  //     send's place is fixed is never allowed: that would reorder seqs.
  //   - Deadlines: the caller's deadline covers the whole call; `ordered`
  //     never arrives after `done`.
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
