#include "rpc/policy/concurrency_limiter.h"

#include <string>

namespace mpim::rpc::policy {

core::Status ConcurrencyLimiterConfig::Validate() const {
  if (max_in_flight < 1) {
    return absl::InvalidArgumentError(
        "concurrency limiter: max_in_flight must be at least 1, got " +
        std::to_string(max_in_flight));
  }
  return absl::OkStatus();
}

core::StatusOr<std::unique_ptr<ConcurrencyLimiter>> ConcurrencyLimiter::Create(
    const ConcurrencyLimiterConfig& config) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<ConcurrencyLimiter>(new ConcurrencyLimiter(config));
}

// Relaxed ordering throughout: the counter publishes no other data, and
// read-modify-writes on one atomic are totally ordered whatever the order
// argument, which is all the limit needs.
ConcurrencyLimiter::Permit ConcurrencyLimiter::TryAcquire() {
  int64_t current = in_flight_.load(std::memory_order_relaxed);
  do {
    if (current >= limit_.load(std::memory_order_relaxed)) {
      shed_.fetch_add(1, std::memory_order_relaxed);
      return Permit();
    }
  } while (!in_flight_.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
  return Permit(this);
}

core::Status ConcurrencyLimiter::UpdateConfig(const ConcurrencyLimiterConfig& config) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  limit_.store(config.max_in_flight, std::memory_order_relaxed);
  return absl::OkStatus();
}

ConcurrencyLimiter::Permit& ConcurrencyLimiter::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    Release();
    limiter_ = other.limiter_;
    other.limiter_ = nullptr;
  }
  return *this;
}

void ConcurrencyLimiter::Permit::Release() {
  if (limiter_ == nullptr) return;
  limiter_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
  limiter_ = nullptr;
}

}  // namespace mpim::rpc::policy
