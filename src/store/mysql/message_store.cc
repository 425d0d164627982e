#include "store/mysql/message_store.h"

#include <algorithm>
#include <memory>
#include <string>

#include "store/conv_id.h"
#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {
namespace {

core::StatusOr<std::optional<int64_t>> LockHead(Connection& c, const std::string& conv_id) {
  return c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ? FOR UPDATE", conv_id);
}

// Multi-row statements take at most this many rows. Each row count is a
// statement of its own, prepared once per connection (at most kMaxRows of
// each kind): a batch of n rows is one statement, not one per chunk of a
// few fixed sizes, since MariaDB's cost is mostly per statement
// (docs/benchmarks.md, session 20).
constexpr size_t kMaxRows = 64;

// Calls fn(offset, n) over [0, total) in chunks of at most kMaxRows rows.
template <typename Fn>
core::Status InChunks(size_t total, Fn&& fn) {
  for (size_t at = 0; at < total;) {
    const size_t n = std::min(kMaxRows, total - at);
    MPIM_RETURN_IF_ERROR(fn(at, n));
    at += n;
  }
  return core::Status();
}

// `group` repeated n times, comma-separated.
std::string Repeat(const char* group, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += group;
  }
  return out;
}

}  // namespace

void BatchAppends::Clear() {
  isolated_ = true;
  heads_.clear();
  stored_keys_.clear();
  queued_.clear();
  queued_seqs_.clear();
}

core::Status BatchAppends::Begin(Connection& c, const std::vector<const std::any*>& tags,
                                 bool isolated) {
  Clear();
  isolated_ = isolated;
  if (isolated) return core::Status();
  std::vector<std::string> convs;
  std::vector<std::pair<int64_t, std::string>> keys;
  for (const std::any* tag : tags) {
    const auto* held = std::any_cast<std::shared_ptr<const AppendRequest>>(tag);
    if (held == nullptr) continue;
    const AppendRequest* r = held->get();
    convs.push_back(r->conv_id);
    if (!r->client_msg_id.empty()) keys.emplace_back(r->sender, r->client_msg_id);
  }
  // In conv_id order, so that two nodes' batches lock in one order.
  std::sort(convs.begin(), convs.end());
  convs.erase(std::unique(convs.begin(), convs.end()), convs.end());
  MPIM_RETURN_IF_ERROR(InChunks(convs.size(), [&](size_t at, size_t n) -> core::Status {
    std::vector<Param> params;
    for (size_t i = 0; i < n; ++i) params.push_back(ToParam(convs[at + i]));
    MPIM_ASSIGN_OR_RETURN(
        Rows rows, c.QueryParams("SELECT conv_id, last_seq FROM conversations WHERE conv_id IN (" +
                                     Repeat("?", n) + ") ORDER BY conv_id FOR UPDATE",
                                 params));
    while (*rows.Next()) heads_[rows.Text(0)] = Head{rows.Int(1), 0, 0, false};
    return core::Status();
  }));
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return InChunks(keys.size(), [&](size_t at, size_t n) -> core::Status {
    std::vector<Param> params;
    for (size_t i = 0; i < n; ++i) {
      params.push_back(ToParam(keys[at + i].first));
      params.push_back(ToParam(keys[at + i].second));
    }
    MPIM_ASSIGN_OR_RETURN(Rows rows,
                          c.QueryParams(SelectMessage() + "WHERE (sender, client_msg_id) IN (" +
                                            Repeat("(?, ?)", n) + ")",
                                        params));
    while (*rows.Next()) {
      Message m = ReadMessage(rows);
      stored_keys_[{m.sender, m.client_msg_id}] = std::move(m);
    }
    return core::Status();
  });
}

