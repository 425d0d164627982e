#include "rpc/policy/backoff.h"

#include <string>

namespace mpim::rpc::policy {

core::Status BackoffConfig::Validate() const {
  if (base_ms < 1) {
    return absl::InvalidArgumentError("backoff: base_ms must be at least 1, got " +
                                      std::to_string(base_ms));
  }
  if (cap_ms < base_ms) {
    return absl::InvalidArgumentError("backoff: cap_ms (" + std::to_string(cap_ms) +
                                      ") must be at least base_ms (" + std::to_string(base_ms) +
                                      ")");
  }
  return absl::OkStatus();
}

int64_t BackoffCeilingMs(const BackoffConfig& config, int retry) {
  int64_t ceiling = config.base_ms;
  // Doubling stops at the cap, so it never overflows and never loops more
  // than 63 times whatever `retry` is.
  for (int i = 1; i < retry && ceiling < config.cap_ms; ++i) {
    ceiling = ceiling > config.cap_ms / 2 ? config.cap_ms : ceiling * 2;
  }
  return ceiling;
}

}  // namespace mpim::rpc::policy
