// Conversations and the cursors on them:
//   - per conversation: last_seq and last activity (the ts of its last
//     message, or its creation time);
//   - per (user, conversation): read_seq, muted, pinned. A user has this row
//     ("takes part") from the first message of a private chat, or from
//     joining a group until leaving it;
//   - per (session, conversation): delivered_seq (one login = one device).
// Cursors only move forward: a lower value is ignored, not an error; a value
// above last_seq is clamped to last_seq.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "store/common.h"
#include "store/conv_id.h"
#include "store/message_store.h"

namespace mpim::store {

struct Conversation {
  std::string conv_id;
  ConvType type = ConvType::kPrivate;
  int64_t last_seq = 0;
  int64_t last_msg_id = 0;    // 0 when empty
  int64_t last_activity = 0;  // ms
  int64_t created_at = 0;     // ms
};

// One conversation as one user sees it.
struct UserConversation {
  Conversation conversation;
  int64_t read_seq = 0;
  int64_t unread = 0;  // messages after read_seq not sent by this user
  bool muted = false;
  bool pinned = false;
  std::optional<Message> last_message;
};

// Position in a user's conversation listing (pinned first, then by last
// activity descending, then conv_id ascending): the last item of a page.
struct ConversationCursor {
  bool pinned = false;
  int64_t last_activity = 0;
  std::string conv_id;
};

struct ConversationPage {
  std::vector<UserConversation> items;
  bool has_more = false;
  std::optional<ConversationCursor> next;  // set when has_more
};

// A conversation with something the session has not acknowledged.
struct PendingConversation {
  std::string conv_id;
  int64_t last_seq = 0;
  int64_t read_seq = 0;
  int64_t delivered_seq = 0;
};

// One session's delivered cursor on one conversation, for MarkDeliveredMany.
struct DeliveredCursor {
  int64_t session_id = 0;
  std::string conv_id;
  int64_t seq = 0;
};

class ConversationStore {
 public:
  virtual ~ConversationStore() = default;

  // Creates the private conversation of two users (and both cursors) if it
  // does not exist yet; returns it either way. kNotFound for an unknown
  // user, kInvalidArgument for user_a == user_b.
  virtual void EnsurePrivate(int64_t user_a, int64_t user_b, Callback<Conversation> done) = 0;

  // kNotFound if unknown (a private chat without messages does not exist
  // unless EnsurePrivate made it).
  virtual void Get(const std::string& conv_id, Callback<Conversation> done) = 0;

  // One conversation as `user_id` sees it; kNotFound if the user does not
  // take part.
  virtual void GetForUser(int64_t user_id, const std::string& conv_id,
                          Callback<UserConversation> done) = 0;

  // The user's conversations, pinned first, then most recent activity first;
  // the page after `after` (nullopt: the first page).
  virtual void ListForUser(int64_t user_id, const std::optional<ConversationCursor>& after,
                           int limit, Callback<ConversationPage> done) = 0;

  // Moves the user's read_seq forward to min(seq, last_seq) and returns the
  // resulting read_seq (unchanged when `seq` is lower). kNotFound if the user
  // does not take part.
  virtual void MarkRead(int64_t user_id, const std::string& conv_id, int64_t seq,
                        Callback<int64_t> done) = 0;

  // Moves the session's delivered_seq forward (clamped to last_seq) and
  // returns the resulting value. kNotFound for an unknown conversation.
  virtual void MarkDelivered(int64_t session_id, const std::string& conv_id, int64_t seq,
                             Callback<int64_t> done) = 0;

  // MarkDelivered for many cursors in one write (the service keeps acks in
  // memory and writes them this way, coalesced): each moves forward only,
  // clamped to its conversation's last_seq; cursors on conversations that
  // do not exist are skipped. Fails only as a whole (kUnavailable).
  virtual void MarkDeliveredMany(std::vector<DeliveredCursor> cursors, DoneCallback done) = 0;

  // For `hello`: every conversation of the user whose last_seq is above the
  // session's delivered_seq (0 if never acked) and above the user's
  // joined_seq, ordered by conv_id.
  virtual void ListPending(int64_t user_id, int64_t session_id,
                           Callback<std::vector<PendingConversation>> done) = 0;

  // Where live delivery of `conv_id` starts for a socket of the session
  // that hello did not list it to: the highest of the session's
  // delivered_seq (0 if never acked) and the user's joined_seq. kNotFound
  // if the user does not take part.
  virtual void StartSeq(int64_t user_id, int64_t session_id, const std::string& conv_id,
                        Callback<int64_t> done) = 0;

  // kNotFound if the user does not take part.
  virtual void SetMuted(int64_t user_id, const std::string& conv_id, bool muted,
                        DoneCallback done) = 0;
  virtual void SetPinned(int64_t user_id, const std::string& conv_id, bool pinned,
                         DoneCallback done) = 0;

  // For offline push (at most kMaxPageLimit users each): those of `users`
  // who muted `conv_id`, ascending; and each user's total unread count (the
  // sum of `unread` over the user's conversations), as (user, count) pairs
  // ascending by user, users without conversations left out.
  virtual void MutedAmong(const std::string& conv_id, const std::vector<int64_t>& users,
                          Callback<std::vector<int64_t>> done) = 0;
  virtual void TotalUnread(const std::vector<int64_t>& users,
                           Callback<std::vector<std::pair<int64_t, int64_t>>> done) = 0;
};

}  // namespace mpim::store
