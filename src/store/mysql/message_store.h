// MessageStore on MySQL/MariaDB.
#pragma once

#include <any>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "store/conv_id.h"
#include "store/message_store.h"
#include "store/mysql/executor.h"

namespace mpim::store::mysql {

// The appends of the writer's open transaction, a batch at a time.
//
// Begin (at the start of each attempt at a batch) locks the rows of every
// conversation the batch appends to, in conv_id order, with one statement
// per 64 (SELECT ... FOR UPDATE: no other node appends to them until the
// batch commits, so the seqs handed out here are the database's), and looks
// up every idempotency key of the batch at once. Each append then takes its
// seq from the locked head and queues its row; Flush (before any other write
// and before the commit) inserts the queued rows 64 at a time and writes
// each conversation's head once. A row the database refuses at Flush (a key
// another node stored meanwhile) fails the attempt, and the executor runs
// the batch again isolated: then each append locks, checks and inserts on
// its own, as a single append would.
//
// Nothing is kept across transactions: another node may append between two
// batches.
class BatchAppends final : public Executor::BatchHook {
 public:
  core::Status Begin(Connection& conn, const std::vector<const std::any*>& tags,
                     bool isolated) override;
  core::Status Flush(Connection& conn) override;
  void Discard() override { Clear(); }
  void Committed() override { Clear(); }

  // One append, in the open transaction.
  core::StatusOr<AppendResult> Append(Connection& conn, const AppendRequest& r);

 private:
  struct Head {
    int64_t last_seq = 0;
    int64_t last_msg_id = 0;
    int64_t max_ts = 0;
    bool dirty = false;  // appended to, head row not written yet
  };
  void Clear();
  // The conversation's head, locked by this transaction (locking it now if
  // needed, making a private conversation's row first); nullptr and
  // kNotFound for an unknown group conversation.
  core::StatusOr<Head*> LockedHead(Connection& conn, const AppendRequest& r, const ConvRef& ref);
  core::Status InsertQueued(Connection& conn);
  core::Status WriteHeads(Connection& conn);

  bool isolated_ = true;  // no Begin yet: behave as a single append
  std::unordered_map<std::string, Head> heads_;
  // Idempotency keys the batch found stored: (sender, key) -> message.
  std::map<std::pair<int64_t, std::string>, Message> stored_keys_;
  std::vector<AppendRequest> queued_;  // rows to insert at Flush, with seq
  std::vector<int64_t> queued_seqs_;
};

class MysqlMessageStore final : public MessageStore {
 public:
  explicit MysqlMessageStore(Executor& exec) : exec_(exec) { exec_.SetBatchHook(&batch_); }

  void Append(const AppendRequest& request, Callback<AppendResult> done) override;
  void Read(const std::string& conv_id, const RangeQuery& query,
            Callback<Page<Message>> done) override;
  void Get(int64_t msg_id, Callback<Message> done) override;
  void GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                        Callback<Message> done) override;
  void Recall(int64_t msg_id, const std::string& tombstone_body, Callback<Message> done) override;

 private:
  Executor& exec_;
  BatchAppends batch_;  // writer thread only
};

}  // namespace mpim::store::mysql
