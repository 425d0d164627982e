// Conversations as one user sees them: the list, history and sync pages,
// read and delivered cursors, typing, and the pending list behind `hello`.
// Every call checks that the user takes part in the conversation
// (permission_denied otherwise; invalid_argument for a malformed conv id).
// Former members of a group may still read (history, sync, search) the
// seqs they were present for, and nothing else; a member reads from their
// joining on.
//
// Asynchronous; callbacks run once on an internal thread.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every asynchronous call may be a network round trip and
// also fails with unavailable when no logic node answers in time; callers
// never wait for it synchronously on an io thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/callback.h"
#include "service/auth_service.h"
#include "service/user_service.h"
#include "store/conversation_store.h"
#include "store/group_store.h"
#include "store/message_store.h"

namespace mpim::service {

struct MessagePage {
  std::vector<store::Message> messages;  // ascending by seq
  bool has_more = false;
};

struct ConversationView {
  store::UserConversation conv;
  std::optional<UserProfile> peer;    // private chats
  std::optional<store::Group> group;  // group chats
};

class ConversationService {
 public:
  virtual ~ConversationService() = default;

  virtual void List(Principal who, int limit,
                    core::Callback<std::vector<ConversationView>> done) = 0;
  // History window (REST): see store::RangeQuery for the before/after rules.
  virtual void History(Principal who, std::string conv_id, std::optional<int64_t> before_seq,
                       std::optional<int64_t> after_seq, int limit,
                       core::Callback<MessagePage> done) = 0;
  // Messages after `after_seq` (WS sync).
  virtual void Sync(Principal who, std::string conv_id, int64_t after_seq, int limit,
                    core::Callback<MessagePage> done) = 0;
  // Moves read_seq forward; receipts go to the other members and to the
  // reader's other connections, except when read_seq was already past
  // `seq` (nothing moved). A repeated read of the current read_seq may send
  // its receipt again (receipts are idempotent: clients keep the highest).
  // Returns the resulting read_seq.
  virtual void Read(Principal who, std::string conv_id, int64_t seq, route::ConnId origin_conn,
                    core::Callback<int64_t> done) = 0;
  // Moves this session's delivered cursor (cumulative ack).
  virtual void Ack(Principal who, std::string conv_id, int64_t seq, core::DoneCallback done) = 0;
  // The session is closing: its acks that still wait to be passed on (a
  // gateway lets them linger to coalesce them, service/remote) leave now,
  // so that its next hello already sees them. Nothing to do where an ack
  // applies at once.
  virtual void SendPendingAcks(Principal /*who*/) {}
  // Tells the other members' connections (never stored).
  virtual void Typing(Principal who, std::string conv_id, core::DoneCallback done) = 0;
  // Mute or pin (either may be absent).
  virtual void Update(Principal who, std::string conv_id, std::optional<bool> muted,
                      std::optional<bool> pinned, core::DoneCallback done) = 0;
  // Full-text search over text messages of the caller's conversations (or
  // one of them), within the spans the caller was a member for.
  virtual void Search(Principal who, std::string query, std::optional<std::string> conv_id,
                      int limit, core::Callback<std::vector<store::Message>> done) = 0;
  // Conversations with messages this session has not acked (for hello).
  virtual void Pending(Principal who,
                       core::Callback<std::vector<store::PendingConversation>> done) = 0;
  // For a conversation the hello did not list: the seq after which this
  // session's socket goes on live (store::ConversationStore::StartSeq, with
  // this node's acks not yet written). kNotFound if not a member.
  virtual void StartSeq(Principal who, std::string conv_id, core::Callback<int64_t> done) = 0;
};

}  // namespace mpim::service
