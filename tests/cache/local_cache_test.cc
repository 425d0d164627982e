// The local cache engine (cache/local_cache.h) and engine `none`: hits,
// single-flight loads, invalidation racing a load, lifetimes on a manual
// clock, the size bound, and that errors are answered but never kept.
#include "cache/local_cache.h"

#include <gtest/gtest.h>

#include <optional>

#include "cache/registry.h"

namespace mpim::cache {
namespace {

// A loader the test completes by hand.
struct ManualLoads {
  std::vector<core::Callback<int>> pending;
  int started = 0;
  Cache<int, int>::Loader Loader() {
    return [this](core::Callback<int> done) {
      ++started;
      pending.push_back(std::move(done));
    };
  }
  void Complete(size_t i, core::StatusOr<int> r) { std::move(pending.at(i))(std::move(r)); }
};

// Get whose answer lands in `out`.
void GetInto(Cache<int, int>& c, int key, Cache<int, int>::Loader load,
             std::optional<core::StatusOr<int>>& out) {
  c.Get(key, std::move(load), [&out](core::StatusOr<int> r) { out = std::move(r); });
}

Cache<int, int>::Loader Fixed(int value, int* calls) {
  return [value, calls](core::Callback<int> done) {
    ++*calls;
    std::move(done)(value);
  };
}

TEST(LocalCacheTest, LoadsOnceThenHits) {
  LocalCache<int, int> c;
  int calls = 0;
  std::optional<core::StatusOr<int>> a, b;
  GetInto(c, 1, Fixed(10, &calls), a);
  GetInto(c, 1, Fixed(99, &calls), b);
  EXPECT_EQ(**a, 10);
  EXPECT_EQ(**b, 10) << "the second Get is a hit";
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(c.Peek(1), 10);
  EXPECT_EQ(c.Peek(2), std::nullopt);
}

TEST(LocalCacheTest, ConcurrentMissesShareOneLoad) {
  LocalCache<int, int> c;
  ManualLoads loads;
  std::optional<core::StatusOr<int>> a, b, other;
  GetInto(c, 1, loads.Loader(), a);
  GetInto(c, 1, loads.Loader(), b);
  GetInto(c, 2, loads.Loader(), other);
  EXPECT_EQ(loads.started, 2) << "one load per key";
  loads.Complete(0, 7);
  EXPECT_EQ(**a, 7);
  EXPECT_EQ(**b, 7);
  EXPECT_FALSE(other.has_value());
  loads.Complete(1, 8);
  EXPECT_EQ(**other, 8);
}

TEST(LocalCacheTest, ALoadRacingAnInvalidationIsAnsweredNotKept) {
  LocalCache<int, int> c;
  ManualLoads loads;
  std::optional<core::StatusOr<int>> before, after;
  GetInto(c, 1, loads.Loader(), before);
  c.Invalidate(1);  // a writer committed a change while the load ran
  GetInto(c, 1, loads.Loader(), after);
  EXPECT_EQ(loads.started, 2) << "a Get after the invalidation does not join the old load";
  loads.Complete(0, 1);  // the stale read
  EXPECT_EQ(**before, 1);
  EXPECT_EQ(c.Peek(1), std::nullopt) << "the stale read is not kept";
  loads.Complete(1, 2);
  EXPECT_EQ(**after, 2);
  EXPECT_EQ(c.Peek(1), 2);
}

TEST(LocalCacheTest, ErrorsAreAnsweredNotKept) {
  LocalCache<int, int> c;
  ManualLoads loads;
  std::optional<core::StatusOr<int>> a, b;
  GetInto(c, 1, loads.Loader(), a);
  GetInto(c, 1, loads.Loader(), b);
  loads.Complete(0, absl::UnavailableError("store down"));
  EXPECT_EQ(a->status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(b->status().code(), absl::StatusCode::kUnavailable);
  int calls = 0;
  std::optional<core::StatusOr<int>> c2;
  GetInto(c, 1, Fixed(5, &calls), c2);
  EXPECT_EQ(calls, 1) << "loaded again";
  EXPECT_EQ(**c2, 5);
}

TEST(LocalCacheTest, EntriesExpireOnTheClock) {
  core::ManualClock clock(0, 1000);
  LocalCache<int, int> c({.max_entries = 100, .default_ttl_ms = 0}, clock);
  c.Put(1, 11, /*ttl_ms=*/500);
  c.Put(2, 22);  // no lifetime
  clock.AdvanceMs(499);
  EXPECT_EQ(c.Peek(1), 11);
  clock.AdvanceMs(1);
  EXPECT_EQ(c.Peek(1), std::nullopt);
  EXPECT_EQ(c.Peek(2), 22);
  int calls = 0;
  std::optional<core::StatusOr<int>> r;
  GetInto(c, 1, Fixed(12, &calls), r);
  EXPECT_EQ(calls, 1) << "an expired entry is a miss";
}

TEST(LocalCacheTest, StaysWithinItsBound) {
  LocalCache<int, int> c({.max_entries = 64});
  for (int i = 0; i < 10000; ++i) c.Put(i, i);
  EXPECT_LE(c.size(), 64u + 1);
  int calls = 0;
  std::optional<core::StatusOr<int>> r;
  GetInto(c, 3, Fixed(3, &calls), r);
  EXPECT_EQ(**r, 3) << "whatever was dropped is loaded again";
}

TEST(CacheRegistryTest, EnginesByName) {
  core::Config config;
  for (const std::string& engine : CacheEngines()) {
    config.cache.engine = engine;
    auto c = MakeCache<int, int>(config);
    ASSERT_TRUE(c.ok()) << engine;
    int calls = 0;
    std::optional<core::StatusOr<int>> a, b;
    GetInto(**c, 1, Fixed(4, &calls), a);
    GetInto(**c, 1, Fixed(4, &calls), b);
    EXPECT_EQ(**b, 4);
    EXPECT_EQ(calls, engine == "none" ? 2 : 1) << engine;
  }
  config.cache.engine = "memcached";
  auto unknown = MakeCache<int, int>(config);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mpim::cache
