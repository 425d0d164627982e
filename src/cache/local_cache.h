// Cache engine `local`: this process's memory, sharded up to 16 ways with a short
// mutex per shard; single-flight loads; an optional lifetime per entry
// (read from the Clock; expired entries are swept as Puts come); at most
// `max_entries` entries (a shard that fills up starts over: the entries are
// all re-readable, so a cache that must not forget, such as the revoked
// sessions, sets no bound).
//
// A load racing with an invalidation of its shard is answered but not kept
// (each shard has a generation number that Invalidate bumps), and a Get
// that starts after the invalidation does not join it.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cache/cache.h"
#include "core/clock.h"

namespace mpim::cache {

struct LocalCacheOptions {
  size_t max_entries = size_t{1} << 20;
  int64_t default_ttl_ms = 0;  // 0: entries live until invalidated or evicted
};

template <typename K, typename V, typename Hash = std::hash<K>>
class LocalCache final : public Cache<K, V> {
 public:
  using typename Cache<K, V>::Loader;

  explicit LocalCache(LocalCacheOptions options = {}, core::Clock& clock = core::SystemClock())
      : options_(options),
        clock_(clock),
        shard_count_(std::clamp<size_t>(options.max_entries / 64, 1, kMaxShards)),
        shards_(new Shard[shard_count_]) {}

  void Get(const K& key, Loader load, core::Callback<V> done) override {
    Shard& s = ShardOf(key);
    std::unique_lock lock(s.mu);
    if (auto it = s.entries.find(key); it != s.entries.end()) {
      Entry& e = it->second;
      if (e.value && !Expired(e)) {
        V value = *e.value;
        lock.unlock();  // the callback may call back in
        return std::move(done)(std::move(value));
      }
      if (e.flight) return e.flight->waiters.push_back(std::move(done));
    }
    Entry& e = s.entries[key];
    e.value.reset();
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
            if (s.entries.size() > MaxPerShard()) Sweep(s);
          } else {
            s.entries.erase(it);
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
    if (++s.puts % kSweepEvery == 0 || s.entries.size() >= MaxPerShard()) Sweep(s);
    Entry& e = s.entries[key];
    e.value = std::move(value);
    e.expires_ms = Deadline(ttl_ms);
  }

  std::optional<V> Peek(const K& key) const override {
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    auto it = s.entries.find(key);
    if (it == s.entries.end() || !it->second.value || Expired(it->second)) return std::nullopt;
    return it->second.value;
  }

  void Invalidate(const K& key) override {
    Shard& s = ShardOf(key);
    std::lock_guard lock(s.mu);
    ++s.generation;
    s.entries.erase(key);  // an in-flight load keeps its own waiters
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
    int64_t expires_ms = 0;  // steady ms; 0: never
    std::shared_ptr<Flight> flight;
  };
  struct Shard {
    mutable std::mutex mu;  // guards entries and generation
    std::unordered_map<K, Entry, Hash> entries;
    uint64_t generation = 0;
    uint64_t puts = 0;
  };

  Shard& ShardOf(const K& key) const { return shards_[Hash{}(key) % shard_count_]; }
  size_t MaxPerShard() const { return std::max<size_t>(1, options_.max_entries / shard_count_); }
  int64_t Deadline(int64_t ttl_ms) const {
    int64_t ttl = ttl_ms > 0 ? ttl_ms : options_.default_ttl_ms;
    return ttl > 0 ? clock_.SteadyMs() + ttl : 0;
  }
  bool Expired(const Entry& e) const {
    return e.expires_ms != 0 && clock_.SteadyMs() >= e.expires_ms;
  }
  // Drops expired entries; a shard still full starts over (loads in flight
  // stay, so their waiters are answered).
  void Sweep(Shard& s) {
    std::erase_if(s.entries, [this](const auto& kv) { return !kv.second.flight && Expired(kv.second); });
    if (s.entries.size() >= MaxPerShard()) {
      std::erase_if(s.entries, [](const auto& kv) { return !kv.second.flight; });
    }
  }

  const LocalCacheOptions options_;
  core::Clock& clock_;
  const size_t shard_count_;  // fewer for small caches, so the bound holds exactly
  const std::unique_ptr<Shard[]> shards_;
};

}  // namespace mpim::cache
