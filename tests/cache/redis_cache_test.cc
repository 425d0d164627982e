// The redis cache engine (cache/redis_cache.h) against a real redis-server:
// codecs, the two tiers, TTLs with jitter, null caching, single flight,
// batch gets, warm-up, invalidation across two "nodes" (two clients and
// caches on one Redis), and Redis killed, restarted and stopped.
#include "cache/redis_cache.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "cache/codec.h"
#include "cache/registry.h"
#include "redis/test_util.h"

namespace mpim::cache {
namespace {

using redis::Await;
using redis::Call;
using redis::Connect;
using redis::RedisServer;
using redis::TestPrefix;
using redis::WaitUntil;

using MemberList = std::shared_ptr<const std::vector<int64_t>>;

template <typename T>
T RoundTrip(const T& v) {
  T out{};
  EXPECT_TRUE(Codec<T>::Decode(Encode(v), &out)) << Encode(v);
  return out;
}

TEST(CodecTest, RoundTrips) {
  for (int64_t v : {int64_t{0}, int64_t{-7}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(RoundTrip(v), v);
  }
  EXPECT_EQ(RoundTrip(true), true);
  EXPECT_EQ(RoundTrip(false), false);
  std::pair<int64_t, int64_t> pair{12, -34};
  EXPECT_EQ(Encode(pair), "12:-34");
  EXPECT_EQ(RoundTrip(pair), pair);
  EXPECT_EQ(RoundTrip(MemberList()), nullptr) << "a large group stays null";
  MemberList empty = RoundTrip(MemberList(std::make_shared<std::vector<int64_t>>()));
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->empty());
  MemberList some = RoundTrip(MemberList(std::make_shared<std::vector<int64_t>>(
      std::vector<int64_t>{1, 22, 333, std::numeric_limits<int64_t>::max()})));
  ASSERT_NE(some, nullptr);
  EXPECT_EQ(*some, (std::vector<int64_t>{1, 22, 333, std::numeric_limits<int64_t>::max()}));
  EXPECT_EQ(RoundTrip(std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(CodecTest, RefusesWhatItDidNotWrite) {
  int64_t i;
  for (const char* bad : {"", "x", "1x", " 1", "99999999999999999999"}) {
    EXPECT_FALSE(Codec<int64_t>::Decode(bad, &i)) << bad;
  }
  bool b;
  for (const char* bad : {"", "2", "true", "11"}) EXPECT_FALSE(Codec<bool>::Decode(bad, &b)) << bad;
  std::pair<int64_t, int64_t> p;
  for (const char* bad : {"", "1", "1:", ":2", "1:2:3"}) {
    EXPECT_FALSE((Codec<std::pair<int64_t, int64_t>>::Decode(bad, &p))) << bad;
  }
  MemberList m;
  for (const char* bad : {"1,", ",1", "1,,2", "a", "--"}) {
    EXPECT_FALSE(Codec<MemberList>::Decode(bad, &m)) << bad;
  }
  static_assert(Encodable<int64_t> && Encodable<bool> && Encodable<MemberList>);
  static_assert(!Encodable<double>);
}

// The source of truth of the tests: values by key, reads counted; an absent
// key answers kNotFound. A hold makes loads wait until Release().
class FakeStore {
 public:
  void Set(int64_t key, int64_t value) {
    std::lock_guard lock(mu_);
    data_[key] = value;
  }
  Cache<int64_t, int64_t>::Loader Loader(int64_t key) {
    return [this, key](core::Callback<int64_t> done) { Load(key, std::move(done)); };
  }
  Cache<int64_t, int64_t>::KeyLoader KeyLoader() {
    return [this](const int64_t& key, core::Callback<int64_t> done) { Load(key, std::move(done)); };
  }
  void Hold() {
    std::lock_guard lock(mu_);
    hold_ = true;
  }
  void Release() {
    std::vector<std::pair<int64_t, core::Callback<int64_t>>> held;
    {
      std::lock_guard lock(mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto& [key, done] : held) Answer(key, std::move(done));
  }
  int loads() const { return loads_; }

 private:
  void Load(int64_t key, core::Callback<int64_t> done) {
    ++loads_;
    {
      std::lock_guard lock(mu_);
      if (hold_) {
        held_.emplace_back(key, std::move(done));
        return;
      }
    }
    Answer(key, std::move(done));
  }
  void Answer(int64_t key, core::Callback<int64_t> done) {
    core::StatusOr<int64_t> r = absl::NotFoundError("no such key " + std::to_string(key));
    {
      std::lock_guard lock(mu_);
      if (auto it = data_.find(key); it != data_.end()) r = it->second;
    }
    std::move(done)(std::move(r));
  }

  std::mutex mu_;
  std::map<int64_t, int64_t> data_;
  bool hold_ = false;
  std::vector<std::pair<int64_t, core::Callback<int64_t>>> held_;
  std::atomic<int> loads_{0};
};

using IntCache = RedisCache<int64_t, int64_t>;

class RedisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()) << server_.error(); }

  RedisCacheOptions Options() {
    return {.name = "things",
            .prefix = TestPrefix(),
            .ttl_ms = 60000,
            .local_ttl_ms = 60000,
            .null_ttl_ms = 5000,
            .metrics = &metrics_};
  }
  // A "node": its own client and cache on the shared Redis.
  struct Node {
    std::unique_ptr<redis::Client> client;
    std::unique_ptr<IntCache> cache;
  };
  Node MakeNode(RedisCacheOptions options) {
    Node n;
    n.client = Connect(server_);
    if (n.client) n.cache = std::make_unique<IntCache>(options, *n.client);
    return n;
  }
  Node MakeNode() { return MakeNode(Options()); }

  static core::StatusOr<int64_t> Get(IntCache& cache, int64_t key, FakeStore& store) {
    return Await<int64_t>([&](auto cb) { cache.Get(key, store.Loader(key), std::move(cb)); });
  }
  double Count(const char* name, std::initializer_list<std::string_view> labels) {
    std::vector<std::string> names = {"cache"};
    if (labels.size() == 2) names.push_back("tier");
    return metrics_.Counter(name, "", names).With(labels).Value();
  }
  // What Redis holds for a key of the test's "things" cache.
  std::string Raw(int64_t key) {
    return server_.Command({"GET", TestPrefix() + "things:" + std::to_string(key)});
  }
  int64_t Pttl(int64_t key) {
    return std::stoll(server_.Command({"PTTL", TestPrefix() + "things:" + std::to_string(key)}));
  }
  // Loads new keys through `node` until one lands in Redis (the client
  // reconnects by itself); that key, or 0 if none did within the deadline.
  int64_t FillsRedisAgain(Node& node) {
    int64_t key = 1000;
    bool filled = WaitUntil([&] {
      ++key;
      store_.Set(key, key);
      (void)Get(*node.cache, key, store_);
      (void)Call(*node.client, {"PING"});  // after the fill on the same connection
      return Raw(key) == "v" + std::to_string(key);
    });
    return filled ? key : 0;
  }
  // Waits until a write of the cache reached Redis.
  bool RedisHolds(int64_t key, const std::string& raw) {
    return WaitUntil([&] { return Raw(key) == raw; });
  }

  RedisServer server_;
  core::MetricsRegistry metrics_;
  FakeStore store_;
};

TEST_F(RedisCacheTest, MissLoadsOnceFillsRedisThenHitsInMemory) {
  Node a = MakeNode();
  ASSERT_TRUE(a.cache);
  store_.Set(1, 42);
  EXPECT_EQ(Get(*a.cache, 1, store_).value(), 42);
  EXPECT_EQ(Get(*a.cache, 1, store_).value(), 42);
  EXPECT_EQ(store_.loads(), 1);
  EXPECT_EQ(a.cache->Peek(1), 42);
  EXPECT_TRUE(RedisHolds(1, "v42"));
  EXPECT_EQ(Count("mpim_cache_hits_total", {"things", "local"}), 1);
  EXPECT_EQ(Count("mpim_cache_misses_total", {"things", "local"}), 1);
  EXPECT_EQ(Count("mpim_cache_misses_total", {"things", "redis"}), 1);

  // Another node finds it in Redis: no load.
  Node b = MakeNode();
  ASSERT_TRUE(b.cache);
  EXPECT_EQ(Get(*b.cache, 1, store_).value(), 42);
  EXPECT_EQ(store_.loads(), 1);
  EXPECT_EQ(Count("mpim_cache_hits_total", {"things", "redis"}), 1);
  EXPECT_EQ(Count("mpim_cache_errors_total", {"things"}), 0);
}

TEST_F(RedisCacheTest, EveryEntryHasATtlWithJitter) {
  Node a = MakeNode();
  ASSERT_TRUE(a.cache);
  std::set<int64_t> ttls;
  for (int64_t k = 0; k < 40; ++k) {
    if (k % 4 != 0) store_.Set(k, k);  // every fourth is not found
    (void)Get(*a.cache, k, store_);
  }
  for (int64_t k = 0; k < 40; ++k) {
    ASSERT_TRUE(WaitUntil([&] { return Pttl(k) > 0; })) << k;
    const int64_t ttl = Pttl(k);
    if (k % 4 == 0) {
      EXPECT_LE(ttl, 5500) << "a not-found marker lives null_ttl_ms (+10%)";
    } else {
      EXPECT_GT(ttl, 50000);
      EXPECT_LE(ttl, 66000) << "ttl_ms + at most 10%";
      ttls.insert(ttl / 100);
    }
  }
  EXPECT_GT(ttls.size(), 5u) << "entries filled together expire at different times";
}

TEST_F(RedisCacheTest, NotFoundIsCachedForAShortTime) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  auto r = Get(*a.cache, 7, store_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Get(*a.cache, 7, store_).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_.loads(), 1) << "the second lookup is answered from memory";
  EXPECT_EQ(a.cache->Peek(7), std::nullopt);
  ASSERT_TRUE(RedisHolds(7, "nno such key 7"));
  auto other = Get(*b.cache, 7, store_);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(other.status().message(), "no such key 7") << "the loader's message";
  EXPECT_EQ(store_.loads(), 1) << "the other node finds the marker in Redis";

  // Created later: an invalidation (the writer's) makes it visible at once.
  store_.Set(7, 70);
  a.cache->Invalidate(7);
  EXPECT_EQ(Get(*a.cache, 7, store_).value(), 70);
}

TEST_F(RedisCacheTest, InvalidationReachesTheOtherNodeAndRedis) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  store_.Set(5, 1);
  EXPECT_EQ(Get(*a.cache, 5, store_).value(), 1);
  EXPECT_EQ(Get(*b.cache, 5, store_).value(), 1);
  ASSERT_EQ(b.cache->Peek(5), 1);

