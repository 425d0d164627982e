// Time sources. Code that reads the time takes a `Clock&` so tests can drive
// it with a ManualClock (including steps backwards, as NTP may do to the wall
// clock).
//
// Thread-safe: every method of every Clock here may be called from any thread
// at any time. No method fails.
#pragma once

#include <atomic>
#include <cstdint>

namespace mpim::core {

class Clock {
 public:
  virtual ~Clock() = default;

  // Wall-clock time in milliseconds since the Unix epoch. May jump forwards
  // or backwards when the system time is changed.
  virtual int64_t NowMs() const = 0;

  // Monotonic milliseconds from an arbitrary origin; never goes backwards.
  // Use for timeouts and durations, never for timestamps shown to anyone.
  virtual int64_t SteadyMs() const = 0;
};

// The operating system's clocks (CLOCK_REALTIME and CLOCK_MONOTONIC).
class RealClock final : public Clock {
 public:
  int64_t NowMs() const override;
  int64_t SteadyMs() const override;
};

// The process-wide RealClock. Never destroyed, so usable from static
// destructors and detached threads.
Clock& SystemClock();

// A clock that moves only when told to; for tests.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(int64_t now_ms = 0, int64_t steady_ms = 0)
      : now_ms_(now_ms), steady_ms_(steady_ms) {}

  int64_t NowMs() const override { return now_ms_.load(std::memory_order_relaxed); }
  int64_t SteadyMs() const override { return steady_ms_.load(std::memory_order_relaxed); }

  // Sets the wall clock, backwards if `now_ms` is earlier; the steady clock
  // is unaffected (as when the system time is stepped).
  void SetNowMs(int64_t now_ms) { now_ms_.store(now_ms, std::memory_order_relaxed); }

  // Moves both clocks by `delta_ms`. A negative delta moves only the wall
  // clock back; the steady clock never goes backwards.
  void AdvanceMs(int64_t delta_ms) {
    now_ms_.fetch_add(delta_ms, std::memory_order_relaxed);
    if (delta_ms > 0) steady_ms_.fetch_add(delta_ms, std::memory_order_relaxed);
  }

 private:
  std::atomic<int64_t> now_ms_;
  std::atomic<int64_t> steady_ms_;
};

}  // namespace mpim::core
