// A count over a sliding time window, kept in `buckets` equal time slices of
// `window_ms / buckets` each (10 one-second slices for a 10 s window). What
// Sum() returns covers the current slice and the `buckets - 1` before it, so
// an event stays counted for between (buckets - 1) and `buckets` slice
// widths: the finer the slices, the smoother the slide. Used by the circuit
// breaker (calls, failures) and the retry budget (requests, retries).
//
// Not thread-safe: the owner guards it (both users hold their own mutex).
// Time is steady milliseconds passed in by the caller; a time earlier than
// the newest slice seen counts into the newest slice (time never runs
// backwards here).
#pragma once

#include <cstdint>
#include <limits>
#include <vector>

namespace mpim::rpc::policy {

class SlidingCounter {
 public:
  // window_ms >= buckets >= 1 and window_ms a multiple of buckets (the
  // configs' Validate() checks this before any counter is built).
  SlidingCounter(int64_t window_ms, int buckets);

  // Adds `n` at `now_ms`.
  void Add(int64_t now_ms, int64_t n = 1);

  // The total of the slices still in the window at `now_ms`.
  int64_t Sum(int64_t now_ms);

  // Forgets everything counted so far.
  void Reset();

  // Takes a new shape (same preconditions as the constructor) and starts
  // empty; keeps the counts when the shape is the same.
  void Reshape(int64_t window_ms, int buckets);

  int64_t window_ms() const { return bucket_ms_ * static_cast<int64_t>(slots_.size()); }
  int buckets() const { return static_cast<int>(slots_.size()); }

 private:
  static constexpr int64_t kNone = std::numeric_limits<int64_t>::min();

  struct Slot {
    int64_t index = kNone;  // which slice (now_ms / bucket_ms_) this slot holds
    int64_t count = 0;
  };

  // The slice index for `now_ms`, never below the newest seen.
  int64_t IndexAt(int64_t now_ms);

  int64_t bucket_ms_;
  int64_t newest_ = kNone;
  std::vector<Slot> slots_;
};

}  // namespace mpim::rpc::policy