  store_.Set(5, 2);  // the writer commits, then invalidates
  const auto start = std::chrono::steady_clock::now();
  a.cache->Invalidate(5);
  EXPECT_EQ(a.cache->Peek(5), std::nullopt) << "this node drops it before Invalidate returns";
  ASSERT_TRUE(
      WaitUntil([&] { return !b.cache->Peek(5).has_value(); }, std::chrono::milliseconds(2000)))
      << "the other node's memory drops it within the bound";
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(Raw(5), "t") << "a tombstone replaces the shared entry";
  EXPECT_LE(Pttl(5), 2000);
  EXPECT_EQ(Get(*b.cache, 5, store_).value(), 2);
  EXPECT_EQ(Get(*a.cache, 5, store_).value(), 2);
  std::printf(
      "invalidation reached the other node in %lld us\n",
      static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
}

// A strict cache (blocks, memberships): no memory tier, and once the
// writer's `done` ran every node reads the new value at once, with no wait
// for a pub/sub message.
TEST_F(RedisCacheTest, AStrictCacheAnswersTheNewValueEverywhereOnceInvalidateIsDone) {
  RedisCacheOptions strict = Options();
  strict.memory_tier = false;
  Node a = MakeNode(strict), b = MakeNode(strict);
  ASSERT_TRUE(a.cache && b.cache);
  store_.Set(5, 1);
  EXPECT_EQ(Get(*a.cache, 5, store_).value(), 1);
  // The fill is written after the answer, on a's connection: b's read may
  // reach Redis first (seen under ASan in CI).
  ASSERT_TRUE(RedisHolds(5, "v1"));
  EXPECT_EQ(Get(*b.cache, 5, store_).value(), 1);
  EXPECT_EQ(store_.loads(), 1) << "the second node reads Redis";
  EXPECT_EQ(b.cache->Peek(5), std::nullopt) << "nothing in memory";
  EXPECT_EQ(b.cache->size(), 0u);
  for (int round = 2; round < 50; ++round) {
    store_.Set(5, round);  // the writer commits, then invalidates and waits
    std::promise<void> done;
    a.cache->Invalidate(5, [&] { done.set_value(); });
    done.get_future().wait();
    ASSERT_EQ(Get(*b.cache, 5, store_).value(), round) << "the other node, at once";
  }
  std::vector<core::StatusOr<int64_t>> many;
  std::promise<void> got;
  b.cache->GetMany({5, 6}, store_.KeyLoader(), [&](std::vector<core::StatusOr<int64_t>> r) {
    many = std::move(r);
    got.set_value();
  });
  got.get_future().wait();
  ASSERT_EQ(many.size(), 2u);
  EXPECT_EQ(many[0].value(), 49);
  EXPECT_EQ(b.cache->size(), 0u) << "GetMany keeps nothing in memory either";
}

TEST_F(RedisCacheTest, PutWritesRedisAndTheOtherNodeDropsItsCopy) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  store_.Set(3, 30);
  EXPECT_EQ(Get(*b.cache, 3, store_).value(), 30);
  a.cache->Put(3, 31);
  EXPECT_EQ(a.cache->Peek(3), 31);
  ASSERT_TRUE(RedisHolds(3, "v31"));
  ASSERT_TRUE(WaitUntil([&] { return !b.cache->Peek(3).has_value(); }));
  EXPECT_EQ(Get(*b.cache, 3, store_).value(), 31) << "read from Redis";
  EXPECT_EQ(store_.loads(), 1);
  a.cache->Put(4, 40, 1500);
  ASSERT_TRUE(RedisHolds(4, "v40"));
  EXPECT_LE(Pttl(4), 1500) << "Put's own lifetime";
}

TEST_F(RedisCacheTest, ALoadThatReadBeforeAnInvalidationCannotRefillRedis) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  store_.Set(9, 1);
  store_.Hold();
  std::optional<core::StatusOr<int64_t>> got;
  a.cache->Get(9, store_.Loader(9), [&](core::StatusOr<int64_t> r) { got = r; });
  ASSERT_TRUE(WaitUntil([&] { return store_.loads() == 1; }));  // read the old value
  store_.Set(9, 2);
  b.cache->Invalidate(9);
  ASSERT_TRUE(RedisHolds(9, "t"));
  store_.Release();  // answers with 2 in this fake; what matters is what Redis keeps
  ASSERT_TRUE(WaitUntil([&] { return got.has_value(); }));
  // The fill after the load is SET NX: the tombstone stays.
  EXPECT_TRUE(Call(*a.client, {"PING"}).ok());  // the fill was sent before this
  EXPECT_EQ(Raw(9), "t");
}

