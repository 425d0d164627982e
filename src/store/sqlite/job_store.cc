#include "store/sqlite/job_store.h"

#include <algorithm>
#include <string>

#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

#define JOB_COLUMNS                                                                         \
  "job_id, kind, payload, state, attempts, max_attempts, run_at, lease_owner, last_error, " \
  "created_at, backoff_base_ms, backoff_max_ms"

struct JobRow {
  Job job;
  int64_t backoff_base_ms = 0;
  int64_t backoff_max_ms = 0;
};

JobRow ReadJobRow(const Stmt& row) {
  JobRow r;
  Job& j = r.job;
  j.job_id = row.Int(0);
  j.kind = row.Text(1);
  j.payload = row.Text(2);
  j.state = static_cast<JobState>(row.Int(3));
  j.attempts = static_cast<int>(row.Int(4));
  j.max_attempts = static_cast<int>(row.Int(5));
  j.run_at = row.Int(6);
  j.lease_owner = row.Text(7);
  j.last_error = row.Text(8);
  j.created_at = row.Int(9);
  r.backoff_base_ms = row.Int(10);
  r.backoff_max_ms = row.Int(11);
  return r;
}

Job ReadJob(const Stmt& row) { return ReadJobRow(row).job; }

// base * 2^(attempt - 1), capped at `max`, without overflow.
int64_t Backoff(int64_t base, int64_t max, int attempt) {
  int64_t delay = base;
  for (int i = 1; i < attempt && delay < max; ++i) delay = delay > max / 2 ? max : delay * 2;
  return std::min(delay, max);
}

core::Status LeaseLost(int64_t job_id, int attempt) {
  return absl::NotFoundError("job " + std::to_string(job_id) + " attempt " +
                             std::to_string(attempt) + " is not leased (expired or settled)");
}

}  // namespace

void SqliteJobStore::Enqueue(const NewJob& job, Callback<int64_t> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<int64_t>>(
      [job, now](Connection& c) -> core::StatusOr<int64_t> {
        if (job.kind.empty()) return absl::InvalidArgumentError("empty job kind");
        if (job.max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
        if (job.delay_ms < 0 || job.backoff_base_ms < 0 || job.backoff_max_ms < 0) {
          return absl::InvalidArgumentError("negative delay or back-off");
        }
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO jobs (kind, payload, state, max_attempts, backoff_base_ms,"
                   " backoff_max_ms, run_at, created_at) VALUES (?, ?, 0, ?, ?, ?, ?, ?)",
                   job.kind, job.payload, job.max_attempts, job.backoff_base_ms, job.backoff_max_ms,
                   now + job.delay_ms, now));
        return sqlite3_last_insert_rowid(c.raw());
      },
      std::move(done));
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
                             " RETURNING " JOB_COLUMNS,
                             worker, now, lease_ms, max_jobs));
        MPIM_ASSIGN_OR_RETURN(std::vector<Job> jobs, CollectRows<Job>(st, ReadJob));
        std::sort(jobs.begin(), jobs.end(),
                  [](const Job& a, const Job& b) { return a.job_id < b.job_id; });
        return jobs;
      },
      std::move(done));
}

void SqliteJobStore::Ack(int64_t job_id, int attempt, DoneCallback done) {
  exec_.Write<core::Status>(
      [job_id, attempt](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(c.Exec(
            "DELETE FROM jobs WHERE job_id = ? AND state = 1 AND attempts = ?", job_id, attempt));
        if (c.Changes() == 0) return LeaseLost(job_id, attempt);
        return core::Status();
      },
      std::move(done));
}

void SqliteJobStore::Fail(int64_t job_id, int attempt, const std::string& error,
                          Callback<Job> done) {
  exec_.Write<core::StatusOr<Job>>(
      [this, job_id, attempt, error](Connection& c) -> core::StatusOr<Job> {
        MPIM_ASSIGN_OR_RETURN(Stmt st, c.Query("SELECT " JOB_COLUMNS " FROM jobs WHERE job_id = ?"
                                               " AND state = 1 AND attempts = ?",
                                               job_id, attempt));
        MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
        if (!row) return LeaseLost(job_id, attempt);
        JobRow r = ReadJobRow(st);
        Job& job = r.job;
        job.last_error = error;
        job.lease_owner.clear();
        if (job.attempts >= job.max_attempts) {
          job.state = JobState::kDead;
        } else {
          job.state = JobState::kReady;
          job.run_at = exec_.NowMs() + Backoff(r.backoff_base_ms, r.backoff_max_ms, job.attempts);
        }
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE jobs SET state = ?, run_at = ?, lease_owner = '', last_error = ?"
                   " WHERE job_id = ?",
                   static_cast<int>(job.state), job.run_at, error, job_id));
        return job;
      },
      std::move(done));
}

void SqliteJobStore::ListDead(int64_t after_job, int limit, Callback<Page<Job>> done) {
  exec_.Read<core::StatusOr<Page<Job>>>(
      [after_job, limit](Connection& c) -> core::StatusOr<Page<Job>> {
        return QueryPage<Job>(c,
                              "SELECT " JOB_COLUMNS
                              " FROM jobs WHERE state = 2"
                              " AND job_id > ? ORDER BY job_id LIMIT ?",
                              limit, ReadJob, after_job);
      },
      std::move(done));
}

void SqliteJobStore::Requeue(int64_t job_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [this, job_id](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE jobs SET state = 0, attempts = 0, run_at = ?, lease_owner = ''"
                   " WHERE job_id = ? AND state = 2",
                   exec_.NowMs(), job_id));
        if (c.Changes() == 0) {
          return absl::NotFoundError("job " + std::to_string(job_id) + " is not a dead letter");
        }
        return core::Status();
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
