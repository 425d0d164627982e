// FriendStore on MySQL/MariaDB.
#pragma once

#include "store/friend_store.h"
#include "store/mysql/executor.h"

namespace mpim::store::mysql {

class MysqlFriendStore final : public FriendStore {
 public:
  explicit MysqlFriendStore(Executor& exec) : exec_(exec) {}

  void Request(int64_t from_user, int64_t to_user, Callback<FriendRequestOutcome> done) override;
  void DeleteRequest(int64_t from_user, int64_t to_user, DoneCallback done) override;
  void ListRequests(int64_t user_id, bool incoming, int64_t after_user, int limit,
                    Callback<Page<FriendRequest>> done) override;
  void Remove(int64_t user_a, int64_t user_b, DoneCallback done) override;
  void AreFriends(int64_t user_a, int64_t user_b, Callback<bool> done) override;
  void List(int64_t user_id, int64_t after_user, int limit, Callback<Page<Friend>> done) override;
  void Block(int64_t blocker, int64_t blocked, DoneCallback done) override;
  void Unblock(int64_t blocker, int64_t blocked, DoneCallback done) override;
  void IsBlocked(int64_t blocker, int64_t blocked, Callback<bool> done) override;
  void ListBlocked(int64_t blocker, int64_t after_user, int limit,
                   Callback<Page<BlockEntry>> done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::mysql