core::StatusOr<BatchAppends::Head*> BatchAppends::LockedHead(Connection& c, const AppendRequest& r,
                                                             const ConvRef& ref) {
  if (!isolated_) {
    if (auto it = heads_.find(r.conv_id); it != heads_.end()) return &it->second;
  }
  MPIM_ASSIGN_OR_RETURN(auto last_seq, LockHead(c, r.conv_id));
  if (!last_seq) {
    // No conversation yet: a private one is made now (or by another node
    // meanwhile: then its row is what we lock); a group's must exist.
    if (ref.type == ConvType::kGroup) {
      return absl::NotFoundError("conversation " + r.conv_id + " not found");
    }
    MPIM_RETURN_IF_ERROR(InsertPrivateConversation(c, r.conv_id, ref.a, ref.b, r.ts));
    MPIM_ASSIGN_OR_RETURN(last_seq, LockHead(c, r.conv_id));
    if (!last_seq) return absl::InternalError("conversation row vanished");
  }
  Head& head = heads_[r.conv_id];
  head = Head{*last_seq, 0, 0, false};
  return &head;
}

// The seq comes from the locked head row, so two nodes never hand out one
// seq twice and none is skipped; the unique keys make dedup and msg_id
// uniqueness the database's.
core::StatusOr<AppendResult> BatchAppends::Append(Connection& c, const AppendRequest& r) {
  ConvRef ref;
  MPIM_RETURN_IF_ERROR(ValidateAppend(r, &ref));
  std::optional<std::string> client_msg_id;
  if (!r.client_msg_id.empty()) {
    client_msg_id = r.client_msg_id;
    if (auto it = stored_keys_.find({r.sender, r.client_msg_id}); it != stored_keys_.end()) {
      return AppendResult{it->second, true};
    }
  }
  MPIM_ASSIGN_OR_RETURN(Head * head, LockedHead(c, r, ref));
  const int64_t seq = head->last_seq + 1;
  Message stored{r.msg_id, r.conv_id, seq,  r.sender,        r.recipient,
                 r.type,   r.body,    r.ts, r.client_msg_id, false};
  if (isolated_) {
    // Alone: insert and move the head now, so that a rollback to this
    // write's savepoint takes back both.
    core::Status st = c.Exec(
        "INSERT INTO messages (msg_id, conv_id, seq, sender, recipient, type, body, ts,"
        " client_msg_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        r.msg_id, r.conv_id, seq, r.sender, r.recipient, r.type, r.body, r.ts, client_msg_id);
    if (st.code() == absl::StatusCode::kAlreadyExists) {
      // Which key: the idempotency key (return the original, stored by this
      // or another node) or the msg_id?
      if (client_msg_id) {
        MPIM_ASSIGN_OR_RETURN(
            auto original,
            FindMessage(c, "WHERE sender = ? AND client_msg_id = ?", r.sender, r.client_msg_id));
        if (original) return AppendResult{std::move(*original), true};
      }
      return absl::AlreadyExistsError("msg_id " + std::to_string(r.msg_id) + " already used");
    }
    MPIM_RETURN_IF_ERROR(st);
    MPIM_RETURN_IF_ERROR(
        c.Exec("UPDATE conversations SET last_seq = ?, last_msg_id = ?,"
               " last_activity = GREATEST(last_activity, ?) WHERE conv_id = ?",
               seq, r.msg_id, r.ts, r.conv_id));
    heads_.erase(r.conv_id);
    return AppendResult{std::move(stored), false};
  }
  queued_.push_back(r);
  queued_seqs_.push_back(seq);
  if (client_msg_id) stored_keys_[{r.sender, r.client_msg_id}] = stored;
  head->max_ts = head->dirty ? std::max(head->max_ts, r.ts) : r.ts;
  head->last_seq = seq;
  head->last_msg_id = r.msg_id;
  head->dirty = true;
  return AppendResult{std::move(stored), false};
}

core::Status BatchAppends::InsertQueued(Connection& c) {
  std::vector<std::optional<std::string>> keys;
  keys.reserve(queued_.size());
  for (const AppendRequest& r : queued_) {
    keys.push_back(r.client_msg_id.empty() ? std::nullopt : std::optional(r.client_msg_id));
  }
  MPIM_RETURN_IF_ERROR(InChunks(queued_.size(), [&](size_t at, size_t n) -> core::Status {
    std::vector<Param> params;
    params.reserve(n * 9);
    for (size_t i = at; i < at + n; ++i) {
      const AppendRequest& r = queued_[i];
      for (Param p : {ToParam(r.msg_id), ToParam(r.conv_id), ToParam(queued_seqs_[i]),
                      ToParam(r.sender), ToParam(r.recipient), ToParam(r.type), ToParam(r.body),
                      ToParam(r.ts), ToParam(keys[i])}) {
        params.push_back(p);
      }
    }
    return c.ExecParams(
        "INSERT INTO messages (msg_id, conv_id, seq, sender, recipient, type, body, ts,"
        " client_msg_id) VALUES " +
            Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?)", n),
        params);
  }));
  queued_.clear();
  queued_seqs_.clear();
  return core::Status();
}

