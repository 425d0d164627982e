// Server-side admission by calls in flight: a role's gRPC server takes a
// permit for each incoming call and sheds the call with kUnavailable
// ("overloaded", safe to retry on another node) when `max_in_flight` calls
// are already running. Bounding the work in progress bounds the memory and
// the queueing delay of a node under overload, where letting everything in
// makes every call late.
//
// Use, in a handler:
//
//   ConcurrencyLimiter::Permit permit = limiter.TryAcquire();
//   if (!permit) return absl::UnavailableError("overloaded: too many calls in flight");
//   ... keep `permit` (move it into the reactor) until the call finishes.
//
// Thread-safe and lock-free: every method may be called from any thread at
// once (gRPC's threads). The count of calls in flight is one atomic,
// claimed with compare-and-swap, so it never exceeds the limit, not even
// for an instant. The limiter must outlive its permits.
//
// Hot reload: UpdateConfig() swaps in a new limit at once; calls in flight
// are kept. A limit lowered below the calls in flight refuses new calls
// until enough have finished.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/status.h"

namespace mpim::rpc::policy {

struct ConcurrencyLimiterConfig {
  int64_t max_in_flight = 1000;  // >= 1

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

class ConcurrencyLimiter {
 public:
  // One admitted call's slot; given back when destroyed or Release()d.
  // Move-only; an empty permit (refused, moved from, released) is false.
  class Permit {
   public:
    Permit() = default;
    Permit(Permit&& other) noexcept : limiter_(other.limiter_) { other.limiter_ = nullptr; }
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { Release(); }

    explicit operator bool() const { return limiter_ != nullptr; }
    // Gives the slot back now (no-op on an empty permit).
    void Release();

   private:
    friend class ConcurrencyLimiter;
    explicit Permit(ConcurrencyLimiter* limiter) : limiter_(limiter) {}
    ConcurrencyLimiter* limiter_ = nullptr;
  };

  // kInvalidArgument when `config` is bad.
  static core::StatusOr<std::unique_ptr<ConcurrencyLimiter>> Create(
      const ConcurrencyLimiterConfig& config);

  ConcurrencyLimiter(const ConcurrencyLimiter&) = delete;
  ConcurrencyLimiter& operator=(const ConcurrencyLimiter&) = delete;

  // A permit, or an empty one when the limit is reached (counted as shed).
  Permit TryAcquire();

  // For metrics: calls in flight now, calls shed so far, the limit.
  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  int64_t shed() const { return shed_.load(std::memory_order_relaxed); }
  int64_t limit() const { return limit_.load(std::memory_order_relaxed); }

  // Swaps in a new limit (see "Hot reload" above); kInvalidArgument and no
  // change when `config` is bad.
  [[nodiscard]] core::Status UpdateConfig(const ConcurrencyLimiterConfig& config);

 private:
  explicit ConcurrencyLimiter(const ConcurrencyLimiterConfig& config)
      : limit_(config.max_in_flight) {}

  std::atomic<int64_t> limit_;
  std::atomic<int64_t> in_flight_{0};
  std::atomic<int64_t> shed_{0};
};

}  // namespace mpim::rpc::policy