TEST_F(RedisCacheTest, AThousandConcurrentMissesMakeOneLoad) {
  Node a = MakeNode();
  ASSERT_TRUE(a.cache);
  store_.Set(1, 11);
  store_.Hold();
  constexpr int kThreads = 8, kPerThread = 125;
  std::atomic<int> answered{0}, right{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        a.cache->Get(1, store_.Loader(1), [&](core::StatusOr<int64_t> r) {
          if (r.ok() && *r == 11) ++right;
          ++answered;
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(WaitUntil([&] { return store_.loads() == 1; }));
  store_.Release();
  ASSERT_TRUE(WaitUntil([&] { return answered == kThreads * kPerThread; }));
  EXPECT_EQ(right, kThreads * kPerThread);
  EXPECT_EQ(store_.loads(), 1);
  EXPECT_EQ(Count("mpim_cache_misses_total", {"things", "redis"}), 1) << "one Redis GET";
}

TEST_F(RedisCacheTest, GetManyAsksRedisOnceAndLoadsOnlyWhatIsMissing) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  std::vector<int64_t> keys;
  for (int64_t k = 1; k <= 10; ++k) {
    store_.Set(k, k * 10);
    keys.push_back(k);
  }
  for (int64_t k = 1; k <= 5; ++k) EXPECT_TRUE(Get(*a.cache, k, store_).ok());  // in Redis
  EXPECT_EQ(Get(*b.cache, 1, store_).value(), 10);                              // in b's memory
  ASSERT_EQ(store_.loads(), 5);
  ASSERT_TRUE(RedisHolds(5, "v50"));

  auto got = Await<std::vector<core::StatusOr<int64_t>>>([&](auto cb) {
    b.cache->GetMany(keys, store_.KeyLoader(),
                     [cb = std::move(cb)](std::vector<core::StatusOr<int64_t>> r) mutable {
                       std::move(cb)(std::move(r));
                     });
  });
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ((*got)[i].value(), keys[i] * 10);
  EXPECT_EQ(store_.loads(), 10) << "6..10 loaded, 1..5 from memory or Redis";
  EXPECT_EQ(Count("mpim_cache_hits_total", {"things", "redis"}), 1 + 4) << "b's Get, then 2..5";
  EXPECT_NE(server_.Command({"INFO", "commandstats"}).find("cmdstat_mget:calls=1,"),
            std::string::npos)
      << "one MGET";
  for (int64_t k : keys) EXPECT_EQ(b.cache->Peek(k), k * 10) << "kept in memory";
}

TEST_F(RedisCacheTest, WarmUpLoadsTheHotKeys) {
  Node a = MakeNode();
  ASSERT_TRUE(a.cache);
  for (int64_t k = 1; k <= 3; ++k) store_.Set(k, k);
  auto loaded = Await<size_t>([&](auto cb) {
    WarmUp<int64_t, int64_t>(*a.cache, {1, 2, 3, 4}, store_.KeyLoader(), std::move(cb));
  });
  EXPECT_EQ(loaded.value(), 3u) << "4 does not exist";
  for (int64_t k = 1; k <= 3; ++k) EXPECT_EQ(a.cache->Peek(k), k);
}

TEST_F(RedisCacheTest, RedisKilledReadsTheStoreAndResumesWhenBack) {
  Node a = MakeNode(), b = MakeNode();
  ASSERT_TRUE(a.cache && b.cache);
  store_.Set(1, 1);
  store_.Set(2, 2);
  EXPECT_EQ(Get(*a.cache, 1, store_).value(), 1);

  server_.Kill();
  for (int64_t k : {2, 3}) {
    auto r = Get(*a.cache, k, store_);
    if (k == 2) {
      EXPECT_EQ(r.value(), 2) << "answered from the store: " << r.status();
    } else {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
    }
  }
  EXPECT_EQ(Get(*a.cache, 1, store_).value(), 1) << "memory still answers";
  EXPECT_GT(Count("mpim_cache_errors_total", {"things"}), 0);
  store_.Set(1, 100);
  a.cache->Invalidate(1);  // cannot reach Redis: kept for later
  ASSERT_TRUE(WaitUntil([&] { return a.cache->pending_invalidations() == 1; }));
  EXPECT_EQ(Get(*a.cache, 1, store_).value(), 100);

  ASSERT_TRUE(server_.Restart()) << server_.error();
  ASSERT_TRUE(WaitUntil([&] { return a.client->connected() && b.client->connected(); }));
  ASSERT_TRUE(WaitUntil([&] { return a.cache->pending_invalidations() == 0; }))
      << "the kept invalidation is sent when the subscriber is back";
  EXPECT_EQ(Raw(1), "t");
  ASSERT_TRUE(WaitUntil([&] { return a.cache->size() == 0; }))
      << "memory starts over after missing messages";
  // Used again: a fills Redis, b hits it.
  const int64_t k = FillsRedisAgain(a);
  ASSERT_NE(k, 0) << "a never filled Redis again";
  const int loads = store_.loads();
  const double redis_hits = Count("mpim_cache_hits_total", {"things", "redis"});
  EXPECT_EQ(Get(*b.cache, k, store_).value(), k);
  EXPECT_EQ(store_.loads(), loads);
  EXPECT_EQ(Count("mpim_cache_hits_total", {"things", "redis"}), redis_hits + 1);
}

TEST_F(RedisCacheTest, StoppedRedisTimesOutAndTheStoreAnswers) {
  Node a = MakeNode();
  ASSERT_TRUE(a.cache);
  store_.Set(1, 1);
  server_.Pause();
  const auto start = std::chrono::steady_clock::now();
  auto r = Get(*a.cache, 1, store_);
  const auto took = std::chrono::steady_clock::now() - start;
  server_.Resume();
  EXPECT_EQ(r.value(), 1) << r.status();
  EXPECT_LT(took, std::chrono::seconds(3)) << "within the command timeout";
  EXPECT_NE(FillsRedisAgain(a), 0) << "filled again once Redis answers";
}

TEST_F(RedisCacheTest, RegistryBuildsTheRedisEngine) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  core::Config config;
  config.cache.engine = "redis";
  config.cache.redis_url = server_.Url();
  config.cache.redis_prefix = TestPrefix();
  auto missing = MakeCache<int64_t, int64_t>(config, {.name = "things"});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  auto no_codec = MakeCache<int64_t, double>(config, {.name = "d", .redis = client.get()});
  EXPECT_EQ(no_codec.status().code(), absl::StatusCode::kFailedPrecondition);
  auto c = MakeCache<int64_t, int64_t>(config, {.name = "things", .redis = client.get()});
  ASSERT_TRUE(c.ok()) << c.status();
  store_.Set(1, 5);
  EXPECT_EQ(Await<int64_t>([&](auto cb) { (*c)->Get(1, store_.Loader(1), std::move(cb)); }).value(),
            5);
  EXPECT_TRUE(RedisHolds(1, "v5"));
  auto made = MakeRedisClient(config);
  ASSERT_TRUE(made.ok());
  EXPECT_NE(*made, nullptr);
  config.cache.redis_url = "http://nope";
  EXPECT_EQ(MakeRedisClient(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.cache.engine = "local";
  EXPECT_EQ(MakeRedisClient(config).value(), nullptr);
}

}  // namespace
}  // namespace mpim::cache
