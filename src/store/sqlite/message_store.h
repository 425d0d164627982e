// MessageStore on SQLite.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "store/message_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

// The last message of each conversation appended to, kept in memory on the
// writer thread: appends take the next seq from here and the conversation
// row (last_seq, last_msg_id, last_activity) is written once per batch for
// each conversation, in the batch's transaction (so it is never behind the
// messages table after a commit, crash or not).
class ConvTails final : public Executor::BatchHook {
 public:
  // The conversation's last_seq as of this batch, if known.
  std::optional<int64_t> LastSeq(const std::string& conv_id) const;
  // A message was appended in this batch.
  void Appended(const std::string& conv_id, int64_t seq, int64_t msg_id, int64_t ts);

  core::Status Flush(Connection& conn) override;
  void Discard() override {
    batch_.clear();
    dirty_ = false;
  }
  void Committed() override;

 private:
  struct Tail {
    int64_t last_seq = 0;
    int64_t last_msg_id = 0;
    int64_t max_ts = 0;
    bool dirty = false;  // not written to the row yet
  };
  // Committed last_seq values; dropped wholesale when it grows past this (a
  // miss only costs a read of the row).
  static constexpr size_t kMaxCommitted = 1 << 16;
  bool dirty_ = false;                                  // some Tail is dirty
  std::unordered_map<std::string, Tail> batch_;         // this batch
  std::unordered_map<std::string, int64_t> committed_;  // before it
};

class SqliteMessageStore final : public MessageStore {
 public:
  explicit SqliteMessageStore(Executor& exec) : exec_(exec) { exec_.SetBatchHook(&tails_); }

  void Append(const AppendRequest& request, Callback<AppendResult> done) override;
  void Read(const std::string& conv_id, const RangeQuery& query,
            Callback<Page<Message>> done) override;
  void Get(int64_t msg_id, Callback<Message> done) override;
  void GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                        Callback<Message> done) override;
  void Recall(int64_t msg_id, const std::string& tombstone_body, Callback<Message> done) override;

 private:
  Executor& exec_;
  ConvTails tails_;  // used on the writer thread only
};

}  // namespace mpim::store::sqlite
