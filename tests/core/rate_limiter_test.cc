#include "core/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace mpim::core {
namespace {

TEST(RateLimiterTest, BurstThenRate) {
  KeyedRateLimiter<std::string> limiter(/*rate_per_sec=*/2, /*burst=*/3);
  int64_t t = 1000;
  EXPECT_EQ(limiter.TryAcquire("a", t), 0);
  EXPECT_EQ(limiter.TryAcquire("a", t), 0);
  EXPECT_EQ(limiter.TryAcquire("a", t), 0);
  EXPECT_EQ(limiter.TryAcquire("a", t), 500);  // one token per 500 ms
  EXPECT_EQ(limiter.TryAcquire("b", t), 0);    // keys are independent
  EXPECT_EQ(limiter.TryAcquire("a", t + 250), 250);
  EXPECT_EQ(limiter.TryAcquire("a", t + 500), 0);
  EXPECT_GT(limiter.TryAcquire("a", t + 500), 0);
  // Refill never exceeds the burst.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.TryAcquire("a", t + 100000), 0);
  EXPECT_GT(limiter.TryAcquire("a", t + 100000), 0);
}

TEST(RateLimiterTest, ClockGoingBackwardsGrantsNothingExtra) {
  KeyedRateLimiter<int64_t> limiter(1, 1);
  EXPECT_EQ(limiter.TryAcquire(7, 5000), 0);
  EXPECT_GT(limiter.TryAcquire(7, 4000), 0);
}

TEST(RateLimiterTest, IdleBucketsAreSweptSoMemoryStaysBounded) {
  KeyedRateLimiter<int64_t> limiter(10, 1);
  for (int64_t k = 0; k < 100000; ++k) limiter.TryAcquire(k, 0);
  EXPECT_GT(limiter.size(), 50000u);
  // Much later every bucket is full again; sweeps drop them as calls go on.
  for (int64_t k = 0; k < 100000; ++k) limiter.TryAcquire(1000000 + (k % 64), 1000000);
  EXPECT_LT(limiter.size(), 1000u);
}

TEST(RateLimiterTest, ConcurrentCallersNeverExceedTheBurst) {
  KeyedRateLimiter<std::string> limiter(0.001, 100);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 1000; ++j) {
        if (limiter.TryAcquire("hot", 0) == 0) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 100);
}

}  // namespace
}  // namespace mpim::core
