#include "rpc/policy/concurrency_limiter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <utility>
#include <vector>

namespace mpim::rpc::policy {
namespace {

std::unique_ptr<ConcurrencyLimiter> Make(int64_t max_in_flight) {
  auto limiter = ConcurrencyLimiter::Create({.max_in_flight = max_in_flight});
  EXPECT_TRUE(limiter.ok()) << limiter.status();
  return std::move(limiter).value();
}

TEST(ConcurrencyLimiterTest, ShedsAtTheLimitAndAdmitsAgainAfterARelease) {
  auto limiter = Make(3);
  std::vector<ConcurrencyLimiter::Permit> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(limiter->TryAcquire());
    ASSERT_TRUE(held.back());
  }
  EXPECT_EQ(limiter->in_flight(), 3);
  EXPECT_FALSE(limiter->TryAcquire());
  EXPECT_FALSE(limiter->TryAcquire());
  EXPECT_EQ(limiter->shed(), 2);
  EXPECT_EQ(limiter->in_flight(), 3);  // refusals take nothing

  held[1].Release();
  EXPECT_FALSE(held[1]);
  EXPECT_EQ(limiter->in_flight(), 2);
  held[1] = limiter->TryAcquire();
  EXPECT_TRUE(held[1]);
  EXPECT_FALSE(limiter->TryAcquire());
}

TEST(ConcurrencyLimiterTest, APermitGivesItsSlotBackOnceWhenDestroyed) {
  auto limiter = Make(2);
  {
    ConcurrencyLimiter::Permit a = limiter->TryAcquire();
    ConcurrencyLimiter::Permit b = std::move(a);  // moved: one slot, not two
    EXPECT_FALSE(a);                              // NOLINT(bugprone-use-after-move)
    EXPECT_TRUE(b);
    EXPECT_EQ(limiter->in_flight(), 1);
    ConcurrencyLimiter::Permit c = limiter->TryAcquire();
    c = std::move(b);  // c's own slot goes back; b's moves into c
    EXPECT_EQ(limiter->in_flight(), 1);
    c.Release();
    c.Release();  // a second release is a no-op
    EXPECT_EQ(limiter->in_flight(), 0);
    ConcurrencyLimiter::Permit d = limiter->TryAcquire();
    EXPECT_EQ(limiter->in_flight(), 1);
  }
  EXPECT_EQ(limiter->in_flight(), 0);
}

TEST(ConcurrencyLimiterTest, ALoweredLimitRefusesUntilTheCallsInFlightDrain) {
  auto limiter = Make(4);
  std::vector<ConcurrencyLimiter::Permit> held;
  for (int i = 0; i < 4; ++i) held.push_back(limiter->TryAcquire());
  ASSERT_TRUE(limiter->UpdateConfig({.max_in_flight = 2}).ok());
  EXPECT_EQ(limiter->limit(), 2);
  held.pop_back();
  held.pop_back();  // 2 in flight: still at the new limit
  EXPECT_FALSE(limiter->TryAcquire());
  held.pop_back();
  EXPECT_TRUE(limiter->TryAcquire());

  EXPECT_EQ(limiter->UpdateConfig({.max_in_flight = 0}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(limiter->limit(), 2);
}

TEST(ConcurrencyLimiterTest, BadConfigsAreRefused) {
  EXPECT_TRUE(ConcurrencyLimiterConfig{}.Validate().ok());
  core::Status status = ConcurrencyLimiterConfig{.max_in_flight = 0}.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("max_in_flight"), std::string_view::npos);
  EXPECT_FALSE(ConcurrencyLimiter::Create({.max_in_flight = -1}).ok());
}

// Many threads take and give back permits as fast as they can; the number
// holding one at any instant never passes the limit, and every slot comes
// back. (Also meant for the TSan build: no data races.)
TEST(ConcurrencyLimiterTest, ConcurrentCallersNeverExceedTheLimit) {
  constexpr int64_t kLimit = 3;
  auto limiter = Make(kLimit);
  std::atomic<int64_t> holders{0};
  std::atomic<int64_t> most{0};
  std::atomic<int64_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        ConcurrencyLimiter::Permit permit = limiter->TryAcquire();
        if (!permit) continue;
        admitted.fetch_add(1);
        // Both what the limiter counts and who really holds a permit.
        const int64_t now = std::max(holders.fetch_add(1) + 1, limiter->in_flight());
        int64_t seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();  // hold it a while, so holders overlap
        holders.fetch_sub(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(most.load(), kLimit);
  EXPECT_GT(admitted.load(), 0);
  EXPECT_EQ(admitted.load() + limiter->shed(), 8 * 20000);
  EXPECT_EQ(limiter->in_flight(), 0);
}

}  // namespace
}  // namespace mpim::rpc::policy
