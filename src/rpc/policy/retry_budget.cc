#include "rpc/policy/retry_budget.h"

#include <cmath>
#include <string>
#include <utility>

namespace mpim::rpc::policy {

core::Status RetryBudgetConfig::Validate() const {
  if (buckets < 1) {
    return absl::InvalidArgumentError("retry budget: buckets must be at least 1, got " +
                                      std::to_string(buckets));
  }
  if (window_ms < buckets || window_ms % buckets != 0) {
    return absl::InvalidArgumentError(
        "retry budget: window_ms must be a positive multiple of buckets (" +
        std::to_string(buckets) + "), got " + std::to_string(window_ms));
  }
  if (!(ratio >= 0.0 && ratio <= 1000.0)) {  // also refuses NaN
    return absl::InvalidArgumentError("retry budget: ratio must be in [0, 1000], got " +
                                      std::to_string(ratio));
  }
  if (!(min_retries_per_sec >= 0.0 && std::isfinite(min_retries_per_sec))) {
    return absl::InvalidArgumentError(
        "retry budget: min_retries_per_sec must be a finite number >= 0, got " +
        std::to_string(min_retries_per_sec));
  }
  return absl::OkStatus();
}

core::StatusOr<std::unique_ptr<RetryBudget>> RetryBudget::Create(RetryBudgetConfig config,
                                                                 core::Clock& clock) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  return std::unique_ptr<RetryBudget>(new RetryBudget(std::move(config), clock));
}

RetryBudget::RetryBudget(RetryBudgetConfig config, core::Clock& clock)
    : clock_(clock),
      config_(config),
      requests_(config.window_ms, config.buckets),
      retries_(config.window_ms, config.buckets) {}

void RetryBudget::RecordRequest() {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard lock(mu_);
  requests_.Add(now);
}

bool RetryBudget::TryRetry() {
  const int64_t now = clock_.SteadyMs();
  std::lock_guard lock(mu_);
  const double allowed =
      config_.ratio * static_cast<double>(requests_.Sum(now)) +
      config_.min_retries_per_sec * static_cast<double>(config_.window_ms) / 1000.0;
  // The slack keeps a product such as 0.2 * 1000 (200.00000000000003 or
  // 199.99999999999997 in binary) from moving the limit by one.
  if (static_cast<double>(retries_.Sum(now) + 1) > allowed + 1e-9) {
    refused_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  retries_.Add(now);
  return true;
}

core::Status RetryBudget::UpdateConfig(const RetryBudgetConfig& config) {
  if (core::Status s = config.Validate(); !s.ok()) return s;
  std::lock_guard lock(mu_);
  requests_.Reshape(config.window_ms, config.buckets);
  retries_.Reshape(config.window_ms, config.buckets);
  config_ = config;
  return absl::OkStatus();
}

RetryBudgetConfig RetryBudget::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

}  // namespace mpim::rpc::policy
