// Cache engine `local`: this process's memory, sharded up to 16 ways with a short
// mutex per shard; single-flight loads; an optional lifetime per entry
// (read from the Clock; expired entries are swept as Puts come); at most
// `max_entries` entries, each shard evicting its least recently used entry
// (a hit makes an entry the most recent; loads in flight are never evicted).
// A cache that must not forget, such as the revoked sessions, sets no bound.
//
// A load racing with an invalidation of its shard is answered but not kept
// (each shard has a generation number that Invalidate bumps), and a Get
// that starts after the invalidation does not join it.
//
// Null caching (null_ttl_ms > 0): a load that answers kNotFound is kept
// that long as a "not found" entry, so lookups of ids that do not exist do
// not all reach the store; Gets answer the same kNotFound, Peek nothing.
// With a `name`, hits and misses are counted in `metrics` (cache/metrics.h)
// under tier "local".
#pragma once

#include <algorithm>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/cache.h"
#include "cache/metrics.h"
#include "core/clock.h"

namespace mpim::cache {

struct LocalCacheOptions {
  size_t max_entries = size_t{1} << 20;
  int64_t default_ttl_ms = 0;  // 0: entries live until invalidated or evicted
  int64_t null_ttl_ms = 0;     // how long a kNotFound load is kept; 0: never
  std::string name;            // metrics label ("blocks"); empty: not counted
  core::MetricsRegistry* metrics = &core::DefaultRegistry();
};

template <typename K, typename V, typename Hash = std::hash<K>>
class LocalCache final : public Cache<K, V> {
 public:
  using typename Cache<K, V>::Loader;

  explicit LocalCache(LocalCacheOptions options = {}, core::Clock& clock = core::SystemClock())
      : options_(options),
        clock_(clock),
        shard_count_(std::clamp<size_t>(options.max_entries / 64, 1, kMaxShards)),
        shards_(new Shard[shard_count_]),
        counters_(options.name.empty() ? TierCounters{}
                                       : CountersOf(*options.metrics, options.name, "local")) {}

  void Get(const K& key, Loader load, core::Callback<V> done) override {
    Shard& s = ShardOf(key);
    std::unique_lock lock(s.mu);
    if (auto it = s.entries.find(key); it != s.entries.end()) {
      Entry& e = it->second;
      if ((e.value || e.not_found) && !Expired(e)) {
        counters_.Hit();
        s.lru.splice(s.lru.begin(), s.lru, e.lru_pos);
        core::StatusOr<V> r = e.value ? core::StatusOr<V>(*e.value) : *e.not_found;
        lock.unlock();  // the callback may call back in
        return std::move(done)(std::move(r));
      }
      if (e.flight) {
        counters_.Miss();
        return e.flight->waiters.push_back(std::move(done));
      }
    }
    counters_.Miss();
    Entry& e = Emplace(s, key);
    e.value.reset();
    e.not_found.reset();
    auto flight = e.flight = std::make_shared<Flight>();
    flight->waiters.push_back(std::move(done));
    const uint64_t generation = s.generation;
    lock.unlock();
    std::move(load)([this, &s, key, flight, generation](core::StatusOr<V> r) {
      std::vector<core::Callback<V>> waiters;
      {
        std::lock_guard relock(s.mu);
        auto it = s.entries.find(key);
        if (it != s.entries.end() && it->second.flight == flight) {
          it->second.flight.reset();
          if (r.ok() && generation == s.generation) {
            it->second.value = *r;
            it->second.expires_ms = Deadline(0);
            Evict(s);
          } else if (IsNullCached(r) && generation == s.generation) {
            it->second.not_found = r.status();
            it->second.expires_ms = Deadline(options_.null_ttl_ms);
            Evict(s);
          } else {
            Erase(s, it);
          }
        }
        waiters = std::move(flight->waiters);
      }
      for (size_t i = 0; i + 1 < waiters.size(); ++i) std::move(waiters[i])(r);
      if (!waiters.empty()) std::move(waiters.back())(std::move(r));
    });
  }

  void Put(const K& key, V value, int64_t ttl_ms = 0) override {
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    if (++s.puts % kSweepEvery == 0) Sweep(s);
    Entry& e = Emplace(s, key);
    e.value = std::move(value);
    e.not_found.reset();
    e.expires_ms = Deadline(ttl_ms);
    Evict(s);
  }

