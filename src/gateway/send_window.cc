#include "gateway/send_window.h"

namespace mpim::gateway {

core::Status SendWindow::Queue(Send send) {
  if (waiting_.size() >= kMaxWaiting) {
    return core::RateLimitedError("too many sends waiting", 1000);
  }
  waiting_.push_back(std::move(send));
  return absl::OkStatus();
}

std::optional<SendWindow::Send> SendWindow::TakeNext() {
  if (unordered_ != 0 || in_flight_ >= kMaxInFlight || waiting_.empty()) return std::nullopt;
  std::optional<Send> next(std::move(waiting_.front()));
  waiting_.pop_front();
  return next;
}

uint64_t SendWindow::Start() {
  ++in_flight_;
  unordered_ = ++started_;
  return unordered_;
}

bool SendWindow::Ordered(uint64_t number) {
  if (unordered_ != number) return false;
  unordered_ = 0;
  return true;
}

void SendWindow::Finished(uint64_t number) {
  --in_flight_;
  if (unordered_ == number) unordered_ = 0;
}

bool SendWindow::Strike(int64_t now_ms, int64_t limit) {
  strikes_ms_.push_back(now_ms);
  while (!strikes_ms_.empty() && now_ms - strikes_ms_.front() > kStrikeWindowMs) {
    strikes_ms_.pop_front();
  }
  return static_cast<int64_t>(strikes_ms_.size()) >= limit;
}

core::Status SendWindow::ClosingRefusal(bool restarting) {
  if (restarting) return absl::UnavailableError("server restarting: send again after reconnecting");
  return core::RateLimitedError("session closing: rate limited repeatedly", kStrikeWindowMs);
}

}  // namespace mpim::gateway
