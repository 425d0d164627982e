#include "store/sqlite/message_store.h"

#include <algorithm>
#include <string>

#include "store/conv_id.h"
#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

// The hot path: one insert for a new message; last_seq comes from the tails
// (read from the row on a miss) and the row is advanced once per batch
// (ConvTails::Flush). No RETURNING: SQLite builds a temporary table for it on
// every execution, which cost more than a lookup. The insert does nothing for
// a duplicate key; a msg_id already in use fails it before anything changed.
core::StatusOr<AppendResult> AppendOne(Connection& c, ConvTails& tails, const AppendRequest& r) {
  ConvRef ref;
  MPIM_RETURN_IF_ERROR(ValidateAppend(r, &ref));
  std::optional<std::string> client_msg_id;
  if (!r.client_msg_id.empty()) client_msg_id = r.client_msg_id;
  std::optional<int64_t> last_seq = tails.LastSeq(r.conv_id);
  if (!last_seq) {
    MPIM_ASSIGN_OR_RETURN(
        last_seq, c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ?", r.conv_id));
  }
  if (!last_seq) {
    // No conversation yet: a private one is made now; a group's must exist.
    if (ref.type == ConvType::kGroup) {
      return absl::NotFoundError("conversation " + r.conv_id + " not found");
    }
    MPIM_RETURN_IF_ERROR(InsertPrivateConversation(c, r.conv_id, ref.a, ref.b, r.ts));
    last_seq = 0;
  }
  const int64_t seq = *last_seq + 1;
  core::Status st = c.Exec(
      "INSERT INTO messages (msg_id, conv_id, seq, sender, recipient, type, body, ts,"
      " client_msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
      " ON CONFLICT (sender, client_msg_id) DO NOTHING",
      r.msg_id, r.conv_id, seq, r.sender, r.recipient, r.type, r.body, r.ts, client_msg_id);
  if (st.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError("msg_id " + std::to_string(r.msg_id) + " already used");
  }
  MPIM_RETURN_IF_ERROR(st);
  if (c.Changes() == 0) {
    // The key was taken: return the original. (If the private conversation
    // was made just now, the original cannot exist: keys are per sender and
    // the sender's message would have made it.)
    MPIM_ASSIGN_OR_RETURN(auto original, FindMessage(c, "WHERE sender = ? AND client_msg_id = ?",
                                                     r.sender, r.client_msg_id));
    if (!original) return absl::InternalError("append inserted nothing");
    return AppendResult{std::move(*original), true};
  }
  // Last: nothing may fail after the tails moved.
  tails.Appended(r.conv_id, seq, r.msg_id, r.ts);
  return AppendResult{Message{r.msg_id, r.conv_id, seq, r.sender, r.recipient, r.type, r.body, r.ts,
                              r.client_msg_id, false},
                      false};
}

}  // namespace

std::optional<int64_t> ConvTails::LastSeq(const std::string& conv_id) const {
  if (auto it = batch_.find(conv_id); it != batch_.end()) return it->second.last_seq;
  if (auto it = committed_.find(conv_id); it != committed_.end()) return it->second;
  return std::nullopt;
}

void ConvTails::Appended(const std::string& conv_id, int64_t seq, int64_t msg_id, int64_t ts) {
  Tail& t = batch_[conv_id];
  t.max_ts = t.dirty ? std::max(t.max_ts, ts) : ts;
  t.last_seq = seq;
  t.last_msg_id = msg_id;
  t.dirty = true;
  dirty_ = true;
}

core::Status ConvTails::Flush(Connection& c) {
  if (!dirty_) return core::Status();
  for (auto& [conv_id, t] : batch_) {
    if (!t.dirty) continue;
    MPIM_RETURN_IF_ERROR(
        c.Exec("UPDATE conversations SET last_seq = ?1, last_msg_id = ?2,"
               " last_activity = max(last_activity, ?3) WHERE conv_id = ?4",
               t.last_seq, t.last_msg_id, t.max_ts, conv_id));
    t.dirty = false;
  }
  dirty_ = false;
  return core::Status();
}

void ConvTails::Committed() {
  if (committed_.size() + batch_.size() > kMaxCommitted) committed_.clear();
  for (const auto& [conv_id, t] : batch_) committed_[conv_id] = t.last_seq;
  batch_.clear();
}

void SqliteMessageStore::Append(const AppendRequest& request, Callback<AppendResult> done) {
  exec_.WriteDeferring<core::StatusOr<AppendResult>>(
      [this, request](Connection& c) { return AppendOne(c, tails_, request); }, std::move(done));
}

void SqliteMessageStore::Read(const std::string& conv_id, const RangeQuery& query,
                              Callback<Page<Message>> done) {
  exec_.Read<core::StatusOr<Page<Message>>>(
      [conv_id, query](Connection& c) { return ReadMessages(c, conv_id, query); }, std::move(done));
}

void SqliteMessageStore::Get(int64_t msg_id, Callback<Message> done) {
  exec_.Read<core::StatusOr<Message>>([msg_id](Connection& c) { return LoadMessage(c, msg_id); },
                                      std::move(done));
}

void SqliteMessageStore::GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                                          Callback<Message> done) {
  exec_.Read<core::StatusOr<Message>>(
      [sender, client_msg_id](Connection& c) {
        return LoadMessageByClientMsgId(c, sender, client_msg_id);
      },
      std::move(done));
}

void SqliteMessageStore::Recall(int64_t msg_id, const std::string& tombstone_body,
                                Callback<Message> done) {
  exec_.Write<core::StatusOr<Message>>(
      [msg_id, tombstone_body](Connection& c) -> core::StatusOr<Message> {
        MPIM_ASSIGN_OR_RETURN(Message m, LoadMessage(c, msg_id));
        if (m.recalled) return m;
        MPIM_RETURN_IF_ERROR(c.Exec("UPDATE messages SET body = ?, recalled = 1 WHERE msg_id = ?",
                                    tombstone_body, msg_id));
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM message_fts WHERE rowid = ?", msg_id));
        m.body = tombstone_body;
        m.recalled = true;
        return m;
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
