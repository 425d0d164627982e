// The task role's worker: leases due jobs from the durable queue
// (store::JobStore), runs the handler registered for each job's kind, and
// acks it, or fails it so the queue retries with back-off and finally
// dead-letters it. A job whose worker dies is leased again when its lease
// expires, so jobs survive restarts.
//
// One thread; handlers run on it and may block on the store (never on an io
// thread). Register handlers before Start. Wake() (any thread) makes the
// worker look for jobs at once instead of at its next poll.
//
// Jobs are leased in batches (up to kLeaseBatch, oldest first) and a handler
// gets every job of its kind in the batch at once, so that it can share work
// between them (a fan-out reads the members once for several messages of
// one group). The more jobs wait, the larger the batches: under load the
// cost per job falls.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "store/store.h"

namespace mpim::service {

// Metrics (docs/push.md): mpim_jobs_total{kind,outcome} with outcome ok,
// retried or dead; mpim_jobs_queued{kind,state} and
// mpim_jobs_oldest_due_seconds{kind} (how long the oldest due ready job has
// waited), refreshed by the worker every kGaugeEvery; and
// mpim_jobs_enqueued_total{kind}, counted by whoever enqueues (CountEnqueued).
void CountEnqueued(const std::string& kind, size_t n);

// Marks on a handler's failed status: a dead letter now (FinalFailure),
// or ready again after the handler's own delay (RetryAfter; otherwise the
// job's back-off).
core::Status FinalFailure(core::Status status);
core::Status RetryAfter(core::Status status, int64_t delay_ms);

class TaskWorker {
 public:
  // Runs `jobs` (one kind, in job order); returns one status per job.
  using Handler = std::function<std::vector<core::Status>(const std::vector<store::Job>& jobs)>;
  static constexpr int kLeaseBatch = 16;
  static constexpr std::chrono::milliseconds kGaugeEvery{1000};

  TaskWorker(store::Store& store, std::string name, int64_t lease_ms = 30000)
      : store_(store), name_(std::move(name)), lease_ms_(lease_ms) {}
  ~TaskWorker() { Stop(); }

  void Register(const std::string& kind, Handler handler) { handlers_[kind] = std::move(handler); }
  void Start();
  // Finishes the job in hand, then returns. Idempotent.
  void Stop();
  void Wake();

 private:
  void Run();
  // The queue's gauges from the store's counts.
  void RefreshGauges();
  // Acks the jobs that succeeded (in one go), fails the others.
  void Settle(const std::vector<store::Job>& jobs, const std::vector<core::Status>& results);

  store::Store& store_;
  const std::string name_;
  const int64_t lease_ms_;
  std::map<std::string, Handler> handlers_;
  std::thread thread_;
  std::mutex mu_;  // guards woken_ (with cv_)
  std::condition_variable cv_;
  bool woken_ = false;
  std::atomic<bool> running_{false};
};

}  // namespace mpim::service
