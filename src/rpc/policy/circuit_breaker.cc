#include "rpc/policy/circuit_breaker.h"

#include <algorithm>
#include <string>
#include <utility>

namespace mpim::rpc::policy {

core::Status CircuitBreakerConfig::Validate() const {
  if (buckets < 1) {
    return absl::InvalidArgumentError("circuit breaker: buckets must be at least 1, got " +
                                      std::to_string(buckets));
  }
  if (window_ms < buckets || window_ms % buckets != 0) {
    return absl::InvalidArgumentError(
        "circuit breaker: window_ms must be a positive multiple of buckets (" +
        std::to_string(buckets) + "), got " + std::to_string(window_ms));
  }
  if (min_calls < 1) {
    return absl::InvalidArgumentError("circuit breaker: min_calls must be at least 1, got " +
                                      std::to_string(min_calls));
  }
  if (!(error_rate > 0.0 && error_rate <= 1.0)) {  // also refuses NaN
    return absl::InvalidArgumentError("circuit breaker: error_rate must be in (0, 1], got " +
                                      std::to_string(error_rate));
  }
  if (open_ms < 1) {
    return absl::InvalidArgumentError("circuit breaker: open_ms must be at least 1, got " +
                                      std::to_string(open_ms));
  }
  if (max_open_ms < open_ms) {
    return absl::InvalidArgumentError("circuit breaker: max_open_ms (" +
                                      std::to_string(max_open_ms) + ") must be at least open_ms (" +
                                      std::to_string(open_ms) + ")");
  }
  if (half_open_calls < 1) {
    return absl::InvalidArgumentError("circuit breaker: half_open_calls must be at least 1, got " +
                                      std::to_string(half_open_calls));
  }
  return absl::OkStatus();
}

bool CountsAsEndpointFailure(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kResourceExhausted:
      return true;
    default:
      return false;
  }
}

std::string_view StateName(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::kClosed:
      return "closed";
    case CircuitBreaker::State::kOpen:
      return "open";
    case CircuitBreaker::State::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

core::StatusOr<std::unique_ptr<CircuitBreaker>> CircuitBreaker::Create(CircuitBreakerConfig config,
                                                                       core::Clock& clock,
                                                                       Listener listener) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<CircuitBreaker>(
      new CircuitBreaker(std::move(config), clock, std::move(listener)));
}

CircuitBreaker::CircuitBreaker(CircuitBreakerConfig config, core::Clock& clock, Listener listener)
    : clock_(clock),
      listener_(std::move(listener)),
      config_(config),
      calls_(config.window_ms, config.buckets),
      failures_(config.window_ms, config.buckets) {}

CircuitBreaker::Permit CircuitBreaker::Allow() {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard lock(mu_);
  AdvanceLocked(now);
  switch (state_) {
    case State::kClosed:
      return Permit(true, epoch_);
    case State::kHalfOpen:
      if (probes_out_ + probes_ok_ < config_.half_open_calls) {
        ++probes_out_;
        return Permit(true, epoch_);
      }
      break;
    case State::kOpen:
      break;
  }
  refused_.fetch_add(1, std::memory_order_relaxed);
  return Permit(false, epoch_);
}

void CircuitBreaker::Record(const Permit& permit, bool ok) {
  if (!permit.admitted_) return;
  const int64_t now = clock_.SteadyMs();
  std::lock_guard lock(mu_);
  if (permit.epoch_ != epoch_) return;  // admitted before the last change of state
  switch (state_) {
    case State::kClosed: {
      calls_.Add(now);
      if (ok) return;
      failures_.Add(now);
      const int64_t calls = calls_.Sum(now);
      const int64_t failures = failures_.Sum(now);
      if (calls >= config_.min_calls &&
          static_cast<double>(failures) >= config_.error_rate * static_cast<double>(calls)) {
        open_period_ms_ = config_.open_ms;
        TripLocked(now);
      }
      return;
    }
    case State::kHalfOpen:
      --probes_out_;
      if (!ok) {
        open_period_ms_ = std::min(config_.max_open_ms, open_period_ms_ * 2);
        TripLocked(now);
      } else if (++probes_ok_ >= config_.half_open_calls) {
        TransitionLocked(State::kClosed);
      }
      return;
    case State::kOpen:
      return;  // unreachable: an open breaker admits nothing in its epoch
  }
}

void CircuitBreaker::Release(const Permit& permit) {
  if (!permit.admitted_) return;
  std::lock_guard lock(mu_);
  if (permit.epoch_ == epoch_ && state_ == State::kHalfOpen) --probes_out_;
}

CircuitBreaker::State CircuitBreaker::state() {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard lock(mu_);
  AdvanceLocked(now);
  return state_;
}

core::Status CircuitBreaker::UpdateConfig(const CircuitBreakerConfig& config) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  std::lock_guard lock(mu_);
  calls_.Reshape(config.window_ms, config.buckets);
  failures_.Reshape(config.window_ms, config.buckets);
  config_ = config;
  return absl::OkStatus();
}

CircuitBreakerConfig CircuitBreaker::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

void CircuitBreaker::AdvanceLocked(int64_t now_ms) {
  if (state_ == State::kOpen && now_ms >= open_until_ms_) {
    TransitionLocked(State::kHalfOpen);
  }
}

void CircuitBreaker::TripLocked(int64_t now_ms) {
  open_until_ms_ = now_ms + open_period_ms_;
  trips_.fetch_add(1, std::memory_order_relaxed);
  TransitionLocked(State::kOpen);
}

void CircuitBreaker::TransitionLocked(State to) {
  const State from = state_;
  state_ = to;
  ++epoch_;
  probes_out_ = 0;
  probes_ok_ = 0;
  if (to == State::kClosed) {
    calls_.Reset();
    failures_.Reset();
  }
  if (listener_) listener_(from, to);
}

}  // namespace mpim::rpc::policy
