#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>

namespace mpim::bench {
namespace {

TEST(HistogramTest, SmallValuesAreExact) {
  for (uint64_t v = 0; v < Histogram::kLinear; ++v) {
    EXPECT_EQ(Histogram::LowestAt(Histogram::IndexOf(v)), v);
    EXPECT_EQ(Histogram::HighestAt(Histogram::IndexOf(v)), v);
  }
}

TEST(HistogramTest, BucketsCoverEveryValueWithinOnePart128) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; ++i) {
    const uint64_t v = rng() >> (rng() % 64);
    const size_t index = Histogram::IndexOf(v);
    ASSERT_LT(index, Histogram::kBuckets);
    const uint64_t lo = Histogram::LowestAt(index), hi = Histogram::HighestAt(index);
    ASSERT_LE(lo, v);
    ASSERT_GE(hi, v);
    ASSERT_LE(static_cast<double>(hi - lo), static_cast<double>(lo) / 128.0) << v;
  }
  EXPECT_EQ(Histogram::IndexOf(UINT64_MAX), Histogram::kBuckets - 1);
  EXPECT_EQ(Histogram::HighestAt(Histogram::kBuckets - 1), UINT64_MAX);
}

TEST(HistogramTest, BucketsAreContiguous) {
  for (size_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    ASSERT_EQ(Histogram::HighestAt(i) + 1, Histogram::LowestAt(i + 1)) << i;
  }
}

TEST(HistogramTest, PercentilesOfAUniformSpread) {
  Histogram h;
  for (uint64_t v = 1; v <= 100000; ++v) h.Record(v * 1000);  // 1 us .. 100 ms in ns
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.min(), 1000u);
  EXPECT_EQ(h.max(), 100000000u);
  EXPECT_DOUBLE_EQ(h.mean(), 50000500.0);
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double exact = p / 100 * 100000 * 1000;
    EXPECT_NEAR(static_cast<double>(h.Percentile(p)), exact, exact / 128) << p;
  }
  EXPECT_EQ(h.Percentile(100), h.max());
  EXPECT_EQ(h.Percentile(0), Histogram::HighestAt(Histogram::IndexOf(1000)));
}

TEST(HistogramTest, PercentileNeverExceedsMax) {
  Histogram h;
  h.Record(1000001);
  EXPECT_EQ(h.Percentile(50), 1000001u);
  EXPECT_EQ(h.Percentile(99.99), 1000001u);
}

TEST(HistogramTest, EmptyHistogram) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.Percentile(99), 0u);
  auto parsed = Histogram::Parse(h.Serialize());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->count(), 0u);
}

TEST(HistogramTest, MergeEqualsRecordingEverything) {
  Histogram a, b, all;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = rng() % 50000000;
    (i % 3 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double p : {1.0, 50.0, 99.0, 99.99}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
}

TEST(HistogramTest, RecordWithCountAndReset) {
  Histogram h;
  h.Record(500, 3);
  h.Record(10, 0);  // nothing
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.min(), 500u);
  h.Reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(HistogramTest, SerializeRoundTrip) {
  Histogram h;
  for (uint64_t v : {0ull, 5ull, 300ull, 123456789ull, 9999999999ull}) h.Record(v, v % 7 + 1);
  auto parsed = Histogram::Parse(h.Serialize());
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->Serialize(), h.Serialize());
  EXPECT_EQ(parsed->count(), h.count());
  EXPECT_EQ(parsed->min(), h.min());
  EXPECT_EQ(parsed->max(), h.max());
  EXPECT_DOUBLE_EQ(parsed->mean(), h.mean());
}

TEST(HistogramTest, ParseRejectsMalformedText) {
  EXPECT_FALSE(Histogram::Parse("").has_value());
  EXPECT_FALSE(Histogram::Parse("1 2").has_value());
  EXPECT_FALSE(Histogram::Parse("1 2 3 x:1").has_value());
  EXPECT_FALSE(Histogram::Parse("1 2 3 99999:1").has_value());  // index out of range
  EXPECT_FALSE(Histogram::Parse("1 2 3 4").has_value());
}

}  // namespace
}  // namespace mpim::bench