core::Status BatchAppends::WriteHeads(Connection& c) {
  std::vector<std::pair<const std::string*, Head*>> dirty;
  for (auto& [conv_id, head] : heads_) {
    if (head.dirty) dirty.emplace_back(&conv_id, &head);
  }
  MPIM_RETURN_IF_ERROR(InChunks(dirty.size(), [&](size_t at, size_t n) -> core::Status {
    std::vector<Param> params;
    for (size_t i = at; i < at + n; ++i) {
      const Head& h = *dirty[i].second;
      for (Param p : {ToParam(*dirty[i].first), ToParam(h.last_seq), ToParam(h.last_msg_id),
                      ToParam(h.max_ts)}) {
        params.push_back(p);
      }
    }
    // Every row exists (this transaction holds its lock): only the update
    // part runs.
    return c.ExecParams(
        "INSERT INTO conversations (conv_id, type, last_seq, last_msg_id, last_activity,"
        " created_at) VALUES " +
            Repeat("(?, 0, ?, ?, ?, 0)", n) +
            " ON DUPLICATE KEY UPDATE last_seq = VALUES(last_seq),"
            " last_msg_id = VALUES(last_msg_id),"
            " last_activity = GREATEST(last_activity, VALUES(last_activity))",
        params);
  }));
  for (auto& [conv_id, head] : dirty) head->dirty = false;
  return core::Status();
}

core::Status BatchAppends::Flush(Connection& c) {
  if (queued_.empty()) return core::Status();
  MPIM_RETURN_IF_ERROR(InsertQueued(c));
  return WriteHeads(c);
}

void MysqlMessageStore::Append(const AppendRequest& request, Callback<AppendResult> done) {
  auto held = std::make_shared<const AppendRequest>(request);
  exec_.WriteDeferring<core::StatusOr<AppendResult>>(
      std::any(held), [this, held](Connection& c) { return batch_.Append(c, *held); },
      std::move(done));
}

void MysqlMessageStore::Read(const std::string& conv_id, const RangeQuery& query,
                             Callback<Page<Message>> done) {
  exec_.Read<core::StatusOr<Page<Message>>>(
      [conv_id, query](Connection& c) { return ReadMessages(c, conv_id, query); }, std::move(done));
}

void MysqlMessageStore::Get(int64_t msg_id, Callback<Message> done) {
  exec_.Read<core::StatusOr<Message>>([msg_id](Connection& c) { return LoadMessage(c, msg_id); },
                                      std::move(done));
}

void MysqlMessageStore::GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                                         Callback<Message> done) {
  exec_.Read<core::StatusOr<Message>>(
      [sender, client_msg_id](Connection& c) {
        return LoadMessageByClientMsgId(c, sender, client_msg_id);
      },
      std::move(done));
}

void MysqlMessageStore::Recall(int64_t msg_id, const std::string& tombstone_body,
                               Callback<Message> done) {
  exec_.Write<core::StatusOr<Message>>(
      [msg_id, tombstone_body](Connection& c) -> core::StatusOr<Message> {
        MPIM_ASSIGN_OR_RETURN(Message m, LoadMessage(c, msg_id));
        if (m.recalled) return m;
        MPIM_RETURN_IF_ERROR(c.Exec("UPDATE messages SET body = ?, recalled = 1 WHERE msg_id = ?",
                                    tombstone_body, msg_id));
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM message_search WHERE msg_id = ?", msg_id));
        m.body = tombstone_body;
        m.recalled = true;
        return m;
      },
      std::move(done));
}

}  // namespace mpim::store::mysql
