// SessionStore on MySQL/MariaDB.
#pragma once

#include "store/mysql/executor.h"
#include "store/session_store.h"

namespace mpim::store::mysql {

class MysqlSessionStore final : public SessionStore {
 public:
  explicit MysqlSessionStore(Executor& exec) : exec_(exec) {}

  void Create(const NewSession& session, Callback<Session> done) override;
  void Get(int64_t session_id, Callback<Session> done) override;
  void RotateRefreshToken(int64_t session_id, const std::string& presented_hash,
                          const std::string& new_hash, int64_t new_expires_at, int64_t now_ms,
                          Callback<RefreshResult> done) override;
  void Revoke(int64_t session_id, DoneCallback done) override;
  void RevokeAllForUser(int64_t user_id, Callback<int64_t> done) override;
  void ListForUser(int64_t user_id, Callback<std::vector<Session>> done) override;
  void ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                   Callback<Page<Session>> done) override;
  void SetDevice(const Device& device, Callback<Device> done) override;
  void ListDevices(int64_t user_id, Callback<std::vector<Device>> done) override;
  void DeleteDevice(int64_t user_id, int64_t device_id, DoneCallback done) override;
  void DevicesOf(const std::vector<int64_t>& users, Callback<std::vector<Device>> done) override;
  void GetDevices(const std::vector<int64_t>& device_ids,
                  Callback<std::vector<Device>> done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::mysql
