#include "rpc/policy/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace mpim::rpc::policy {
namespace {

class RateLimiterTest : public ::testing::Test {
 protected:
  std::unique_ptr<RateLimiter> Make(double rate_per_sec, int64_t burst) {
    auto limiter = RateLimiter::Create({.rate_per_sec = rate_per_sec, .burst = burst}, clock_);
    EXPECT_TRUE(limiter.ok()) << limiter.status();
    return std::move(limiter).value();
  }

  // Calls admitted in a row now (at most `limit`).
  static int Drain(RateLimiter& limiter, int limit = 1000000) {
    int admitted = 0;
    while (admitted < limit && limiter.Allow().allowed) ++admitted;
    return admitted;
  }

  core::ManualClock clock_{0, 1000000};
};

TEST_F(RateLimiterTest, AdmitsTheBurstThenPacesAtTheRate) {
  auto limiter = Make(/*rate_per_sec=*/10, /*burst=*/5);
  EXPECT_EQ(Drain(*limiter), 5);
  RateLimiter::Decision refused = limiter->Allow();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_ms, 100);  // one call per 100 ms
  clock_.AdvanceMs(99);
  EXPECT_EQ(limiter->Allow().retry_after_ms, 1);
  clock_.AdvanceMs(1);
  EXPECT_EQ(Drain(*limiter), 1);
  // Over the next 10 s, calls every millisecond get exactly 10 per second.
  int admitted = 0;
  for (int ms = 1; ms <= 10000; ++ms) {
    clock_.AdvanceMs(1);
    admitted += Drain(*limiter);
  }
  EXPECT_EQ(admitted, 100);
  EXPECT_GT(limiter->shed(), 0);
}

TEST_F(RateLimiterTest, AQuietSpellRefillsTheBurstButNoMore) {
  auto limiter = Make(/*rate_per_sec=*/10, /*burst=*/5);
  ASSERT_EQ(Drain(*limiter), 5);
  clock_.AdvanceMs(60000);
  EXPECT_EQ(Drain(*limiter), 5);
}

TEST_F(RateLimiterTest, RetryAfterIsTheWaitUntilTheNextCallPasses) {
  auto limiter = Make(/*rate_per_sec=*/2, /*burst=*/1);
  EXPECT_TRUE(limiter->Allow().allowed);
  EXPECT_EQ(limiter->Allow().retry_after_ms, 500);
  clock_.AdvanceMs(250);
  RateLimiter::Decision d = limiter->Allow();
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_ms, 250);
  clock_.AdvanceMs(d.retry_after_ms);
  EXPECT_TRUE(limiter->Allow().allowed);
}

TEST_F(RateLimiterTest, RatesAboveTheClockTickArePacedExactly) {
  // 5,000/s is 0.2 ms a call on a millisecond clock: each tick earns 5.
  auto limiter = Make(/*rate_per_sec=*/5000, /*burst=*/10);
  int admitted = Drain(*limiter);
  EXPECT_EQ(admitted, 10);
  for (int ms = 1; ms < 1000; ++ms) {
    clock_.AdvanceMs(1);
    const int now = Drain(*limiter);
    ASSERT_EQ(now, 5) << "at ms " << ms;
    admitted += now;
  }
  EXPECT_EQ(admitted, 10 + 999 * 5);
}

