// The cache in front of the store under a skewed read load: user profiles
// read by a Zipf distribution (s = 1.1) over 100,000 users, through the
// cache-aside store decorator (cache/cached_store.h) on each cache engine.
// A warm-up pass of as many reads as the measured one comes first; the
// figures are the measured pass's: hit_ratio (reads answered without the
// store), store_reads (the reads that reached SQLite) and the reads saved.
//
//   build/bin/cache_bench
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <semaphore>
#include <string>
#include <vector>

#include "cache/cached_store.h"
#include "store/blocking.h"
#include "store/sqlite/sqlite_store.h"
#include "support/borrowed_store.h"
#include "support/redis_server.h"

namespace mpim::cache {
namespace {

constexpr int kUsers = 100'000;
constexpr int kReads = 500'000;
constexpr double kZipfS = 1.1;

// Counts the profile reads that reach the store.
class CountingUsers final : public store::UserStore {
 public:
  explicit CountingUsers(store::UserStore& inner) : inner_(inner) {}
  void Create(const store::NewUser& u, store::Callback<store::User> done) override {
    inner_.Create(u, std::move(done));
  }
  void Get(int64_t id, store::Callback<store::User> done) override {
    reads.fetch_add(1, std::memory_order_relaxed);
    inner_.Get(id, std::move(done));
  }
  void GetByUsername(const std::string& n, store::Callback<store::User> done) override {
    inner_.GetByUsername(n, std::move(done));
  }
  void GetMany(const std::vector<int64_t>& ids,
               store::Callback<std::vector<store::User>> done) override {
    inner_.GetMany(ids, std::move(done));
  }
  void Update(int64_t id, const store::UserUpdate& u, store::Callback<store::User> done) override {
    inner_.Update(id, u, std::move(done));
  }
  void TouchLastSeen(int64_t id, int64_t ts, store::DoneCallback done) override {
    inner_.TouchLastSeen(id, ts, std::move(done));
  }
  void SearchByPrefix(const std::string& p, const std::string& a, int limit,
                      store::Callback<store::Page<store::User>> done) override {
    inner_.SearchByPrefix(p, a, limit, std::move(done));
  }
  void Count(store::Callback<int64_t> done) override { inner_.Count(std::move(done)); }
  std::atomic<int64_t> reads{0};

 private:
  store::UserStore& inner_;
};

// The shared SQLite store as one node sees it, its users counted.
class Node final : public testing::BorrowedStore {
 public:
  explicit Node(store::Store& s) : BorrowedStore(s), users_(s.users()) {}
  store::UserStore& users() override { return users_; }
  CountingUsers& counting() { return users_; }

 private:
  CountingUsers users_;
};

// 100,000 users in a SQLite store in a temp dir, made once per process.
store::Store& Users(std::vector<int64_t>* ids) {
  static std::vector<int64_t> all;
  static std::unique_ptr<store::Store> store = [] {
    std::string pattern = (std::filesystem::temp_directory_path() / "mpim-cache-XXXXXX").string();
    store::sqlite::SqliteOptions options;
    options.path = std::string(mkdtemp(pattern.data())) + "/bench.db";
    auto opened = store::sqlite::Open(options);
    if (!opened.ok()) std::abort();
    auto slots = std::make_shared<std::counting_semaphore<>>(512);
    std::mutex mu;
    for (int i = 0; i < kUsers; ++i) {
      slots->acquire();
      (*opened)->users().Create(
          store::NewUser{"user" + std::to_string(i), "h", "", ""},
          [slots, &mu](core::StatusOr<store::User> u) {
            if (u.ok()) {
              std::lock_guard lock(mu);
              all.push_back(u->user_id);
            }
            slots->release();
          });
    }
    for (int i = 0; i < 512; ++i) slots->acquire();
    std::sort(all.begin(), all.end());
    return std::move(*opened);
  }();
  *ids = all;
  return *store;
}

// Ranks 0..n-1 drawn with P(k) proportional to 1 / (k + 1)^s.
class Zipf {
 public:
  Zipf(int n, double s) : cdf_(static_cast<size_t>(n)) {
    double sum = 0;
    for (int k = 0; k < n; ++k) sum += 1.0 / std::pow(k + 1, s);
    double acc = 0;
    for (int k = 0; k < n; ++k) cdf_[static_cast<size_t>(k)] = (acc += 1.0 / std::pow(k + 1, s) / sum);
  }
  size_t operator()(std::mt19937_64& rng) {
    double u = std::uniform_real_distribution<double>(0, 1)(rng);
    return static_cast<size_t>(std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin()) %
           cdf_.size();
  }

