#include "rpc/policy/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace mpim::rpc::policy {
namespace {

constexpr int64_t kNsPerMs = 1'000'000;
constexpr double kNsPerSec = 1e9;
// A full burst must be earned back within this, so (burst - 1) * interval
// and the sums with steady time stay far from overflow.
constexpr double kMaxBurstSpanSec = 1e9;

int64_t IntervalNs(double rate_per_sec) {
  return std::max<int64_t>(1, std::llround(kNsPerSec / rate_per_sec));
}

}  // namespace

core::Status RateLimiterConfig::Validate() const {
  if (!(rate_per_sec >= 0.001 && rate_per_sec <= 1e9)) {  // also refuses NaN
    return absl::InvalidArgumentError("rate limiter: rate_per_sec must be in [0.001, 1e9], got " +
                                      std::to_string(rate_per_sec));
  }
  if (burst < 1) {
    return absl::InvalidArgumentError("rate limiter: burst must be at least 1, got " +
                                      std::to_string(burst));
  }
  if (static_cast<double>(burst) / rate_per_sec > kMaxBurstSpanSec) {
    return absl::InvalidArgumentError(
        "rate limiter: burst / rate_per_sec must be at most 1e9 seconds, got burst " +
        std::to_string(burst) + " at " + std::to_string(rate_per_sec) + "/s");
  }
  return absl::OkStatus();
}

core::StatusOr<std::unique_ptr<RateLimiter>> RateLimiter::Create(const RateLimiterConfig& config,
                                                                 core::Clock& clock) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<RateLimiter>(new RateLimiter(config, clock));
}

RateLimiter::RateLimiter(const RateLimiterConfig& config, core::Clock& clock)
    : clock_(clock), interval_ns_(IntervalNs(config.rate_per_sec)), burst_(config.burst) {}

// Relaxed ordering throughout: TAT publishes no other data, and
// compare-and-swaps on one atomic are totally ordered whatever the order
// argument, so each admission moves TAT on from the value the last one left.
RateLimiter::Decision RateLimiter::Allow() {
  const int64_t now = clock_.SteadyMs() * kNsPerMs;
  const int64_t interval = interval_ns_.load(std::memory_order_relaxed);
  const int64_t tolerance = (burst_.load(std::memory_order_relaxed) - 1) * interval;
  int64_t tat = tat_ns_.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t start = std::max(tat, now);
    if (start - now > tolerance) {
      shed_.fetch_add(1, std::memory_order_relaxed);
      const int64_t wait_ns = start - now - tolerance;
      return Decision{false, (wait_ns + kNsPerMs - 1) / kNsPerMs};
    }
    if (tat_ns_.compare_exchange_weak(tat, start + interval, std::memory_order_relaxed)) {
      return Decision{true, 0};
    }
  }
}

core::Status RateLimiter::UpdateConfig(const RateLimiterConfig& config) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  const int64_t interval = IntervalNs(config.rate_per_sec);
  const int64_t old_interval = interval_ns_.exchange(interval, std::memory_order_relaxed);
  burst_.store(config.burst, std::memory_order_relaxed);
  if (interval == old_interval) return absl::OkStatus();
  // Rescale TAT's lead over now to the new interval, so the share of the
  // burst in use stays the same: a backlog earned at a slow old rate must
  // not hold back a faster new one for the old rate's time.
  const int64_t now = clock_.SteadyMs() * kNsPerMs;
  const double scale = static_cast<double>(interval) / static_cast<double>(old_interval);
  int64_t tat = tat_ns_.load(std::memory_order_relaxed);
  while (tat > now) {
    const auto lead = static_cast<int64_t>(static_cast<double>(tat - now) * scale);
    if (tat_ns_.compare_exchange_weak(tat, now + lead, std::memory_order_relaxed)) break;
  }
  return absl::OkStatus();
}

}  // namespace mpim::rpc::policy
