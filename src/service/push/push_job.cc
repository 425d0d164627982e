#include "service/push/push_job.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <random>

#include "core/logging.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "service/push/push_planner.h"
#include "store/blocking.h"

namespace mpim::service::push {
namespace {

constexpr int64_t kMaxRetryDelayMs = 3600000;
// How long past push.timeout_ms a batch waits for its providers' answers
// (they answer every push by their own deadline; this only bounds a bug).
constexpr auto kAnswerGrace = std::chrono::seconds(5);

const core::Logger& Log() {
  static const core::Logger log("push");
  return log;
}

struct Metrics {
  core::CounterFamily& deliveries = core::DefaultRegistry().Counter(
      "mpim_push_deliveries_total", "Pushes sent to a provider, by provider and outcome.",
      {"provider", "outcome"});
  core::HistogramFamily& seconds = core::DefaultRegistry().Histogram(
      "mpim_push_provider_seconds", "A provider's answer time per push.", {"provider"});
};

Metrics& M() {
  static Metrics m;
  return m;
}

// Answers of one provider's share of a batch, delivered to a waiting worker.
struct Answer {
  std::promise<std::vector<Result>> promise;
};

}  // namespace

int64_t RetryDelayMs(int64_t base_ms, int attempt) {
  int64_t delay = base_ms;
  for (int i = 1; i < attempt && delay < kMaxRetryDelayMs; ++i) delay *= 2;
  delay = std::min(delay, kMaxRetryDelayMs);
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  return static_cast<int64_t>(static_cast<double>(delay) * jitter(rng));
}

TaskWorker::Handler PushJobHandler(store::Store& store, const Providers& providers,
                                   const core::PushConfig& config) {
  return [&store, &providers, config](const std::vector<store::Job>& jobs) {
    std::vector<core::Status> results(jobs.size());
    std::vector<std::optional<PushPayload>> payloads(jobs.size());
    std::vector<int64_t> device_ids;
    for (size_t i = 0; i < jobs.size(); ++i) {
      auto p = DecodePayload(jobs[i].payload);
      if (!p.ok()) {
        results[i] = FinalFailure(p.status());
        continue;
      }
      payloads[i] = std::move(*p);
      device_ids.push_back(payloads[i]->device_id);
    }
    // Traced jobs (their send was): a span each, to the provider's answer.
    std::vector<core::trace::Span> spans(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!payloads[i] || payloads[i]->traceparent.empty()) continue;
      auto parent = core::trace::SpanContext::Parse(payloads[i]->traceparent);
      if (!parent) continue;
      spans[i] = core::trace::Span::Start("push", *parent, core::trace::SpanKind::kConsumer);
      spans[i].Set("mpim.msg_id", payloads[i]->msg_id);
      spans[i].Set("mpim.device_id", payloads[i]->device_id);
      spans[i].Set("mpim.attempt", static_cast<int64_t>(jobs[i].attempts));
      spans[i].Set("mpim.batch_jobs", static_cast<int64_t>(jobs.size()));
    }
    std::sort(device_ids.begin(), device_ids.end());
    device_ids.erase(std::unique(device_ids.begin(), device_ids.end()), device_ids.end());
    // Batches are at most TaskWorker::kLeaseBatch jobs: one query each.
    auto devices = store::Await<std::vector<store::Device>>(
        [&](auto cb) { store.sessions().GetDevices(device_ids, std::move(cb)); });
    if (!devices.ok()) {
      for (size_t i = 0; i < jobs.size(); ++i) {
        if (payloads[i]) results[i] = devices.status();
      }
      return results;
    }
    std::map<int64_t, const store::Device*> by_id;
    std::vector<int64_t> users;
    for (const store::Device& d : *devices) {
      by_id[d.device_id] = &d;
      users.push_back(d.user_id);
    }
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    auto unread = store::Await<std::vector<std::pair<int64_t, int64_t>>>(
        [&](auto cb) { store.conversations().TotalUnread(users, std::move(cb)); });
    std::map<int64_t, int64_t> badge;
    if (unread.ok()) {
      for (const auto& [user, count] : *unread) badge[user] = count;
    }

    // Each platform's pushes, with the index of their job.
    std::map<std::string, std::pair<std::vector<Push>, std::vector<size_t>>> by_platform;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!payloads[i]) continue;
      auto it = by_id.find(payloads[i]->device_id);
      if (it == by_id.end()) continue;  // the device is gone: nothing to do
      if (!unread.ok()) {
        results[i] = unread.status();
        continue;
      }
      const store::Device& d = *it->second;
      const PushPayload& p = *payloads[i];
      auto& [pushes, index] = by_platform[d.platform];
      pushes.push_back(Push{.delivery_id = std::to_string(jobs[i].job_id),
                            .device = {.device_id = d.device_id,
                                       .user_id = d.user_id,
                                       .platform = d.platform,
                                       .token = d.token},
                            .notification = {.conv_id = p.conv_id,
                                             .seq = p.seq,
                                             .msg_id = p.msg_id,
                                             .from = p.from,
                                             .preview = p.preview,
                                             .badge = badge[d.user_id]}});
      index.push_back(i);
    }

    // Every provider's share at once, then the answers.
    std::vector<std::pair<std::string, std::future<std::vector<Result>>>> waiting;
    for (auto& [platform, share] : by_platform) {
      Provider* provider = providers.For(platform);
      if (!provider) {
        for (size_t i : share.second) {
          results[i] = FinalFailure(
              absl::FailedPreconditionError("no push provider configured for " + platform));
        }
        continue;
      }
      auto answer = std::make_shared<Answer>();
      waiting.emplace_back(platform, answer->promise.get_future());
      provider->Send(std::move(share.first),
                     [answer](std::vector<Result> r) { answer->promise.set_value(std::move(r)); });
    }
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::milliseconds(config.timeout_ms) + kAnswerGrace;
    std::vector<std::pair<int64_t, int64_t>> gone;  // (user, device)
    for (auto& [platform, future] : waiting) {
      const std::vector<size_t>& index = by_platform[platform].second;
      std::vector<Result> answers;
      if (future.wait_until(deadline) == std::future_status::ready) answers = future.get();
      Provider* provider = providers.For(platform);
      const std::string name(provider->name());
      for (size_t k = 0; k < index.size(); ++k) {
        const size_t i = index[k];
        const store::Job& job = jobs[i];
        Result r = k < answers.size() ? answers[k] : Result{.detail = "no answer from provider"};
        M().deliveries.With({name, OutcomeName(r.outcome)}).Inc();
        spans[i].Set("mpim.push_provider", name);
        spans[i].Set("mpim.push_outcome", OutcomeName(r.outcome));
        if (r.seconds > 0) M().seconds.With({name}).Observe(r.seconds);
        switch (r.outcome) {
          case Outcome::kDelivered:
            break;
          case Outcome::kTokenGone: {
            const store::Device& d = *by_id.at(payloads[i]->device_id);
            gone.emplace_back(d.user_id, d.device_id);
            Log().Info("push token gone; device removed",
                       {{"device", d.device_id}, {"provider", name}, {"detail", r.detail}});
            break;
          }
          case Outcome::kRetry:
            results[i] = RetryAfter(
                absl::UnavailableError(name + ": " + r.detail),
                std::max(r.retry_after_ms, RetryDelayMs(config.retry_base_ms, job.attempts)));
            break;
          case Outcome::kRejected:
            results[i] = FinalFailure(absl::FailedPreconditionError(name + ": " + r.detail));
            break;
        }
      }
    }
    for (const auto& [user, device] : gone) {
      core::Status s = store::AwaitStatus(
          [&](auto cb) { store.sessions().DeleteDevice(user, device, std::move(cb)); });
      if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
        Log().Warn("device not removed", {{"device", device}, {"error", std::string(s.message())}});
      }
    }
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!results[i].ok()) spans[i].SetError(std::string(results[i].message()));
      spans[i].End();
    }
    return results;
  };
}

}  // namespace mpim::service::push
