#include "store/sqlite/job_store.h"

#include <algorithm>
#include <string>

#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {

void SqliteJobStore::Enqueue(const NewJob& job, Callback<int64_t> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<int64_t>>(
      [job, now](Connection& c) { return EnqueueJob(c, job, now); }, std::move(done));
}

void SqliteJobStore::Lease(const std::string& worker, int max_jobs, int64_t lease_ms,
                           Callback<std::vector<Job>> done) {
  exec_.Write<core::StatusOr<std::vector<Job>>>(
      [this, worker, max_jobs, lease_ms](Connection& c) -> core::StatusOr<std::vector<Job>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(max_jobs));
        if (lease_ms <= 0) return absl::InvalidArgumentError("lease_ms must be > 0");
        const int64_t now = exec_.NowMs();
        // Expired leases that were the last attempt: dead letters.
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE jobs SET state = 2, lease_owner = '', last_error = 'lease expired'"
                   " WHERE state < 2 AND run_at <= ? AND state = 1 AND attempts >= max_attempts",
                   now));
        MPIM_ASSIGN_OR_RETURN(
            Stmt st, c.Query("UPDATE jobs SET state = 1, attempts = attempts + 1, lease_owner = ?1,"
                             " run_at = ?2 + ?3 WHERE job_id IN (SELECT job_id FROM jobs"
                             "  WHERE state < 2 AND run_at <= ?2 ORDER BY run_at, job_id LIMIT ?4)"
                             " RETURNING " +
                                 std::string(kJobColumns),
                             worker, now, lease_ms, max_jobs));
        MPIM_ASSIGN_OR_RETURN(std::vector<Job> jobs, CollectRows<Job>(st, ReadJob));
        std::sort(jobs.begin(), jobs.end(),
                  [](const Job& a, const Job& b) { return a.job_id < b.job_id; });
        return jobs;
      },
      std::move(done));
}

void SqliteJobStore::EnqueueMany(const std::vector<NewJob>& jobs,
                                 Callback<std::vector<int64_t>> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<std::vector<int64_t>>>(
      [jobs, now](Connection& c) { return EnqueueJobs(c, jobs, now); }, std::move(done));
}

void SqliteJobStore::Ack(int64_t job_id, int attempt, DoneCallback done) {
  exec_.Write<core::Status>(
      [this, job_id, attempt](Connection& c) { return AckJob(c, job_id, attempt, exec_.NowMs()); },
      std::move(done));
}

void SqliteJobStore::Fail(int64_t job_id, int attempt, const JobFailure& failure,
                          Callback<Job> done) {
  exec_.Write<core::StatusOr<Job>>(
      [this, job_id, attempt, failure](Connection& c) -> core::StatusOr<Job> {
        static const std::string kSql =
            std::string("SELECT ") + kJobColumns +
            " FROM jobs WHERE job_id = ? AND state = 1 AND attempts = ?";
        MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, job_id, attempt));
        MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
        if (!row) return LeaseLost(job_id, attempt);
        return FailJob(c, ReadJobRow(rows), failure, exec_.NowMs());
      },
      std::move(done));
}

void SqliteJobStore::List(const JobFilter& filter, Callback<Page<Job>> done) {
  exec_.Read<core::StatusOr<Page<Job>>>([filter](Connection& c) { return ListJobs(c, filter); },
                                        std::move(done));
}

void SqliteJobStore::Get(int64_t job_id, Callback<Job> done) {
  exec_.Read<core::StatusOr<Job>>([job_id](Connection& c) { return GetJob(c, job_id); },
                                  std::move(done));
}

void SqliteJobStore::Delete(int64_t job_id, DoneCallback done) {
  exec_.Write<core::Status>([job_id](Connection& c) { return DeleteJob(c, job_id); },
                            std::move(done));
}

void SqliteJobStore::Count(Callback<std::vector<JobCount>> done) {
  exec_.Read<core::StatusOr<std::vector<JobCount>>>([](Connection& c) { return CountJobs(c); },
                                                    std::move(done));
}

void SqliteJobStore::Requeue(int64_t job_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [this, job_id](Connection& c) { return RequeueJob(c, job_id, exec_.NowMs()); },
      std::move(done));
}

}  // namespace mpim::store::sqlite