  std::optional<V> Peek(const K& key) const override {
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.entries.find(key);
    if (it == s.entries.end() || !it->second.value || Expired(it->second)) return std::nullopt;
    return it->second.value;
  }

  using Cache<K, V>::Invalidate;
  void Invalidate(const K& key, typename Cache<K, V>::Invalidated done) override {
    {
      Shard& s = ShardOf(key);
      std::lock_guard lock(s.mu);
      ++s.generation;
      // An in-flight load keeps its own waiters.
      if (auto it = s.entries.find(key); it != s.entries.end()) Erase(s, it);
    }
    std::move(done)();
  }

  // Drops every entry (as Invalidate does each).
  void Clear() {
    for (size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      ++shards_[i].generation;
      shards_[i].entries.clear();
      shards_[i].lru.clear();
    }
  }

  size_t size() const override {
    size_t n = 0;
    for (size_t i = 0; i < shard_count_; ++i) {
      std::lock_guard lock(shards_[i].mu);
      n += shards_[i].entries.size();
    }
    return n;
  }

 private:
  static constexpr size_t kMaxShards = 16;
  static constexpr uint64_t kSweepEvery = 1024;  // Puts per shard between sweeps
  struct Flight {
    std::vector<core::Callback<V>> waiters;  // guarded by the shard's mu
  };
  struct Entry {
    std::optional<V> value;
    std::optional<core::Status> not_found;  // a kept kNotFound (null caching)
    int64_t expires_ms = 0;                 // steady ms; 0: never
    std::shared_ptr<Flight> flight;
    typename std::list<K>::iterator lru_pos;  // its place in the shard's lru
  };
  struct Shard {
    mutable std::mutex mu;  // guards entries, lru and generation
    std::unordered_map<K, Entry, Hash> entries;
    std::list<K> lru;  // every key of entries, most recently used first
    uint64_t generation = 0;
    uint64_t puts = 0;
  };

  Shard& ShardOf(const K& key) const { return shards_[Hash{}(key) % shard_count_]; }
  size_t MaxPerShard() const { return std::max<size_t>(1, options_.max_entries / shard_count_); }
  int64_t Deadline(int64_t ttl_ms) const {
    int64_t ttl = ttl_ms > 0 ? ttl_ms : options_.default_ttl_ms;
    return ttl > 0 ? clock_.SteadyMs() + ttl : 0;
  }
  bool IsNullCached(const core::StatusOr<V>& r) const {
    return options_.null_ttl_ms > 0 && r.status().code() == absl::StatusCode::kNotFound;
  }
  bool Expired(const Entry& e) const {
    return e.expires_ms != 0 && clock_.SteadyMs() >= e.expires_ms;
  }
  // The entry of `key` (new ones most recently used); shard locked.
  Entry& Emplace(Shard& s, const K& key) {
    auto [it, inserted] = s.entries.try_emplace(key);
    if (inserted) {
      s.lru.push_front(key);
      it->second.lru_pos = s.lru.begin();
    } else {
      s.lru.splice(s.lru.begin(), s.lru, it->second.lru_pos);
    }
    return it->second;
  }
  void Erase(Shard& s, typename std::unordered_map<K, Entry, Hash>::iterator it) {
    s.lru.erase(it->second.lru_pos);
    s.entries.erase(it);
  }
  // Evicts least recently used entries while the shard is over its bound
  // (loads in flight stay, so their waiters are answered).
  void Evict(Shard& s) {
    for (auto pos = s.lru.end(); s.entries.size() > MaxPerShard() && pos != s.lru.begin();) {
      --pos;
      auto it = s.entries.find(*pos);
      if (it->second.flight) continue;
      pos = std::next(pos);  // Erase invalidates the current one
      Erase(s, it);
    }
  }
  // Drops expired entries.
  void Sweep(Shard& s) {
    for (auto it = s.entries.begin(); it != s.entries.end();) {
      auto next = std::next(it);
      if (!it->second.flight && Expired(it->second)) Erase(s, it);
      it = next;
    }
  }

  const LocalCacheOptions options_;
  core::Clock& clock_;
  const size_t shard_count_;  // fewer for small caches, so the bound holds exactly
  const std::unique_ptr<Shard[]> shards_;
  const TierCounters counters_;
};

}  // namespace mpim::cache
