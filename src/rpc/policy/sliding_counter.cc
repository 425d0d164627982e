#include "rpc/policy/sliding_counter.h"

#include <algorithm>

namespace mpim::rpc::policy {

SlidingCounter::SlidingCounter(int64_t window_ms, int buckets)
    : bucket_ms_(window_ms / buckets), slots_(static_cast<size_t>(buckets)) {}

int64_t SlidingCounter::IndexAt(int64_t now_ms) {
  // Floor division, so a negative steady time (possible with a test clock)
  // still maps to the right slice.
  int64_t index = now_ms / bucket_ms_;
  if (now_ms % bucket_ms_ != 0 && now_ms < 0) --index;
  newest_ = std::max(newest_, index);
  return newest_;
}

void SlidingCounter::Add(int64_t now_ms, int64_t n) {
  const int64_t index = IndexAt(now_ms);
  const int64_t size = static_cast<int64_t>(slots_.size());
  Slot& slot = slots_[static_cast<size_t>(((index % size) + size) % size)];
  if (slot.index != index) slot = Slot{index, 0};
  slot.count += n;
}

int64_t SlidingCounter::Sum(int64_t now_ms) {
  const int64_t index = IndexAt(now_ms);
  const int64_t oldest = index - static_cast<int64_t>(slots_.size()) + 1;
  int64_t sum = 0;
  for (const Slot& slot : slots_) {
    if (slot.index >= oldest && slot.index <= index) sum += slot.count;
  }
  return sum;
}

void SlidingCounter::Reset() {
  for (Slot& slot : slots_) slot = Slot{};
}

void SlidingCounter::Reshape(int64_t window_ms, int buckets) {
  if (window_ms == this->window_ms() && buckets == this->buckets()) return;
  bucket_ms_ = window_ms / buckets;
  slots_.assign(static_cast<size_t>(buckets), Slot{});
}

}  // namespace mpim::rpc::policy
