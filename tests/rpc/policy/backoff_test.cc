#include "rpc/policy/backoff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <vector>

namespace mpim::rpc::policy {
namespace {

TEST(BackoffTest, CeilingDoublesFromTheBaseUpToTheCap) {
  BackoffConfig config{.base_ms = 50, .cap_ms = 1000};
  EXPECT_EQ(BackoffCeilingMs(config, 0), 50);
  EXPECT_EQ(BackoffCeilingMs(config, 1), 50);
  EXPECT_EQ(BackoffCeilingMs(config, 2), 100);
  EXPECT_EQ(BackoffCeilingMs(config, 3), 200);
  EXPECT_EQ(BackoffCeilingMs(config, 5), 800);
  EXPECT_EQ(BackoffCeilingMs(config, 6), 1000);
  EXPECT_EQ(BackoffCeilingMs(config, 1000000), 1000);
}

TEST(BackoffTest, HugeCapsAndAttemptsDoNotOverflow) {
  BackoffConfig config{.base_ms = 3, .cap_ms = std::numeric_limits<int64_t>::max()};
  EXPECT_EQ(BackoffCeilingMs(config, std::numeric_limits<int>::max()),
            std::numeric_limits<int64_t>::max());
  EXPECT_EQ(BackoffCeilingMs(config, 10), 3 * 512);
}

TEST(BackoffTest, DelaysStayWithinZeroAndTheCeilingAndSpreadOverIt) {
  BackoffConfig config{.base_ms = 100, .cap_ms = 800};
  std::mt19937_64 rng(42);
  for (int retry = 1; retry <= 6; ++retry) {
    const int64_t ceiling = BackoffCeilingMs(config, retry);
    int64_t low = ceiling;
    int64_t high = 0;
    for (int i = 0; i < 2000; ++i) {
      const int64_t d = FullJitterBackoffMs(config, retry, rng);
      ASSERT_GE(d, 0);
      ASSERT_LE(d, ceiling);
      low = std::min(low, d);
      high = std::max(high, d);
    }
    // Full jitter: the whole range is used, not just a band near the ceiling.
    EXPECT_LT(low, ceiling / 10) << "retry " << retry;
    EXPECT_GT(high, ceiling * 9 / 10) << "retry " << retry;
  }
}

TEST(BackoffTest, TheSameSeedGivesTheSameDelays) {
  BackoffConfig config;
  std::mt19937_64 a(7);
  std::mt19937_64 b(7);
  std::mt19937_64 c(8);
  std::vector<int64_t> da, db, dc;
  for (int retry = 1; retry <= 20; ++retry) {
    da.push_back(FullJitterBackoffMs(config, retry, a));
    db.push_back(FullJitterBackoffMs(config, retry, b));
    dc.push_back(FullJitterBackoffMs(config, retry, c));
  }
  EXPECT_EQ(da, db);
  EXPECT_NE(da, dc);
}

TEST(BackoffTest, BadConfigsAreRefused) {
  EXPECT_TRUE(BackoffConfig{}.Validate().ok());
  EXPECT_TRUE((BackoffConfig{.base_ms = 5, .cap_ms = 5}).Validate().ok());
  core::Status zero_base = BackoffConfig{.base_ms = 0, .cap_ms = 5}.Validate();
  EXPECT_EQ(zero_base.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(zero_base.message().find("base_ms"), std::string_view::npos);
  core::Status low_cap = BackoffConfig{.base_ms = 10, .cap_ms = 5}.Validate();
  EXPECT_EQ(low_cap.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(low_cap.message().find("cap_ms"), std::string_view::npos);
}

}  // namespace
}  // namespace mpim::rpc::policy
