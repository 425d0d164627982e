#include "bench/histogram.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace mpim::bench {

Histogram::Histogram() : counts_(kBuckets, 0) {}

size_t Histogram::IndexOf(uint64_t value) {
  if (value < kLinear) return static_cast<size_t>(value);
  const int msb = 63 - __builtin_clzll(value);  // >= kLinearBits
  const int shift = msb - kSubBits;             // keeps the top kSubBits+1 bits
  const uint64_t top = value >> shift;          // in [kSub, 2*kSub)
  return static_cast<size_t>(kLinear + static_cast<uint64_t>(msb - kLinearBits) * kSub +
                             (top - kSub));
}

uint64_t Histogram::LowestAt(size_t index) {
  if (index < kLinear) return index;
  const uint64_t k = index - kLinear;
  const int msb = static_cast<int>(k / kSub) + kLinearBits;
  const uint64_t top = k % kSub + kSub;
  return top << (msb - kSubBits);
}

uint64_t Histogram::HighestAt(size_t index) {
  if (index < kLinear) return index;
  const int msb = static_cast<int>((index - kLinear) / kSub) + kLinearBits;
  return LowestAt(index) + ((uint64_t{1} << (msb - kSubBits)) - 1);
}

void Histogram::Record(uint64_t value, uint64_t n) {
  if (n == 0) return;
  counts_[IndexOf(value)] += n;
  count_ += n;
  sum_ += value * n;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ = UINT64_MAX;
  max_ = 0;
  sum_ = 0;
}

uint64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  uint64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::min(HighestAt(i), max_);
  }
  return max_;
}

std::string Histogram::Serialize() const {
  std::string out = std::to_string(min()) + " " + std::to_string(max_) + " " + std::to_string(sum_);
  for (size_t i = 0; i < kBuckets; ++i) {
    if (!counts_[i]) continue;
    out += ' ';
    out += std::to_string(i);
    out += ':';
    out += std::to_string(counts_[i]);
  }
  return out;
}

namespace {

bool ParseU64(std::string_view& text, uint64_t& out, char end) {
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || ptr == text.data()) return false;
  text.remove_prefix(static_cast<size_t>(ptr - text.data()));
  if (text.empty()) return true;
  if (text.front() != end) return false;
  text.remove_prefix(1);
  return true;
}

}  // namespace

std::optional<Histogram> Histogram::Parse(std::string_view text) {
  Histogram h;
  uint64_t min = 0, max = 0, sum = 0;
  if (!ParseU64(text, min, ' ') || !ParseU64(text, max, ' ') || !ParseU64(text, sum, ' ')) {
    return std::nullopt;
  }
  while (!text.empty()) {
    uint64_t index = 0, n = 0;
    if (!ParseU64(text, index, ':') || !ParseU64(text, n, ' ') || index >= kBuckets) {
      return std::nullopt;
    }
    h.counts_[index] += n;
    h.count_ += n;
  }
  if (h.count_) {
    h.min_ = min;
    h.max_ = max;
    h.sum_ = sum;
  }
  return h;
}

}  // namespace mpim::bench
