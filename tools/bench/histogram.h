// A log-linear latency histogram in the style of HdrHistogram: values below
// 256 are counted exactly, above that each power of two is split into 128
// buckets, so any recorded value is reported within 1/128 (0.8%) of itself.
// Covers the whole uint64 range in 7,424 counters (58 KiB); no allocation
// after construction. Not thread-safe: one per thread, merged afterwards.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpim::bench {

class Histogram {
 public:
  static constexpr int kLinearBits = 8;                                    // exact below 256
  static constexpr int kSubBits = 7;                                       // 128 buckets per octave
  static constexpr uint64_t kLinear = 1u << kLinearBits;                   // 256
  static constexpr uint64_t kSub = 1u << kSubBits;                         // 128
  static constexpr size_t kBuckets = kLinear + (64 - kLinearBits) * kSub;  // 7,424

  Histogram();

  void Record(uint64_t value, uint64_t n = 1);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? static_cast<double>(sum_) / count_ : 0.0; }
  // The value at percentile `p` (0-100]: the highest value equivalent to the
  // bucket holding the ceil(p% * count)-th smallest value, never above max().
  // 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket arithmetic, public for tests and plots.
  static size_t IndexOf(uint64_t value);
  static uint64_t LowestAt(size_t index);
  static uint64_t HighestAt(size_t index);

  // Calls fn(lowest, highest, count) for every non-empty bucket, ascending.
  template <typename Fn>
  void ForEachBucket(Fn fn) const {
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i]) fn(LowestAt(i), HighestAt(i), counts_[i]);
    }
  }

  // Compact text ("<min> <max> <sum> idx:count ...") for passing a histogram
  // between processes; Parse gives nullopt on malformed text.
  std::string Serialize() const;
  static std::optional<Histogram> Parse(std::string_view text);

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;  // wraps only past 584 years of nanoseconds
};

}  // namespace mpim::bench
