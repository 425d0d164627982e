// A circuit breaker for one endpoint (one peer node of a role): it stops a
// client from sending calls to a peer that is failing, so the calls fail fast
// instead of waiting out their deadlines, and lets the peer recover.
//
//   closed     calls pass; outcomes are counted over a sliding window
//              (`window_ms` in `buckets` slices). When the window holds at
//              least `min_calls` calls and failures / calls >= `error_rate`,
//              the breaker trips: open.
//   open       calls are refused (the caller fails them at once with
//              kUnavailable) for the open duration: `open_ms` on the first
//              trip, doubled on each trip that follows a failed probe, up to
//              `max_open_ms`. Then half-open.
//   half-open  at most `half_open_calls` probe calls pass; when that many
//              probes have succeeded the breaker closes (empty window, open
//              duration back to `open_ms`); one failed probe opens it again.
//
// Use, around every call to the endpoint:
//
//   CircuitBreaker::Permit permit = breaker.Allow();
//   if (!permit) return absl::UnavailableError("circuit open for " + peer);
//   ... make the call; when it completes:
//   breaker.Record(permit, !CountsAsEndpointFailure(status.code()));
//
// Every admitted permit must be given back exactly once: Record() with the
// outcome, or Release() for a call that says nothing about the endpoint (the
// caller cancelled it, or never sent it). A permit never given back holds a
// half-open probe slot, so the breaker would stay half-open. An outcome that
// arrives after the breaker changed state (a slow call admitted while closed
// that ends after the trip) is ignored: each permit carries the epoch it was
// admitted in.
//
// Which outcomes are failures is the caller's choice. The intended mapping
// (CountsAsEndpointFailure below) counts what says the endpoint is sick or
// overloaded: kUnavailable, kDeadlineExceeded, kInternal and
// kResourceExhausted. An answer about the request (kInvalidArgument,
// kNotFound, kPermissionDenied, kAlreadyExists, ...) is a success: the peer
// worked. kCancelled by the caller is neither: Release().
//
// Thread-safe: every method may be called from any thread at once (gRPC
// completion threads). State lives under one mutex held for a few counter
// updates, never across a call out except the transition listener (below).
// Time is the steady clock of the `core::Clock` given at creation.
//
// Hot reload: UpdateConfig() swaps in new settings and keeps the state (an
// open breaker stays open until its current open period ends). When the
// window's shape (window_ms or buckets) changes, the window starts empty.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>

#include "absl/status/status.h"
#include "core/clock.h"
#include "core/status.h"
#include "rpc/policy/sliding_counter.h"

namespace mpim::rpc::policy {

struct CircuitBreakerConfig {
  int64_t window_ms = 10000;    // span of the sliding window of outcomes
  int buckets = 10;             // slices of the window; window_ms % buckets == 0
  int64_t min_calls = 20;       // calls in the window before it may trip
  double error_rate = 0.5;      // trips at failures / calls >= this; in (0, 1]
  int64_t open_ms = 1000;       // first open period
  int64_t max_open_ms = 30000;  // cap of the doubling open period; >= open_ms
  int64_t half_open_calls = 3;  // probes let through, and successes needed to close

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

// The intended mapping of a finished call's code to an outcome for the
// breaker (see above): true for kUnavailable, kDeadlineExceeded, kInternal
// and kResourceExhausted; false for every other code, OK included.
bool CountsAsEndpointFailure(absl::StatusCode code);

class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  // Called on every change of state, under the breaker's lock (so calls
  // arrive in the order of the changes): keep it short (set a gauge, count,
  // log) and never call back into the breaker from it.
  using Listener = std::function<void(State from, State to)>;

  // What Allow() returns: admitted or not, and the epoch it was admitted in.
  // A plain value: copy it into the call's completion.
  class Permit {
   public:
    Permit() = default;
    explicit operator bool() const { return admitted_; }
    bool admitted() const { return admitted_; }

   private:
    friend class CircuitBreaker;
    Permit(bool admitted, uint64_t epoch) : admitted_(admitted), epoch_(epoch) {}
    bool admitted_ = false;
    uint64_t epoch_ = 0;
  };

  // kInvalidArgument when `config` is bad. `clock` must outlive the breaker.
  static core::StatusOr<std::unique_ptr<CircuitBreaker>> Create(CircuitBreakerConfig config,
                                                                core::Clock& clock,
                                                                Listener listener = nullptr);

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // May this call go out? Moves open -> half-open when the open period is
  // over. A refused permit need not be given back.
  Permit Allow();

  // The outcome of an admitted call (see the mapping above). Refused or
  // stale permits are ignored.
  void Record(const Permit& permit, bool ok);

  // Gives back an admitted permit without an outcome.
  void Release(const Permit& permit);

  // The state now (moves open -> half-open when the open period is over).
  State state();

  // Counters for metrics: times the breaker opened; calls refused.
  int64_t trips() const { return trips_.load(std::memory_order_relaxed); }
  int64_t refused() const { return refused_.load(std::memory_order_relaxed); }

  // Swaps in new settings (see "Hot reload" above); kInvalidArgument and no
  // change when `config` is bad.
  [[nodiscard]] core::Status UpdateConfig(const CircuitBreakerConfig& config);
  CircuitBreakerConfig config() const;

 private:
  CircuitBreaker(CircuitBreakerConfig config, core::Clock& clock, Listener listener);

  // All below run with mu_ held.
  void AdvanceLocked(int64_t now_ms);
  void TransitionLocked(State to);
  void TripLocked(int64_t now_ms);

  core::Clock& clock_;
  const Listener listener_;
  std::atomic<int64_t> trips_{0};
  std::atomic<int64_t> refused_{0};

  mutable std::mutex mu_;  // guards everything below
  CircuitBreakerConfig config_;
  State state_ = State::kClosed;
  uint64_t epoch_ = 0;          // bumped on every change of state
  SlidingCounter calls_;        // closed: calls counted in the window
  SlidingCounter failures_;     // closed: failures among them
  int64_t open_until_ms_ = 0;   // open: when half-open begins
  int64_t open_period_ms_ = 0;  // open: the length of the current open period
  int64_t probes_out_ = 0;      // half-open: admitted probes not given back
  int64_t probes_ok_ = 0;       // half-open: probes that succeeded
};

std::string_view StateName(CircuitBreaker::State state);

}  // namespace mpim::rpc::policy
