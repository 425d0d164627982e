#include "service/task/task_worker.h"

#include <pthread.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <map>
#include <set>

#include "absl/strings/cord.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "store/blocking.h"

namespace mpim::service {
namespace {

constexpr auto kIdlePoll = std::chrono::milliseconds(100);
constexpr auto kErrorPause = std::chrono::milliseconds(500);

const core::Logger& Log() {
  static const core::Logger log("task");
  return log;
}

core::CounterFamily& JobsDone() {
  static core::CounterFamily& done = core::DefaultRegistry().Counter(
      "mpim_jobs_total", "Jobs run by the task worker, by kind and outcome (ok, retried, dead).",
      {"kind", "outcome"});
  return done;
}

constexpr char kFinalMark[] = "type.mpim/job.final";
constexpr char kDelayMark[] = "type.mpim/job.delay_ms";

store::JobFailure FailureOf(const core::Status& status) {
  store::JobFailure f;
  f.error = std::string(status.message());
  f.final = status.GetPayload(kFinalMark).has_value();
  if (auto delay = status.GetPayload(kDelayMark)) {
    f.delay_ms = std::max<int64_t>(0, std::strtoll(std::string(*delay).c_str(), nullptr, 10));
  }
  return f;
}

}  // namespace

core::Status FinalFailure(core::Status status) {
  status.SetPayload(kFinalMark, absl::Cord("1"));
  return status;
}

core::Status RetryAfter(core::Status status, int64_t delay_ms) {
  status.SetPayload(kDelayMark, absl::Cord(std::to_string(delay_ms)));
  return status;
}

void CountEnqueued(const std::string& kind, size_t n) {
  static core::CounterFamily& enqueued = core::DefaultRegistry().Counter(
      "mpim_jobs_enqueued_total", "Jobs put on the durable queue, by kind.", {"kind"});
  enqueued.With({kind}).Add(static_cast<double>(n));
}

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

void TaskWorker::RefreshGauges() {
  static core::GaugeFamily& queued = core::DefaultRegistry().Gauge(
      "mpim_jobs_queued", "Jobs on the durable queue, by kind and state (ready, leased, dead).",
      {"kind", "state"});
  static core::GaugeFamily& oldest = core::DefaultRegistry().Gauge(
      "mpim_jobs_oldest_due_seconds",
      "How long the oldest ready job that is due has waited, by kind (0: none).", {"kind"});
  static std::mutex mu;  // guards seen (kinds and states given a value)
  static std::set<std::pair<std::string, int>> seen;
  auto counts = store::Await<std::vector<store::JobCount>>(
      [&](auto cb) { store_.jobs().Count(std::move(cb)); });
  if (!counts.ok()) return;
  static constexpr const char* kStates[] = {"ready", "leased", "dead"};
  const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::lock_guard lock(mu);
  // Kinds and states that had jobs and have none now go back to 0.
  std::set<std::pair<std::string, int>> now_seen;
  std::map<std::string, double> waited;
  for (const store::JobCount& c : *counts) {
    const int state = static_cast<int>(c.state);
    queued.With({c.kind, kStates[state]}).Set(static_cast<double>(c.count));
    now_seen.insert({c.kind, state});
    if (c.state == store::JobState::kReady) {
      waited[c.kind] = std::max(0.0, static_cast<double>(now - c.oldest_run_at) / 1000.0);
    }
  }
  for (const auto& [kind, state] : seen) {
    if (!now_seen.contains({kind, state})) queued.With({kind, kStates[state]}).Set(0);
    if (!waited.contains(kind)) waited[kind] = 0;
  }
  for (const auto& [kind, seconds] : waited) oldest.With({kind}).Set(seconds);
  seen.insert(now_seen.begin(), now_seen.end());
}

void TaskWorker::Run() {
  core::CounterFamily& done = JobsDone();
  auto next_gauges = std::chrono::steady_clock::now();
  while (running_.load()) {
    if (std::chrono::steady_clock::now() >= next_gauges) {
      RefreshGauges();
      next_gauges = std::chrono::steady_clock::now() + kGaugeEvery;
    }
    auto jobs = store::Await<std::vector<store::Job>>(
        [&](auto cb) { store_.jobs().Lease(name_, kLeaseBatch, lease_ms_, std::move(cb)); });
    if (!jobs.ok() || jobs->empty()) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, jobs.ok() ? kIdlePoll : kErrorPause,
                   [this] { return woken_ || !running_.load(); });
      woken_ = false;
      continue;
    }
    // Each kind's jobs together, kinds in the order they first appear.
    std::vector<std::pair<std::string, std::vector<store::Job>>> by_kind;
    for (store::Job& job : *jobs) {
      auto it = std::find_if(by_kind.begin(), by_kind.end(),
                             [&](const auto& k) { return k.first == job.kind; });
      if (it == by_kind.end()) it = by_kind.insert(by_kind.end(), {job.kind, {}});
      it->second.push_back(std::move(job));
    }
    for (auto& [kind, batch] : by_kind) {
      auto it = handlers_.find(kind);
      std::vector<core::Status> results;
      if (it != handlers_.end()) results = it->second(batch);
      if (results.size() != batch.size()) {
        results.assign(batch.size(),
                       it == handlers_.end()
                           ? absl::InvalidArgumentError("no handler for job kind " + kind)
                           : absl::InternalError("handler gave no result for the job"));
      }
      for (const core::Status& r : results) {
        if (r.ok()) done.With({kind, "ok"}).Inc();
      }
      Settle(batch, results);
    }
  }
}

void TaskWorker::Settle(const std::vector<store::Job>& jobs,
                        const std::vector<core::Status>& results) {
  // The acks are handed to the store together (one commit), then awaited.
  std::vector<std::future<core::Status>> acks(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    if (!results[i].ok()) continue;
    acks[i] = store::BeginStatus(
        [&](auto cb) { store_.jobs().Ack(jobs[i].job_id, jobs[i].attempts, std::move(cb)); });
  }
  for (size_t i = 0; i < jobs.size(); ++i) {
    const store::Job& job = jobs[i];
    if (results[i].ok()) {
      core::Status s = acks[i].get();
      if (!s.ok()) {
        Log().Warn("job ack failed", {{"job", job.job_id}, {"error", std::string(s.message())}});
      }
      continue;
    }
    Log().Warn("job failed", {{"job", job.job_id},
                              {"kind", job.kind},
                              {"attempt", static_cast<int64_t>(job.attempts)},
                              {"error", std::string(results[i].message())}});
    auto after = store::Await<store::Job>([&](auto cb) {
      store_.jobs().Fail(job.job_id, job.attempts, FailureOf(results[i]), std::move(cb));
    });
    core::CounterFamily& done = JobsDone();
    if (after.ok() && after->state == store::JobState::kDead) {
      done.With({job.kind, "dead"}).Inc();
      Log().Error("job is a dead letter", {{"job", job.job_id}, {"kind", job.kind}});
    } else if (after.ok()) {
      done.With({job.kind, "retried"}).Inc();
    }
  }
}

}  // namespace mpim::service
