#include "gateway/unauthenticated_cap.h"

namespace mpim::gateway {

UnauthenticatedCap::UnauthenticatedCap(int64_t max, core::MetricsRegistry& metrics)
    : max_(max),
      gauge_(metrics
                 .Gauge("mpim_ws_unauthenticated",
                        "WebSockets waiting for an auth frame (gateway.max_unauthenticated).")
                 .With({})) {}

UnauthenticatedCap::Slot UnauthenticatedCap::TryAcquire() {
  if (count_.fetch_add(1, std::memory_order_relaxed) >= max_ && max_ != 0) {
    count_.fetch_sub(1, std::memory_order_relaxed);
    return Slot();
  }
  gauge_.Inc();
  return Slot(this);
}

UnauthenticatedCap::Slot& UnauthenticatedCap::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    cap_ = other.cap_;
    other.cap_ = nullptr;
  }
  return *this;
}

void UnauthenticatedCap::Slot::Release() {
  if (cap_ == nullptr) return;
  cap_->count_.fetch_sub(1, std::memory_order_relaxed);
  cap_->gauge_.Dec();
  cap_ = nullptr;
}

}  // namespace mpim::gateway
