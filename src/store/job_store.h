// A durable job queue for the task role (fan-out, push, indexing).
//
// Life of a job: enqueued (ready at now + delay) -> leased by a worker for a
// lease timeout -> acked (deleted), or failed (ready again after an
// exponential back-off), or its lease expires (ready again at once). Every
// lease counts as an attempt; a job that has used max_attempts and fails, or
// whose last lease expires, becomes a dead letter (kept for inspection).
//
// Coalescing (push to one device): a job with a coalesce_key has at most
// one ready twin. Enqueueing another job with the same kind and key while
// one is ready replaces that job's payload (the latest wins; its id and
// run_at stay) instead of adding a job; otherwise the new job runs no
// sooner than coalesce_ms after the last job with that key was acked, or
// than coalesce_ms from now while one is leased (being run).
//
// A lease is identified by (job_id, attempt): Ack and Fail with a stale
// attempt (the lease expired and the job was handed out again) are
// kNotFound, so only the current holder settles a job.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h. Times come from the
// store's clock (StoreOptions::now).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/common.h"

namespace mpim::store {

enum class JobState { kReady = 0, kLeased = 1, kDead = 2 };

struct NewJob {
  std::string kind;     // e.g. "fanout", "push", "index"
  std::string payload;  // opaque (JSON by convention)
  int64_t delay_ms = 0;
  int max_attempts = 5;              // >= 1
  int64_t backoff_base_ms = 1000;    // retry n waits base * 2^(n-1) ...
  int64_t backoff_max_ms = 3600000;  // ... capped here
  std::string coalesce_key;          // empty: none (see above)
  int64_t coalesce_ms = 0;
};

// How a leased job failed (Fail).
struct JobFailure {
  std::string error;  // kept as last_error
  // >= 0: ready again after this long (the caller's own back-off, e.g. with
  // jitter or a provider's Retry-After); -1: the job's back-off.
  int64_t delay_ms = -1;
  bool final = false;  // a dead letter now, whatever attempts are left
};

// Which jobs List returns: every state and kind unless set.
struct JobFilter {
  std::optional<JobState> state;
  std::string kind;  // empty: any
  int64_t after_job = 0;
  int limit = 50;
};

// The queue at a glance, per (kind, state).
struct JobCount {
  std::string kind;
  JobState state = JobState::kReady;
  int64_t count = 0;
  int64_t oldest_run_at = 0;  // the smallest run_at among them
};

struct Job {
  int64_t job_id = 0;  // store-assigned
  std::string kind;
  std::string payload;
  JobState state = JobState::kReady;
  int attempts = 0;  // leases so far; the current lease's attempt number
  int max_attempts = 0;
  int64_t run_at = 0;  // ms: when ready (state ready) or lease expiry (leased)
  std::string lease_owner;
  std::string last_error;
  int64_t created_at = 0;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Returns the job id (for a coalesced job, the id of the ready job it
  // merged into). kInvalidArgument for an empty kind, max_attempts < 1 or
  // negative delay/back-off/coalesce_ms.
  virtual void Enqueue(const NewJob& job, Callback<int64_t> done) = 0;
  // Several jobs in one transaction (all or none), ids in order.
  virtual void EnqueueMany(const std::vector<NewJob>& jobs,
                           Callback<std::vector<int64_t>> done) = 0;

  // Leases up to `max_jobs` due jobs (ready ones whose time has come, and
  // leased ones whose lease expired), oldest due first, to `worker` for
  // `lease_ms`. An empty result is not an error.
  virtual void Lease(const std::string& worker, int max_jobs, int64_t lease_ms,
                     Callback<std::vector<Job>> done) = 0;

  // Done: the job is deleted.
  virtual void Ack(int64_t job_id, int attempt, DoneCallback done) = 0;

  // Failed: retried after back-off, or dead if attempts are used up (or the
  // failure is final). Returns the job as it now is.
  virtual void Fail(int64_t job_id, int attempt, const JobFailure& failure, Callback<Job> done) = 0;

  // Jobs ascending by job id after filter.after_job (kInvalidArgument for a
  // limit outside 1..kMaxPageLimit).
  virtual void List(const JobFilter& filter, Callback<Page<Job>> done) = 0;
  // Dead letters ascending by job id, starting after `after_job`.
  void ListDead(int64_t after_job, int limit, Callback<Page<Job>> done) {
    List({.state = JobState::kDead, .after_job = after_job, .limit = limit}, std::move(done));
  }
  // One job, in any state; kNotFound if there is none (a job that succeeded
  // is gone).
  virtual void Get(int64_t job_id, Callback<Job> done) = 0;
  // Removes a job in any state (a leased one's holder then finds its lease
  // lost). kNotFound if there is none.
  virtual void Delete(int64_t job_id, DoneCallback done) = 0;
  // Counts per (kind, state), ordered by kind then state.
  virtual void Count(Callback<std::vector<JobCount>> done) = 0;

  // A dead letter back to ready now with a fresh attempt budget.
  // kNotFound if it is not a dead letter.
  virtual void Requeue(int64_t job_id, DoneCallback done) = 0;
};

}  // namespace mpim::store