 private:
  std::vector<double> cdf_;
};

// `reads` profile reads with up to 256 in flight; failures counted.
int64_t ReadAll(store::Store& node, const std::vector<int64_t>& ids, Zipf& zipf,
                std::mt19937_64& rng, int reads) {
  auto slots = std::make_shared<std::counting_semaphore<>>(256);
  std::atomic<int64_t> errors{0};
  for (int i = 0; i < reads; ++i) {
    slots->acquire();
    node.users().Get(ids[zipf(rng)], [slots, &errors](core::StatusOr<store::User> u) {
      if (!u.ok()) errors.fetch_add(1);
      slots->release();
    });
  }
  for (int i = 0; i < 256; ++i) slots->acquire();
  return errors.load();
}

void RunZipf(benchmark::State& state, const std::string& engine) {
  std::vector<int64_t> ids;
  store::Store& shared = Users(&ids);
  core::Config config;
  config.cache.engine = engine;
  std::unique_ptr<redis::Client> redis;
  if (engine == "redis") {
    static testing::RedisServer* server = [] {
      auto* s = new testing::RedisServer();
      if (!s->Start()) std::fprintf(stderr, "cache_bench: redis: %s\n", s->error().c_str());
      return s;
    }();
    config.cache.redis_url = server->Url();
    config.cache.redis_prefix = "bench" + std::to_string(state.iterations()) + ":";
    auto client = MakeRedisClient(config);
    if (!client.ok()) return state.SkipWithError("no redis client");
    redis = std::move(*client);
  }
  auto node_owner = std::make_unique<Node>(shared);
  Node* node = node_owner.get();
  auto cached = MakeCachedStore(std::move(node_owner), config, redis.get());
  if (!cached.ok()) return state.SkipWithError("cannot make the cached store");
  Zipf zipf(kUsers, kZipfS);
  std::mt19937_64 rng(7);
  int64_t errors = ReadAll(**cached, ids, zipf, rng, kReads);  // warm-up
  const int64_t warm_reads = node->counting().reads.load();
  for (auto _ : state) errors += ReadAll(**cached, ids, zipf, rng, kReads);
  if (errors != 0) state.SkipWithError("reads failed");
  const double reads = static_cast<double>(state.iterations()) * kReads;
  const double store_reads = static_cast<double>(node->counting().reads.load() - warm_reads);
  state.SetItemsProcessed(static_cast<int64_t>(reads));
  state.counters["hit_ratio"] = 1.0 - store_reads / reads;
  state.counters["store_reads"] = store_reads;
  state.counters["reads_saved"] = reads - store_reads;
  state.counters["warmup_store_reads"] = static_cast<double>(warm_reads);
  cached->reset();
}

void BM_ZipfUserReadsLocal(benchmark::State& state) { RunZipf(state, "local"); }
BENCHMARK(BM_ZipfUserReadsLocal)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_ZipfUserReadsRedis(benchmark::State& state) { RunZipf(state, "redis"); }
BENCHMARK(BM_ZipfUserReadsRedis)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_ZipfUserReadsNone(benchmark::State& state) { RunZipf(state, "none"); }
BENCHMARK(BM_ZipfUserReadsNone)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mpim::cache

BENCHMARK_MAIN();
