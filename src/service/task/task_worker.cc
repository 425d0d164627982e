#include "service/task/task_worker.h"

#include <pthread.h>

#include "core/logging.h"
#include "core/metrics.h"
#include "store/blocking.h"

namespace mpim::service {
namespace {

constexpr int kLeaseBatch = 16;
constexpr auto kIdlePoll = std::chrono::milliseconds(100);
constexpr auto kErrorPause = std::chrono::milliseconds(500);

const core::Logger& Log() {
  static const core::Logger log("task");
  return log;
}

}  // namespace

void TaskWorker::Start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "task");
    Run();
  });
}

void TaskWorker::Stop() {
  if (!running_.exchange(false)) return;
  Wake();
  if (thread_.joinable()) thread_.join();
}

void TaskWorker::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void TaskWorker::Run() {
  static core::CounterFamily& done = core::DefaultRegistry().Counter(
      "mpim_jobs_total", "Jobs run by the task worker, by kind and outcome.", {"kind", "outcome"});
  while (running_.load()) {
    auto jobs = store::Await<std::vector<store::Job>>(
        [&](auto cb) { store_.jobs().Lease(name_, kLeaseBatch, lease_ms_, std::move(cb)); });
    if (!jobs.ok() || jobs->empty()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, jobs.ok() ? kIdlePoll : kErrorPause,
                   [this] { return woken_ || !running_.load(); });
      woken_ = false;
      continue;
    }
    for (const store::Job& job : *jobs) {
      auto it = handlers_.find(job.kind);
      core::Status result = it == handlers_.end()
                                ? absl::InvalidArgumentError("no handler for job kind " + job.kind)
                                : it->second(job);
      done.With({job.kind, result.ok() ? "ok" : "failed"}).Inc();
      Settle(job, result);
    }
  }
}

void TaskWorker::Settle(const store::Job& job, const core::Status& result) {
  if (result.ok()) {
    core::Status s = store::AwaitStatus(
        [&](auto cb) { store_.jobs().Ack(job.job_id, job.attempts, std::move(cb)); });
    if (!s.ok())
      Log().Warn("job ack failed", {{"job", job.job_id}, {"error", std::string(s.message())}});
    return;
  }
  Log().Warn("job failed", {{"job", job.job_id},
                            {"kind", job.kind},
                            {"attempt", static_cast<int64_t>(job.attempts)},
                            {"error", std::string(result.message())}});
  auto after = store::Await<store::Job>([&](auto cb) {
    store_.jobs().Fail(job.job_id, job.attempts, std::string(result.message()), std::move(cb));
  });
  if (after.ok() && after->state == store::JobState::kDead) {
    Log().Error("job is a dead letter", {{"job", job.job_id}, {"kind", job.kind}});
  }
}

}  // namespace mpim::service
