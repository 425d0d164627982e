// MessageStore on SQLite.
#pragma once

#include "store/message_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

class SqliteMessageStore final : public MessageStore {
 public:
  explicit SqliteMessageStore(Executor& exec) : exec_(exec) {}

  void Append(const AppendRequest& request, Callback<AppendResult> done) override;
  void Read(const std::string& conv_id, const RangeQuery& query,
            Callback<Page<Message>> done) override;
  void Get(int64_t msg_id, Callback<Message> done) override;
  void GetByClientMsgId(int64_t sender, const std::string& client_msg_id,
                        Callback<Message> done) override;
  void Recall(int64_t msg_id, const std::string& tombstone_body, Callback<Message> done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::sqlite
