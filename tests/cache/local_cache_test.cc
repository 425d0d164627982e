// The local cache engine (cache/local_cache.h) and engine `none`: hits,
// single-flight loads, invalidation racing a load, lifetimes on a manual
// clock, the size bound and its LRU order, that errors are answered but never kept (but for
// null caching of kNotFound), hit and miss counters, GetMany.
// Engine redis: tests/cache/redis_cache_test.cc.
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

// One shard (max_entries < 128): the least recently used entry goes first,
// a hit makes an entry recent, and a load in flight is never evicted.
TEST(LocalCacheTest, EvictsTheLeastRecentlyUsed) {
  LocalCache<int, int> c({.max_entries = 4});
  for (int i = 1; i <= 4; ++i) c.Put(i, i);
  int calls = 0;
  std::optional<core::StatusOr<int>> r;
  GetInto(c, 1, Fixed(-1, &calls), r);  // a hit: 1 is now the most recent
  ASSERT_EQ(calls, 0);
  c.Put(5, 5);  // evicts 2, the least recently used
  EXPECT_EQ(c.Peek(2), std::nullopt);
  EXPECT_EQ(c.Peek(1), 1);
  EXPECT_EQ(c.Peek(3), 3);
  EXPECT_EQ(c.size(), 4u);
  ManualLoads loads;
  std::optional<core::StatusOr<int>> pending;
  GetInto(c, 6, loads.Loader(), pending);  // in flight: 3 goes to make room
  for (int i = 7; i <= 12; ++i) c.Put(i, i);
  loads.Complete(0, 6);
  EXPECT_EQ(**pending, 6);
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.Peek(12), 12);
}

TEST(LocalCacheTest, NotFoundIsKeptForNullTtl) {
  core::ManualClock clock(0, 1000);
  LocalCache<int, int> c({.null_ttl_ms = 100}, clock);
  ManualLoads loads;
  std::optional<core::StatusOr<int>> a, b, d;
  GetInto(c, 1, loads.Loader(), a);
  loads.Complete(0, absl::NotFoundError("no such group"));
  GetInto(c, 1, loads.Loader(), b);
  EXPECT_EQ(loads.started, 1) << "the not-found answer is kept";
  EXPECT_EQ(b->status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(b->status().message(), "no such group");
  EXPECT_EQ(c.Peek(1), std::nullopt);
  clock.AdvanceMs(100);
  GetInto(c, 1, loads.Loader(), d);
  EXPECT_EQ(loads.started, 2) << "for null_ttl_ms only";
  loads.Complete(1, 3);
  EXPECT_EQ(**d, 3);

  LocalCache<int, int> off;  // null_ttl_ms 0: not kept
  int calls = 0;
  auto missing = [&calls](core::Callback<int> done) {
    ++calls;
    std::move(done)(absl::NotFoundError("no"));
  };
  GetInto(off, 1, missing, a);
  GetInto(off, 1, missing, b);
  EXPECT_EQ(calls, 2);
}

TEST(LocalCacheTest, CountsHitsAndMisses) {
  core::MetricsRegistry metrics;
  LocalCache<int, int> c({.name = "things", .metrics = &metrics});
  int calls = 0;
  std::optional<core::StatusOr<int>> r;
  GetInto(c, 1, Fixed(1, &calls), r);
  GetInto(c, 1, Fixed(1, &calls), r);
  GetInto(c, 1, Fixed(1, &calls), r);
  auto value = [&](const char* name) {
    return metrics.Counter(name, "", {"cache", "tier"}).With({"things", "local"}).Value();
  };
  EXPECT_EQ(value("mpim_cache_hits_total"), 2);
  EXPECT_EQ(value("mpim_cache_misses_total"), 1);
  EXPECT_NE(metrics.Exposition().find("mpim_cache_hits_total{cache=\"things\",tier=\"local\"} 2"),
            std::string::npos)
      << metrics.Exposition();
}

TEST(LocalCacheTest, GetManyAnswersEachKeyInOrderAndClearDropsAll) {
  LocalCache<int, int> c;
  c.Put(2, 20);
  int loads = 0;
  std::optional<std::vector<core::StatusOr<int>>> got;
  c.GetMany(
      {1, 2, 3},
      [&loads](const int& key, core::Callback<int> done) {
        ++loads;
        if (key == 3) return std::move(done)(absl::NotFoundError("3"));
        std::move(done)(key * 10);
      },
      [&got](std::vector<core::StatusOr<int>> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->size(), 3u);
  EXPECT_EQ((*got)[0].value(), 10);
  EXPECT_EQ((*got)[1].value(), 20);
  EXPECT_EQ((*got)[2].status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(loads, 2);
  c.Clear();
  EXPECT_EQ(c.size(), 0u);
  EXPECT_EQ(c.Peek(2), std::nullopt);
}

TEST(CacheRegistryTest, EnginesByName) {
  core::Config config;
  for (const std::string& engine : CacheEngines()) {
    config.cache.engine = engine;
    if (engine == "redis") {  // needs a client: redis_cache_test
      EXPECT_EQ((MakeCache<int, int>(config).status().code()),
                absl::StatusCode::kFailedPrecondition);
      continue;
    }
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
