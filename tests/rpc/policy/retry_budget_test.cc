#include "rpc/policy/retry_budget.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace mpim::rpc::policy {
namespace {

class RetryBudgetTest : public ::testing::Test {
 protected:
  std::unique_ptr<RetryBudget> Make(double ratio, double min_per_sec) {
    RetryBudgetConfig config;
    config.window_ms = 10000;
    config.buckets = 10;
    config.ratio = ratio;
    config.min_retries_per_sec = min_per_sec;
    auto budget = RetryBudget::Create(config, clock_);
    EXPECT_TRUE(budget.ok()) << budget.status();
    return std::move(budget).value();
  }

  // Retries granted in a row until the first refusal (at most `limit`).
  static int Drain(RetryBudget& budget, int limit = 100000) {
    int granted = 0;
    while (granted < limit && budget.TryRetry()) ++granted;
    return granted;
  }

  core::ManualClock clock_{0, 1000000};
};

TEST_F(RetryBudgetTest, TheFloorAllowsRetriesWithoutRequests) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/1);  // 10 retries per 10 s window
  EXPECT_EQ(Drain(*budget), 10);
  EXPECT_FALSE(budget->TryRetry());
  EXPECT_EQ(budget->refused(), 2);
}

TEST_F(RetryBudgetTest, RetriesAreCappedAtTheRatioOfRequests) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/0);
  EXPECT_FALSE(budget->TryRetry());  // no requests, no floor: nothing
  for (int i = 0; i < 1000; ++i) budget->RecordRequest();
  EXPECT_EQ(Drain(*budget), 200);
}

TEST_F(RetryBudgetTest, RatioAndFloorAddUp) {
  auto budget = Make(/*ratio=*/0.1, /*min_per_sec=*/2);
  for (int i = 0; i < 300; ++i) budget->RecordRequest();
  EXPECT_EQ(Drain(*budget), 30 + 20);
}

TEST_F(RetryBudgetTest, RecoversAsRequestsComeIn) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/0);
  for (int i = 0; i < 100; ++i) budget->RecordRequest();
  ASSERT_EQ(Drain(*budget), 20);
  for (int i = 0; i < 4; ++i) budget->RecordRequest();
  EXPECT_FALSE(budget->TryRetry());  // 0.2 * 104 = 20.8: still no 21st
  budget->RecordRequest();
  EXPECT_TRUE(budget->TryRetry());  // 0.2 * 105 = 21
  EXPECT_FALSE(budget->TryRetry());
}

TEST_F(RetryBudgetTest, SpentRetriesSlideOutOfTheWindow) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/1);
  ASSERT_EQ(Drain(*budget), 10);
  clock_.AdvanceMs(9999);
  EXPECT_FALSE(budget->TryRetry());  // still within the window
  clock_.AdvanceMs(1);
  EXPECT_EQ(Drain(*budget), 10);
}

TEST_F(RetryBudgetTest, RequestsSlideOutOfTheWindowToo) {
  auto budget = Make(/*ratio=*/0.5, /*min_per_sec=*/0);
  for (int i = 0; i < 100; ++i) budget->RecordRequest();
  clock_.AdvanceMs(10000);
  EXPECT_FALSE(budget->TryRetry());
}

TEST_F(RetryBudgetTest, UpdateConfigKeepsTheCounts) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/0);
  for (int i = 0; i < 100; ++i) budget->RecordRequest();
  ASSERT_EQ(Drain(*budget), 20);
  RetryBudgetConfig config = budget->config();
  config.ratio = 0.5;
  ASSERT_TRUE(budget->UpdateConfig(config).ok());
  EXPECT_EQ(Drain(*budget), 30);  // 50 in all, 20 already spent

  config.ratio = -1;
  EXPECT_EQ(budget->UpdateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(budget->config().ratio, 0.5);
}

TEST_F(RetryBudgetTest, BadConfigsAreRefusedWithTheFieldNamed) {
  struct Case {
    std::string field;
    void (*edit)(RetryBudgetConfig&);
  };
  const Case cases[] = {
      {"buckets", [](RetryBudgetConfig& c) { c.buckets = 0; }},
      {"window_ms", [](RetryBudgetConfig& c) { c.window_ms = 0; }},
      {"window_ms", [](RetryBudgetConfig& c) { c.window_ms = 999; }},
      {"ratio", [](RetryBudgetConfig& c) { c.ratio = -0.1; }},
      {"ratio", [](RetryBudgetConfig& c) { c.ratio = 1e6; }},
      {"min_retries_per_sec", [](RetryBudgetConfig& c) { c.min_retries_per_sec = -1; }},
  };
  EXPECT_TRUE(RetryBudgetConfig{}.Validate().ok());
  for (const Case& c : cases) {
    RetryBudgetConfig config;
    c.edit(config);
    core::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(std::string(status.message()).find(c.field), std::string::npos) << status;
    EXPECT_FALSE(RetryBudget::Create(config, clock_).ok());
  }
}

TEST_F(RetryBudgetTest, ConcurrentRetriesNeverOverspend) {
  auto budget = Make(/*ratio=*/0.2, /*min_per_sec=*/0);
  for (int i = 0; i < 1000; ++i) budget->RecordRequest();
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i) {
        if (budget->TryRetry()) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 200);
}

}  // namespace
}  // namespace mpim::rpc::policy
