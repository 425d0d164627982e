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
  void EnqueueMany(const std::vector<NewJob>& jobs, Callback<std::vector<int64_t>> done) override;
  void Fail(int64_t job_id, int attempt, const JobFailure& failure, Callback<Job> done) override;
  void List(const JobFilter& filter, Callback<Page<Job>> done) override;
  void Get(int64_t job_id, Callback<Job> done) override;
  void Delete(int64_t job_id, DoneCallback done) override;
  void Count(Callback<std::vector<JobCount>> done) override;
  void Requeue(int64_t job_id, DoneCallback done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::sqlite
