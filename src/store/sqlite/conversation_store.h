// ConversationStore on SQLite.
#pragma once

#include "store/conversation_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

class SqliteConversationStore final : public ConversationStore {
 public:
  explicit SqliteConversationStore(Executor& exec) : exec_(exec) {}

  void EnsurePrivate(int64_t user_a, int64_t user_b, Callback<Conversation> done) override;
  void Get(const std::string& conv_id, Callback<Conversation> done) override;
  void GetForUser(int64_t user_id, const std::string& conv_id,
                  Callback<UserConversation> done) override;
  void ListForUser(int64_t user_id, const std::optional<ConversationCursor>& after, int limit,
                   Callback<ConversationPage> done) override;
  void MarkRead(int64_t user_id, const std::string& conv_id, int64_t seq,
                Callback<int64_t> done) override;
  void MarkDelivered(int64_t session_id, const std::string& conv_id, int64_t seq,
                     Callback<int64_t> done) override;
  void MarkDeliveredMany(std::vector<DeliveredCursor> cursors, DoneCallback done) override;
  void ListPending(int64_t user_id, int64_t session_id,
                   Callback<std::vector<PendingConversation>> done) override;
  void StartSeq(int64_t user_id, int64_t session_id, const std::string& conv_id,
                Callback<int64_t> done) override;
  void SetMuted(int64_t user_id, const std::string& conv_id, bool muted,
                DoneCallback done) override;
  void SetPinned(int64_t user_id, const std::string& conv_id, bool pinned,
                 DoneCallback done) override;
  void MutedAmong(const std::string& conv_id, const std::vector<int64_t>& users,
                  Callback<std::vector<int64_t>> done) override;
  void TotalUnread(const std::vector<int64_t>& users,
                   Callback<std::vector<std::pair<int64_t, int64_t>>> done) override;

 private:
  // Sets a 0/1 column of the user's cursor row.
  void SetFlag(const char* sql, int64_t user_id, const std::string& conv_id, bool value,
               DoneCallback done);

  Executor& exec_;
};

}  // namespace mpim::store::sqlite
