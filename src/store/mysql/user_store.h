// UserStore on MySQL/MariaDB.
#pragma once

#include "store/mysql/executor.h"
#include "store/user_store.h"

namespace mpim::store::mysql {

class MysqlUserStore final : public UserStore {
 public:
  explicit MysqlUserStore(Executor& exec) : exec_(exec) {}

  void Create(const NewUser& user, Callback<User> done) override;
  void Get(int64_t user_id, Callback<User> done) override;
  void GetByUsername(const std::string& username, Callback<User> done) override;
  void GetMany(const std::vector<int64_t>& user_ids, Callback<std::vector<User>> done) override;
  void Update(int64_t user_id, const UserUpdate& update, Callback<User> done) override;
  void TouchLastSeen(int64_t user_id, int64_t ts_ms, DoneCallback done) override;
  void SearchByPrefix(const std::string& prefix, const std::string& after_username, int limit,
                      Callback<Page<User>> done) override;
  void Count(Callback<int64_t> done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::mysql
