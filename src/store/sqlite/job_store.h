// JobStore on SQLite.
#pragma once

#include "store/job_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

class SqliteJobStore final : public JobStore {
 public:
  explicit SqliteJobStore(Executor& exec) : exec_(exec) {}

  void Enqueue(const NewJob& job, Callback<int64_t> done) override;
  void Lease(const std::string& worker, int max_jobs, int64_t lease_ms,
             Callback<std::vector<Job>> done) override;
  void Ack(int64_t job_id, int attempt, DoneCallback done) override;
  void Fail(int64_t job_id, int attempt, const std::string& error, Callback<Job> done) override;
  void ListDead(int64_t after_job, int limit, Callback<Page<Job>> done) override;
  void Requeue(int64_t job_id, DoneCallback done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::sqlite
