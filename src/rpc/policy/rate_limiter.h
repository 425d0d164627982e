// Server-side admission by rate: GCRA, the generic cell rate algorithm (the
// virtual-scheduling form used for ATM cells). Calls are admitted at
// `rate_per_sec` on average, and up to `burst` at once after a quiet spell;
// a refused call is shed with the protocol's `rate_limited`
// (core::RateLimitedError) carrying how long to wait.
//
// The whole state is one number, the theoretical arrival time (TAT): when
// the next call would be due if calls came exactly at the rate. A call at
// `now` is admitted when TAT - now <= (burst - 1) * interval, where
// interval = 1 s / rate_per_sec, and then moves TAT to max(TAT, now) +
// interval. Refused, it leaves TAT alone and learns it may retry in
// TAT - now - (burst - 1) * interval. TAT is kept in nanoseconds, so rates
// far above 1,000/s are paced exactly even though the clock ticks in ms;
// but calls in one tick share one `now`, so at most `burst` pass per tick:
// set burst >= rate_per_sec / 1000 for the full rate.
//
// Use, in a handler:
//
//   if (auto d = limiter.Allow(); !d.allowed) {
//     return core::RateLimitedError("rate limited", d.retry_after_ms);
//   }
//
// Thread-safe and lock-free: every method may be called from any thread at
// once (gRPC's threads). TAT is one atomic updated by compare-and-swap, so
// concurrent callers never admit more than the rate and burst allow. Time
// is the steady clock of the `core::Clock` given at creation.
//
// Hot reload: UpdateConfig() swaps in a new rate and burst at once and
// keeps the admissions already granted: TAT's lead over now is rescaled to
// the new interval, so the share of the burst in use stays the same (a
// full burst at 10/s is still a full burst at 1,000/s, and frees a call in
// 1 ms, not 100 ms). Rate, burst and TAT are separate atomics: a call
// racing the swap may be judged by a mix of the old and new settings, which
// admits or refuses that one call about as one of the two would have.
#pragma once

#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>

#include "core/clock.h"
#include "core/status.h"

namespace mpim::rpc::policy {

struct RateLimiterConfig {
  double rate_per_sec = 1000;  // average admissions per second; in [0.001, 1e9]
  int64_t burst = 100;         // admissions at once after a quiet spell; >= 1

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

class RateLimiter {
 public:
  struct Decision {
    bool allowed = false;
    int64_t retry_after_ms = 0;  // when refused: >= 1, the wait until a call would pass
  };

  // kInvalidArgument when `config` is bad. `clock` must outlive the limiter.
  static core::StatusOr<std::unique_ptr<RateLimiter>> Create(const RateLimiterConfig& config,
                                                             core::Clock& clock);

  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // Admits one call now, or refuses it (counted as shed) with the wait.
  Decision Allow();

  // Calls refused so far (for metrics).
  int64_t shed() const { return shed_.load(std::memory_order_relaxed); }

  // Swaps in new settings (see "Hot reload" above); kInvalidArgument and no
  // change when `config` is bad.
  [[nodiscard]] core::Status UpdateConfig(const RateLimiterConfig& config);

 private:
  RateLimiter(const RateLimiterConfig& config, core::Clock& clock);

  core::Clock& clock_;
  std::atomic<int64_t> interval_ns_;  // 1 s / rate_per_sec
  std::atomic<int64_t> burst_;
  // The theoretical arrival time, steady ns; the lowest value means "never":
  // the first call finds the full burst.
  std::atomic<int64_t> tat_ns_{std::numeric_limits<int64_t>::min()};
  std::atomic<int64_t> shed_{0};
};

}  // namespace mpim::rpc::policy
