// bus::Lock (bus/lock.h) on both engines: one holder at a time, tokens
// that only go up (across a Redis restarted empty too), renew and release
// by the current holder only, expiry, and unavailable (never a lease) while
// Redis is down.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "bus/memory_lock.h"
#include "bus/redis_lock.h"
#include "redis/client.h"
#include "support/redis_server.h"

namespace mpim::bus {
namespace {

using std::chrono::milliseconds;

template <typename T, typename Call>
core::StatusOr<T> Await(Call call) {
  auto promise = std::make_shared<std::promise<core::StatusOr<T>>>();
  auto future = promise->get_future();
  call([promise](core::StatusOr<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return absl::DeadlineExceededError("no answer within 5 s");
  }
  return future.get();
}

class LockTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      lock_ = std::make_unique<MemoryLock>();
      other_ = std::make_unique<MemoryLock>();
      other_is_shared_ = false;
      return;
    }
    ASSERT_TRUE(server_.Start()) << server_.error();
    lock_ = Open();
    other_ = Open();
    other_is_shared_ = true;
  }
  std::unique_ptr<Lock> Open() {
    redis::ClientOptions options;
    options.url = server_.Url();
    options.timeout = milliseconds(500);
    options.reconnect_min = milliseconds(10);
    options.reconnect_max = milliseconds(100);
    auto lock = RedisLock::Open(options, "t:");
    EXPECT_TRUE(lock.ok()) << lock.status();
    return lock.ok() ? std::move(*lock) : nullptr;
  }
  core::StatusOr<std::optional<uint64_t>> Acquire(Lock& l, const std::string& name,
                                                  milliseconds ttl) {
    return Await<std::optional<uint64_t>>([&](auto cb) { l.TryAcquire(name, ttl, std::move(cb)); });
  }
  core::StatusOr<bool> Renew(Lock& l, const std::string& name, uint64_t token, milliseconds ttl) {
    return Await<bool>([&](auto cb) { l.Renew(name, token, ttl, std::move(cb)); });
  }
  core::Status Release(Lock& l, const std::string& name, uint64_t token) {
    auto r = Await<bool>([&](auto cb) {
      l.Release(name, token, [cb = std::move(cb)](core::Status s) mutable {
        if (!s.ok()) return std::move(cb)(s);
        std::move(cb)(true);
      });
    });
    return r.status();
  }
  // The second holder: another node (Redis) or the same lock (memory: one
  // process has one lock).
  Lock& Other() { return other_is_shared_ ? *other_ : *lock_; }

  testing::RedisServer server_;
  std::unique_ptr<Lock> lock_;
  std::unique_ptr<Lock> other_;
  bool other_is_shared_ = false;
};

TEST_P(LockTest, OneHolderAtATimeAndTokensGoUp) {
  auto first = Acquire(*lock_, "sweep", milliseconds(10000));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(first->has_value());
  auto busy = Acquire(Other(), "sweep", milliseconds(10000));
  ASSERT_TRUE(busy.ok()) << busy.status();
  EXPECT_FALSE(busy->has_value()) << "held by the first";
  // Another name is independent.
  auto elsewhere = Acquire(Other(), "cleanup", milliseconds(10000));
  ASSERT_TRUE(elsewhere.ok() && elsewhere->has_value());
  // Released by its holder: the next lease has a larger token.
  ASSERT_TRUE(Release(*lock_, "sweep", **first).ok());
  auto second = Acquire(Other(), "sweep", milliseconds(10000));
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_GT(**second, **first);
}

TEST_P(LockTest, OnlyTheCurrentHolderRenewsOrReleases) {
  auto held = Acquire(*lock_, "job", milliseconds(10000));
  ASSERT_TRUE(held.ok() && held->has_value());
  EXPECT_FALSE(*Renew(Other(), "job", **held + 1, milliseconds(10000)));
  ASSERT_TRUE(Release(Other(), "job", **held + 1).ok());
  auto still = Acquire(Other(), "job", milliseconds(10000));
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(still->has_value()) << "a wrong token released it";
  EXPECT_TRUE(*Renew(*lock_, "job", **held, milliseconds(10000)));
}

TEST_P(LockTest, AnExpiredLeaseGoesToTheNextWithALargerTokenAndTheOldCannotRenew) {
  auto old = Acquire(*lock_, "lease", milliseconds(150));
  ASSERT_TRUE(old.ok() && old->has_value());
  std::optional<uint64_t> next;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!next && std::chrono::steady_clock::now() < until) {
    auto r = Acquire(Other(), "lease", milliseconds(10000));
    ASSERT_TRUE(r.ok()) << r.status();
    next = *r;
    if (!next) std::this_thread::sleep_for(milliseconds(20));  // poll interval
  }
  ASSERT_TRUE(next.has_value()) << "the lease never expired";
  EXPECT_GT(*next, **old);
  // The paused old holder wakes up: its lease is gone.
  EXPECT_FALSE(*Renew(*lock_, "lease", **old, milliseconds(10000)));
}

TEST_P(LockTest, RedisDownIsUnavailableAndAnEmptyRestartKeepsTokensGoingUp) {
  if (GetParam() == "memory") GTEST_SKIP() << "Redis only";
  auto before = Acquire(*lock_, "fence", milliseconds(60000));
  ASSERT_TRUE(before.ok() && before->has_value());
  server_.Kill();
  auto down = Acquire(Other(), "fence", milliseconds(1000));
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_EQ(Renew(*lock_, "fence", **before, milliseconds(1000)).status().code(),
            absl::StatusCode::kUnavailable);
  ASSERT_TRUE(server_.Restart()) << server_.error();  // empty: the lease is forgotten
  std::optional<uint64_t> after;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!after && std::chrono::steady_clock::now() < until) {
    auto r = Acquire(Other(), "fence", milliseconds(60000));
    if (r.ok()) after = *r;
    if (!after) std::this_thread::sleep_for(milliseconds(20));  // reconnect back-off
  }
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(*after, **before) << "a token went back after Redis lost its data";
}

INSTANTIATE_TEST_SUITE_P(Engines, LockTest, ::testing::Values("memory", "redis"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace mpim::bus
