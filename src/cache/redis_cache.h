// Cache engine `redis`: two tiers. This node's memory (a LocalCache with a
// short lifetime, `local_ttl_ms`) in front of Redis, which every node
// shares.
//
// Get: a hit in memory answers at once. Otherwise one load per key and node
// (single flight through the local tier: 1,000 concurrent misses make one
// Redis GET and at most one store read) asks Redis; a hit there is kept in
// memory and answered; a miss runs the caller's loader and writes the
// result to Redis (SET NX with `ttl_ms` plus 0-10% jitter, so entries
// loaded together do not expire together). A loader that answers kNotFound
// is kept as a "not found" marker for `null_ttl_ms` (null caching), in
// Redis and in memory.
//
// A strict cache (memory_tier = false: blocks, memberships) keeps nothing
// in memory: every Get asks Redis, so once an Invalidate's `done` ran (the
// tombstone is in Redis) no node answers the old value.
//
// Invalidate(key), after the writer's commit: drops the key here, then in
// Redis replaces the entry with a tombstone (a marker that lives
// `tombstone_ms` and that loaders' SET NX cannot overwrite, so a load that
// read the store before the commit cannot put its stale answer back), and
// publishes the key on the cache's channel; every node drops it from its
// memory when the message arrives (normally within a millisecond or two).
// Put(key, value) writes Redis (overwriting) and publishes the key the same
// way. Bounds: a node that misses a message (its subscriber was down)
// clears its whole memory tier when the subscription is made again, and
// meanwhile keeps no entry longer than `local_ttl_ms`; an invalidation that
// could not reach Redis (Redis down) is retried when the subscriber is back,
// and every entry in Redis expires after `ttl_ms` (+10%) whatever happens.
//
// Redis down or slow: Gets load from the store and answer (after at most
// the command timeout; at once while the client backs off), nothing fails
// that the store can answer; writes to Redis are dropped; the cache is used
// again as soon as the client reconnects. Redis errors and values that do
// not decode count in mpim_cache_errors_total and read the store instead.
//
// Keys in Redis: <prefix><name>:<encoded key>; channel <prefix><name>:invalidate.
// Values: 'v' + the encoded value, 'n' + the loader's message (not found),
// 't' (tombstone).
// Thread-safe; callbacks run on the Redis client's thread, on the loader's
// thread, or inline (a hit in memory).
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "cache/cache.h"
#include "cache/codec.h"
#include "cache/local_cache.h"
#include "cache/metrics.h"
#include "redis/client.h"

namespace mpim::cache {

struct RedisCacheOptions {
  std::string name;  // "blocks": key part and metrics label
  std::string prefix = "mpim:";
  int64_t ttl_ms = 300000;      // entries in Redis (plus jitter)
  int64_t local_ttl_ms = 5000;  // entries in this node's memory; 0: until invalidated
  bool memory_tier = true;      // false (a strict cache): every Get asks Redis
  int64_t null_ttl_ms = 10000;  // "not found" markers; 0: not kept
  int64_t tombstone_ms = 2000;  // an invalidated key refuses loaders' writes this long
  size_t local_max_entries = size_t{1} << 20;
  size_t max_pending_invalidations = 100000;  // kept while Redis is down; then TTLs bound them
  core::MetricsRegistry* metrics = &core::DefaultRegistry();
};

// The untyped half: encoded keys and values, Redis commands, the channel.
class RedisTier : public std::enable_shared_from_this<RedisTier> {
 public:
  // What Redis holds for a key.
  struct Lookup {
    enum class Kind { kMiss, kValue, kNotFound } kind = Kind::kMiss;  // kMiss: absent or tombstone
    std::string bytes;  // kValue: the encoded value; kNotFound: the loader's message
  };
  using LookupCallback = core::Callback<Lookup>;
  using ManyCallback = core::Callback<std::vector<Lookup>>;
  // Key drops from other nodes; the subscription made again after a loss.
  struct Listener {
    std::function<void(std::string_view key)> drop;
    std::function<void()> drop_all;
  };

  static std::shared_ptr<RedisTier> Create(RedisCacheOptions options, redis::Client& redis,
                                           Listener listener);

  void Get(const std::string& key, LookupCallback done);
  void GetMany(const std::vector<std::string>& keys, ManyCallback done);
  // After a load: SET NX (a tombstone or a newer value wins).
  void Fill(const std::string& key, const std::string& value);
  void FillNotFound(const std::string& key, std::string_view message);
  // A writer's value: SET (overwrites) and publish.
  void Put(const std::string& key, const std::string& value, int64_t ttl_ms);
  // Tombstone and publish; kept for a retry if Redis cannot be reached.
  // `done` once Redis answered the tombstone (or failed to).
  void Invalidate(const std::string& key, absl::AnyInvocable<void() &&> done);