TEST_F(RateLimiterTest, UpdateConfigKeepsWhatWasAlreadyAdmitted) {
  auto limiter = Make(/*rate_per_sec=*/10, /*burst=*/5);
  ASSERT_EQ(Drain(*limiter), 5);
  // A larger burst frees the difference at once; the 5 taken still count.
  ASSERT_TRUE(limiter->UpdateConfig({.rate_per_sec = 10, .burst = 8}).ok());
  EXPECT_EQ(Drain(*limiter), 3);
  // A faster rate: the burst is still all in use, but earned back at the
  // new rate (1 ms a call), not the old one (100 ms).
  ASSERT_TRUE(limiter->UpdateConfig({.rate_per_sec = 1000, .burst = 8}).ok());
  EXPECT_EQ(limiter->Allow().retry_after_ms, 1);
  clock_.AdvanceMs(1);
  EXPECT_EQ(Drain(*limiter), 1);
  clock_.AdvanceMs(1);
  EXPECT_EQ(Drain(*limiter), 1);
  clock_.AdvanceMs(3);
  EXPECT_EQ(Drain(*limiter), 3);
  // A slower rate again: half the burst free (4 of 8), at 100 ms a call.
  clock_.AdvanceMs(4);
  ASSERT_TRUE(limiter->UpdateConfig({.rate_per_sec = 10, .burst = 8}).ok());
  EXPECT_EQ(Drain(*limiter), 4);
  EXPECT_EQ(limiter->Allow().retry_after_ms, 100);
  clock_.AdvanceMs(100);

  EXPECT_EQ(limiter->UpdateConfig({.rate_per_sec = 0, .burst = 8}).code(),
            absl::StatusCode::kInvalidArgument);
  clock_.AdvanceMs(1);
  EXPECT_EQ(Drain(*limiter), 1);
  clock_.AdvanceMs(99);
  EXPECT_EQ(Drain(*limiter), 1);  // unchanged: still 10/s
}

TEST_F(RateLimiterTest, BadConfigsAreRefusedWithTheFieldNamed) {
  struct Case {
    std::string field;
    RateLimiterConfig config;
  };
  const Case cases[] = {
      {"rate_per_sec", {.rate_per_sec = 0, .burst = 1}},
      {"rate_per_sec", {.rate_per_sec = -5, .burst = 1}},
      {"rate_per_sec", {.rate_per_sec = 2e9, .burst = 1}},
      {"burst", {.rate_per_sec = 10, .burst = 0}},
      {"burst / rate_per_sec", {.rate_per_sec = 0.001, .burst = 2000000}},
  };
  EXPECT_TRUE(RateLimiterConfig{}.Validate().ok());
  for (const Case& c : cases) {
    core::Status status = c.config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(std::string(status.message()).find(c.field), std::string::npos) << status;
    EXPECT_FALSE(RateLimiter::Create(c.config, clock_).ok());
  }
}

// Many threads at one instant: exactly the burst gets through.
TEST_F(RateLimiterTest, ConcurrentCallersNeverExceedTheBurst) {
  auto limiter = Make(/*rate_per_sec=*/0.001, /*burst=*/100);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        if (limiter->Allow().allowed) admitted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 100);
  EXPECT_EQ(limiter->shed(), 8 * 2000 - 100);
}

// Threads hammer the limiter while time moves on: admissions never pass
// burst + rate * elapsed. (Also meant for the TSan build.)
TEST_F(RateLimiterTest, ConcurrentCallersNeverExceedTheRateAsTimeMoves) {
  constexpr int64_t kBurst = 10;
  constexpr int64_t kTicks = 500;  // ms; the rate is one per ms
  auto limiter = Make(/*rate_per_sec=*/1000, kBurst);
  std::atomic<bool> done{false};
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      while (!done.load()) {
        if (limiter->Allow().allowed) admitted.fetch_add(1);
      }
    });
  }
  for (int64_t ms = 0; ms < kTicks; ++ms) {
    // Moves on only once a caller has been refused since the last tick, so
    // the callers are busy throughout, whatever the scheduler does.
    const int64_t shed = limiter->shed();
    clock_.AdvanceMs(1);
    while (limiter->shed() == shed) std::this_thread::yield();
  }
  done.store(true);
  for (auto& t : threads) t.join();
  EXPECT_LE(admitted.load(), kBurst + kTicks);
  EXPECT_GT(admitted.load(), kBurst);
}

}  // namespace
}  // namespace mpim::rpc::policy
