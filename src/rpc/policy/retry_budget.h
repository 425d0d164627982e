// A retry budget (after Finagle's RetryBudget and Envoy's retry budgets):
// bounds the extra load that retries put on a role's peers, so a peer that
// is struggling is not buried by every client retrying at once.
//
// Over a sliding window (`window_ms` in `buckets` slices), a retry is
// allowed while
//
//   retries in the window + 1 <= ratio * requests in the window
//                                + min_retries_per_sec * window seconds
//
// so retries stay within `ratio` (20%) of the first attempts, plus a small
// floor that lets a client with little traffic still retry.
//
// Use: RecordRequest() once per first attempt of a call (not per retry);
// TryRetry() before each retry: true spends one retry from the budget (send
// it, after a back-off: backoff.h), false means give up and return the last
// error. Per-call limits (attempts, deadline) are the caller's, on top.
//
// Thread-safe: every method may be called from any thread at once; state
// lives under one short mutex. Time is the steady clock of the
// `core::Clock` given at creation.
//
// Hot reload: UpdateConfig() swaps in new settings; counts are kept unless
// the window's shape (window_ms or buckets) changes, when it starts empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "core/clock.h"
#include "core/status.h"
#include "rpc/policy/sliding_counter.h"

namespace mpim::rpc::policy {

struct RetryBudgetConfig {
  int64_t window_ms = 10000;        // span of the sliding window
  int buckets = 10;                 // slices of the window; window_ms % buckets == 0
  double ratio = 0.2;               // retries per first attempt; in [0, 1000]
  double min_retries_per_sec = 10;  // the floor; >= 0

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

class RetryBudget {
 public:
  // kInvalidArgument when `config` is bad. `clock` must outlive the budget.
  static core::StatusOr<std::unique_ptr<RetryBudget>> Create(RetryBudgetConfig config,
                                                             core::Clock& clock);

  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  // Counts one first attempt.
  void RecordRequest();

  // Spends one retry if the budget has one (true); false otherwise.
  [[nodiscard]] bool TryRetry();

  // Retries refused so far (for metrics).
  int64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // Swaps in new settings (see "Hot reload" above); kInvalidArgument and no
  // change when `config` is bad.
  [[nodiscard]] core::Status UpdateConfig(const RetryBudgetConfig& config);
  RetryBudgetConfig config() const;

 private:
  RetryBudget(RetryBudgetConfig config, core::Clock& clock);

  core::Clock& clock_;
  std::atomic<int64_t> refused_{0};

  mutable std::mutex mu_;  // guards everything below
  RetryBudgetConfig config_;
  SlidingCounter requests_;
  SlidingCounter retries_;
};

}  // namespace mpim::rpc::policy