  const TierCounters& counters() const { return counters_; }
  core::Counter& errors() const { return errors_; }
  size_t pending_invalidations() const;

 private:
  RedisTier(RedisCacheOptions options, redis::Client& redis);
  void OnMessage(std::string_view message);
  void OnSubscribed();
  void Publish(const std::string& key);
  void Pending(const std::string& key);

  const RedisCacheOptions options_;
  redis::Client& redis_;
  const std::string key_prefix_;  // <prefix><name>:
  const std::string channel_;
  const std::string origin_;  // this instance's id in published messages
  Listener listener_;         // set once, before the subscription
  const TierCounters counters_;
  core::Counter& errors_;
  std::atomic<bool> subscribed_once_{false};
  mutable std::mutex mu_;                    // guards pending_
  std::unordered_set<std::string> pending_;  // invalidations that did not reach Redis
};

template <typename K, typename V, typename Hash = std::hash<K>>
requires Encodable<K> && Encodable<V>
class RedisCache final : public Cache<K, V> {
 public:
  using typename Cache<K, V>::Loader;
  using typename Cache<K, V>::KeyLoader;
  using typename Cache<K, V>::ManyCallback;

  // `redis` must outlive the cache.
  RedisCache(RedisCacheOptions options, redis::Client& redis,
             core::Clock& clock = core::SystemClock())
      : parts_(std::make_shared<Parts>(options, clock)) {
    std::weak_ptr<Parts> weak = parts_;
    parts_->tier = RedisTier::Create(options, redis,
                                     RedisTier::Listener{[weak](std::string_view encoded) {
                                                           K key;
                                                           auto p = weak.lock();
                                                           if (p && Codec<K>::Decode(encoded, &key))
                                                             p->local.Invalidate(key);
                                                         },
                                                         [weak] {
                                                           if (auto p = weak.lock())
                                                             p->local.Clear();
                                                         }});
  }

  void Get(const K& key, Loader load, core::Callback<V> done) override {
    std::shared_ptr<Parts> p = parts_;
    if (!p->memory) {
      std::string encoded = Encode(key);
      return p->tier->Get(encoded, [p, encoded, load = std::move(load), done = std::move(done)](
                                       core::StatusOr<RedisTier::Lookup> found) mutable {
        if (auto hit = Answer(*p, found); hit.has_value()) return std::move(done)(std::move(*hit));
        LoadAndFill(p, std::move(encoded), std::move(load), std::move(done));
      });
    }
    p->local.Get(
        key,
        [p, key, load = std::move(load)](core::Callback<V> loaded) mutable {
          std::string encoded = Encode(key);
          p->tier->Get(encoded, [p, encoded, load = std::move(load), loaded = std::move(loaded)](
                                    core::StatusOr<RedisTier::Lookup> found) mutable {
            if (auto hit = Answer(*p, found); hit.has_value()) {
              return std::move(loaded)(std::move(*hit));
            }
            LoadAndFill(p, std::move(encoded), std::move(load), std::move(loaded));
          });
        },
        std::move(done));
  }

