#include "store/mysql/job_store.h"

#include <algorithm>
#include <string>

#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {

void MysqlJobStore::Enqueue(const NewJob& job, Callback<int64_t> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<int64_t>>(
      [job, now](Connection& c) { return EnqueueJob(c, job, now); }, std::move(done));
}

void MysqlJobStore::Lease(const std::string& worker, int max_jobs, int64_t lease_ms,
                          Callback<std::vector<Job>> done) {
  exec_.Write<core::StatusOr<std::vector<Job>>>(
      [this, worker, max_jobs, lease_ms](Connection& c) -> core::StatusOr<std::vector<Job>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(max_jobs));
        if (lease_ms <= 0) return absl::InvalidArgumentError("lease_ms must be > 0");
        const int64_t now = exec_.NowMs();
        // Expired leases that were the last attempt: dead letters.
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE jobs SET state = 2, lease_owner = '', last_error = 'lease expired'"
                   " WHERE state = 1 AND run_at <= ? AND attempts >= max_attempts",
                   now));
        // SQLite leases in one UPDATE ... RETURNING. Here: lock the due jobs
        // with SKIP LOCKED, so that nodes leasing at once get different jobs,
        // then update them and read them back. The oldest due first, per
        // state in index order: a single `state < 2 ORDER BY run_at` query
        // sorts, and so locks, every due job before its LIMIT. Up to max_jobs
        // due jobs that are locked but not leased stay locked (skipped by the
        // other nodes) until this batch commits.
        MPIM_ASSIGN_OR_RETURN(
            Rows due, c.Query("SELECT job_id FROM ("
                              "(SELECT job_id, run_at FROM jobs WHERE state = 0 AND run_at <= ?"
                              "  ORDER BY run_at, job_id LIMIT ? FOR UPDATE SKIP LOCKED)"
                              " UNION ALL"
                              " (SELECT job_id, run_at FROM jobs WHERE state = 1 AND run_at <= ?"
                              "  ORDER BY run_at, job_id LIMIT ? FOR UPDATE SKIP LOCKED)"
                              ") AS due ORDER BY run_at, job_id LIMIT ?",
                              now, max_jobs, now, max_jobs, max_jobs));
        if (due.size() == 0) return std::vector<Job>();
        std::string ids = "[";
        for (;;) {
          MPIM_ASSIGN_OR_RETURN(bool row, due.Next());
          if (!row) break;
          if (ids.size() > 1) ids += ',';
          ids += std::to_string(due.Int(0));
        }
        ids += ']';
        // A join, not `job_id IN (SELECT ...)`: MariaDB runs an UPDATE with
        // an IN subquery as a scan of the whole table.
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE jobs JOIN JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j"
                   " ON jobs.job_id = j.id SET jobs.state = 1, jobs.attempts = jobs.attempts + 1,"
                   " jobs.lease_owner = ?, jobs.run_at = ?",
                   ids, worker, now + lease_ms));
        MPIM_ASSIGN_OR_RETURN(
            Rows st, c.Query(std::string("SELECT ") + kJobColumns +
                                 " FROM jobs WHERE job_id IN (SELECT id FROM"
                                 " JSON_TABLE(?, '$[*]' COLUMNS (id BIGINT PATH '$')) AS j)"
                                 " ORDER BY job_id",
                             ids));
        return CollectRows<Job>(st, ReadJob);
      },
      std::move(done));
}

void MysqlJobStore::EnqueueMany(const std::vector<NewJob>& jobs,
                                Callback<std::vector<int64_t>> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<std::vector<int64_t>>>(
      [jobs, now](Connection& c) { return EnqueueJobs(c, jobs, now); }, std::move(done));
}

void MysqlJobStore::Ack(int64_t job_id, int attempt, DoneCallback done) {
  exec_.Write<core::Status>(
      [this, job_id, attempt](Connection& c) { return AckJob(c, job_id, attempt, exec_.NowMs()); },
      std::move(done));
}

void MysqlJobStore::Fail(int64_t job_id, int attempt, const JobFailure& failure,
                         Callback<Job> done) {
  exec_.Write<core::StatusOr<Job>>(
      [this, job_id, attempt, failure](Connection& c) -> core::StatusOr<Job> {
        static const std::string kSql = std::string("SELECT ") + kJobColumns +
                                        " FROM jobs WHERE job_id = ? AND state = 1 AND attempts = ?"
                                        " FOR UPDATE";
        MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, job_id, attempt));
        MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
        if (!row) return LeaseLost(job_id, attempt);
        return FailJob(c, ReadJobRow(rows), failure, exec_.NowMs());
      },
      std::move(done));
}

void MysqlJobStore::List(const JobFilter& filter, Callback<Page<Job>> done) {
  exec_.Read<core::StatusOr<Page<Job>>>([filter](Connection& c) { return ListJobs(c, filter); },
                                        std::move(done));
}

void MysqlJobStore::Get(int64_t job_id, Callback<Job> done) {
  exec_.Read<core::StatusOr<Job>>([job_id](Connection& c) { return GetJob(c, job_id); },
                                  std::move(done));
}

void MysqlJobStore::Delete(int64_t job_id, DoneCallback done) {
  exec_.Write<core::Status>([job_id](Connection& c) { return DeleteJob(c, job_id); },
                            std::move(done));
}

void MysqlJobStore::Count(Callback<std::vector<JobCount>> done) {
  exec_.Read<core::StatusOr<std::vector<JobCount>>>([](Connection& c) { return CountJobs(c); },
                                                    std::move(done));
}

void MysqlJobStore::Requeue(int64_t job_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [this, job_id](Connection& c) { return RequeueJob(c, job_id, exec_.NowMs()); },
      std::move(done));
}

}  // namespace mpim::store::mysql
