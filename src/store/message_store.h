// Messages of conversations, each with its per-conversation seq.
//
// Invariants the store guarantees (and every adapter must, see the contract
// suite in tests/store/contract/):
//   - a conversation's seq starts at 1 and advances by exactly 1 per appended
//     message; the conversation's last_seq moves in the same transaction as
//     the insert; (conv_id, seq) is unique;
//   - (sender, client_msg_id) is unique: appending a duplicate returns the
//     original message with duplicate = true and writes nothing;
//   - an OK append is durable (see Store).
//
// Private conversations ("p:<a>:<b>") are created lazily by the first append
// to them: the conversation row and both users' cursors are made in the same
// transaction (the two user ids come from the conv id). Group conversations
// exist from GroupStore::Create on; appending to an unknown group
// conversation is kNotFound. The store does not check that the sender is a
// member or not blocked: that is the message service's job.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/common.h"
#include "store/conv_id.h"

namespace mpim::store {

struct Message {
  int64_t msg_id = 0;  // snowflake assigned by the caller
  std::string conv_id;
  int64_t seq = 0;  // assigned by the store
  int64_t sender = 0;
  int64_t recipient = 0;      // user id (private) or group id (group)
  std::string type;           // "text" | "custom" | "system"
  std::string body;           // JSON text, opaque to the store
  int64_t ts = 0;             // ms, assigned by the caller
  std::string client_msg_id;  // empty for server-made messages (no dedup)
  bool recalled = false;
};

struct AppendRequest {
  int64_t msg_id = 0;
  std::string conv_id;
  int64_t sender = 0;
  int64_t recipient = 0;
  std::string type = "text";
  std::string body;
  int64_t ts = 0;
  std::string client_msg_id;  // "" = no idempotency key
};

struct AppendResult {
  Message message;         // as stored (the original one for a duplicate)
  bool duplicate = false;  // true: nothing was written
};

// Range read by seq. Results are always ascending by seq.
//   after_seq only:  the first `limit` messages with seq > after_seq;
//                    has_more = more exist after the last one returned.
//   before_seq only: the last `limit` messages with seq < before_seq;
//                    has_more = more exist before the first one returned.
//   both:            the first `limit` with after_seq < seq < before_seq;
//                    has_more = more exist in the window after the last one.
//   neither:         the latest `limit` messages (as before_seq = infinity).
struct RangeQuery {
  std::optional<int64_t> after_seq;
  std::optional<int64_t> before_seq;
  int limit = 50;  // [1, kMaxPageLimit]
};

class MessageStore {
 public:
  virtual ~MessageStore() = default;

  // Appends one message, assigning the next seq. kInvalidArgument for a
  // malformed conv_id, type, msg_id <= 0 or a client_msg_id over 64 bytes;
  // kNotFound for an unknown group conversation or (first message of a
  // private chat) an unknown user; kAlreadyExists if msg_id is already used
  // by another message; kUnavailable if it could not be made durable (then
  // nothing was written and no seq was consumed). Appends to one
  // conversation get their seqs in the order the calls were made (the
  // message service relies on it to keep a session's pipelined sends in
  // order).
  virtual void Append(const AppendRequest& request, Callback<AppendResult> done) = 0;

  // Messages of one conversation by seq, see RangeQuery. A conversation that
  // does not exist (yet) reads as an empty page.
  virtual void Read(const std::string& conv_id, const RangeQuery& query,
                    Callback<Page<Message>> done) = 0;

  // kNotFound if unknown.
  virtual void Get(int64_t msg_id, Callback<Message> done) = 0;

  // The message appended with this idempotency key; kNotFound if none.
  virtual void GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                                Callback<Message> done) = 0;

  // Replaces the body with `tombstone_body`, sets recalled and removes the
  // message from the search index, in one transaction. Recalling twice
  // returns the message unchanged. kNotFound if unknown. Who may recall, and
  // until when, is the service's decision.
  virtual void Recall(int64_t msg_id, const std::string& tombstone_body,
                      Callback<Message> done) = 0;
};

// The argument checks every engine's Append makes (see Append): sets *ref
// to the parsed conv_id.
core::Status ValidateAppend(const AppendRequest& request, ConvRef* ref);

}  // namespace mpim::store