  // Hits in memory, then one MGET for the rest; misses load key by key.
  void GetMany(std::vector<K> keys, KeyLoader load, ManyCallback done) override {
    struct Batch {
      std::vector<core::StatusOr<V>> results;
      std::vector<size_t> missing;  // indexes asked of Redis
      std::atomic<size_t> left{0};
      ManyCallback done;
      void Answer(size_t i, core::StatusOr<V> r) {
        results[i] = std::move(r);
        if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) std::move(done)(std::move(results));
      }
    };
    auto batch = std::make_shared<Batch>();
    batch->results.reserve(keys.size());  // (resize with a StatusOr trips -Wmaybe-uninitialized)
    for (size_t i = 0; i < keys.size(); ++i) {
      batch->results.emplace_back(absl::UnknownError("not answered"));
    }
    batch->done = std::move(done);
    std::vector<std::string> encoded;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (auto v = Peek(keys[i])) {
        parts_->local_counters.Hit();
        batch->results[i] = std::move(*v);
      } else {
        batch->missing.push_back(i);
        encoded.push_back(Encode(keys[i]));
      }
    }
    if (batch->missing.empty()) return std::move(batch->done)(std::move(batch->results));
    batch->left = batch->missing.size();
    std::shared_ptr<Parts> p = parts_;
    p->tier->GetMany(encoded, [p, batch, keys = std::move(keys), encoded, load = std::move(load)](
                                  core::StatusOr<std::vector<RedisTier::Lookup>> found) mutable {
      for (size_t j = 0; j < batch->missing.size(); ++j) {
        const size_t i = batch->missing[j];
        std::optional<core::StatusOr<V>> hit;
        if (found.ok()) hit = Answer(*p, (*found)[j]);
        // Through the local tier: a Get of the same key joins this load.
        auto fetch = [p, hit = std::move(hit), key = keys[i], encoded = encoded[j],
                      load](core::Callback<V> loaded) mutable {
          if (hit.has_value()) return std::move(loaded)(std::move(*hit));
          LoadAndFill(
              p, std::move(encoded),
              [load, key](core::Callback<V> cb) { load(key, std::move(cb)); }, std::move(loaded));
        };
        auto answer = [batch, i](core::StatusOr<V> r) { batch->Answer(i, std::move(r)); };
        if (!p->memory) {
          std::move(fetch)(std::move(answer));
          continue;
        }
        p->local.Get(keys[i], std::move(fetch), std::move(answer));
      }
    });
  }

  void Put(const K& key, V value, int64_t ttl_ms = 0) override {
    parts_->tier->Put(Encode(key), Encode(value), ttl_ms);
    if (parts_->memory) parts_->local.Put(key, std::move(value));
  }

  std::optional<V> Peek(const K& key) const override {
    if (!parts_->memory) return std::nullopt;
    return parts_->local.Peek(key);
  }

  using Cache<K, V>::Invalidate;
  void Invalidate(const K& key, typename Cache<K, V>::Invalidated done) override {
    parts_->local.Invalidate(key);
    parts_->tier->Invalidate(Encode(key), std::move(done));
  }

  size_t size() const override { return parts_->local.size(); }

  // Invalidations waiting for Redis to come back (for tests).
  size_t pending_invalidations() const { return parts_->tier->pending_invalidations(); }

 private:
  // Shared with callbacks in flight, so a cache may go while Redis answers.
  struct Parts {
    Parts(const RedisCacheOptions& o, core::Clock& clock)
        : local(LocalCacheOptions{.max_entries = o.local_max_entries,
                                  .default_ttl_ms = o.local_ttl_ms,
                                  .null_ttl_ms = o.local_ttl_ms > 0
                                                     ? std::min(o.null_ttl_ms, o.local_ttl_ms)
                                                     : o.null_ttl_ms,
                                  .name = o.name,
                                  .metrics = o.metrics},
                clock),
          local_counters(CountersOf(*o.metrics, o.name, "local")),
          memory(o.memory_tier) {}
    LocalCache<K, V, Hash> local;  // empty unless `memory`
    TierCounters local_counters;   // GetMany's Peeks
    const bool memory;
    std::shared_ptr<RedisTier> tier;
  };

  // What a Redis lookup answers: a value, not found, or nothing (load).
  static std::optional<core::StatusOr<V>> Answer(Parts& p,
                                                 const core::StatusOr<RedisTier::Lookup>& found) {
    if (!found.ok()) return std::nullopt;  // counted by the tier; the store answers
    switch (found->kind) {
      case RedisTier::Lookup::Kind::kValue: {
        V value;
        if (Codec<V>::Decode(found->bytes, &value)) {
          p.tier->counters().Hit();
          return core::StatusOr<V>(std::move(value));
        }
        p.tier->errors().Inc();
        return std::nullopt;
      }
      case RedisTier::Lookup::Kind::kNotFound:
        p.tier->counters().Hit();
        return core::StatusOr<V>(absl::NotFoundError(found->bytes));
      case RedisTier::Lookup::Kind::kMiss:
        break;
    }
    p.tier->counters().Miss();
    return std::nullopt;
  }

  // Runs the loader and writes what it found to Redis.
  static void LoadAndFill(const std::shared_ptr<Parts>& p, std::string encoded, Loader load,
                          core::Callback<V> loaded) {
    std::move(load)(
        [p, encoded = std::move(encoded), loaded = std::move(loaded)](core::StatusOr<V> r) mutable {
          if (r.ok()) {
            p->tier->Fill(encoded, Encode(*r));
          } else if (r.status().code() == absl::StatusCode::kNotFound) {
            p->tier->FillNotFound(encoded, std::string(r.status().message()));
          }
          std::move(loaded)(std::move(r));
        });
  }

  std::shared_ptr<Parts> parts_;
};

}  // namespace mpim::cache
