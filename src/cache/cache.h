// A cache in front of the store (cache-aside): values of type V by key K,
// loaded by the caller's loader on a miss. The send path reads blocks and
// group members through one; the auth service keeps revoked sessions in one.
//
// Contract for every implementation (local, none, redis):
//   - Get may take a network round trip: `done` runs exactly once, on any
//     thread, inline on a hit held in memory. A miss calls `load` (at most
//     one load per key at a time on one node: concurrent misses wait for it)
//     and keeps its result unless the key was invalidated while it ran;
//     errors are answered, never kept. Nothing blocks the calling thread, so
//     io threads may call it.
//   - A cache never fails a Get on its own account: if its engine is down it
//     loads from the store (`load`) instead. It never holds the only copy of
//     anything: losing every entry is always safe.
//   - GetMany answers several keys as Get would, in one round trip where
//     the engine can (Redis: one MGET); `done` gets one result per key, in
//     order. Misses load through `load(key, ...)`, one key at a time.
//   - Peek answers from this node's memory only, without a round trip.
//   - Invalidation: Invalidate(key, done) drops the key on this node before
//     it returns, so a Get on this node that starts after it reads afresh;
//     `done` runs (once, on any thread, perhaps inline) when the shared tier
//     has dropped it too. Writers invalidate after their store write commits
//     and answer in `done`. Other nodes: an implementation shared by several
//     nodes must make the invalidation reach each node that may hold the key
//     (the Redis one replaces the shared entry with a tombstone and
//     publishes the key for the nodes' in-memory tiers), and bounds what a
//     lost invalidation can do with a TTL on every entry. The local
//     implementation serves one process (role `all`), where this node is
//     every node.
//   - Strict caches (CacheContext::strict: blocks and memberships, the reads
//     that decide who may send and who receives): every Get that starts
//     after an invalidation's `done` ran, on any node, reads afresh. The
//     Redis engine keeps no in-memory tier for them (a pub/sub message
//     cannot promise that), so such a Get costs one Redis round trip.
//
// Thread-safe: every method may be called from any thread at once.
//
// Adding an engine: implement Cache<K, V> in cache/<name>_cache.h, add it to
// MakeCache in cache/registry.h and its name to core/engines.cc.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/callback.h"

namespace mpim::cache {

template <typename K, typename V>
class Cache {
 public:
  // Reads the value from the source of truth; runs `done` once.
  using Loader = absl::AnyInvocable<void(core::Callback<V>) &&>;

  virtual ~Cache() = default;

  // GetMany's loader: reads one key from the source of truth.
  using KeyLoader = std::function<void(const K&, core::Callback<V>)>;
  using ManyCallback = absl::AnyInvocable<void(std::vector<core::StatusOr<V>>) &&>;

  virtual void Get(const K& key, Loader load, core::Callback<V> done) = 0;
  // One Get per key unless the engine batches (the redis engine does).
  virtual void GetMany(std::vector<K> keys, KeyLoader load, ManyCallback done);
  // Sets the value (what a writer just committed); ttl_ms 0: the cache's
  // default lifetime.
  virtual void Put(const K& key, V value, int64_t ttl_ms = 0) = 0;
  virtual std::optional<V> Peek(const K& key) const = 0;
  // Runs when the invalidation is done everywhere a Get may look (above).
  using Invalidated = absl::AnyInvocable<void() &&>;
  virtual void Invalidate(const K& key, Invalidated done) = 0;
  // Without waiting (tests, and drops that answer nobody).
  void Invalidate(const K& key) {
    Invalidate(key, [] {});
  }
  // Every key of `keys`; `done` once all are done.
  void InvalidateAll(const std::vector<K>& keys, Invalidated done);
  // Entries held in this node's memory (for tests and metrics).
  virtual size_t size() const = 0;
};

template <typename K, typename V>
void Cache<K, V>::GetMany(std::vector<K> keys, KeyLoader load, ManyCallback done) {
  struct Batch {
    std::vector<core::StatusOr<V>> results;
    std::atomic<size_t> left;
    ManyCallback done;
  };
  if (keys.empty()) return std::move(done)({});
  auto batch = std::make_shared<Batch>();
  batch->results.reserve(keys.size());  // (resize with a StatusOr trips -Wmaybe-uninitialized)
  for (size_t i = 0; i < keys.size(); ++i) {
    batch->results.emplace_back(absl::UnknownError("not answered"));
  }
  batch->left = keys.size();
  batch->done = std::move(done);
  for (size_t i = 0; i < keys.size(); ++i) {
    Get(
        keys[i], [load, key = keys[i]](core::Callback<V> cb) { load(key, std::move(cb)); },
        [batch, i](core::StatusOr<V> r) {
          batch->results[i] = std::move(r);  // each slot written once; `left` orders them
          if (batch->left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            std::move(batch->done)(std::move(batch->results));
          }
        });
  }
}

template <typename K, typename V>
void Cache<K, V>::InvalidateAll(const std::vector<K>& keys, Invalidated done) {
  if (keys.empty()) return std::move(done)();
  struct Join {
    std::atomic<size_t> left;
    Invalidated done;
  };
  auto join = std::make_shared<Join>();
  join->left = keys.size();
  join->done = std::move(done);
  for (const K& key : keys) {
    Invalidate(key, [join] {
      if (join->left.fetch_sub(1, std::memory_order_acq_rel) == 1) std::move(join->done)();
    });
  }
}

// Loads `keys` into `cache` (warm-up of hot keys at start): `done` gets how
// many were loaded without error.
template <typename K, typename V>
void WarmUp(Cache<K, V>& cache, std::vector<K> keys, typename Cache<K, V>::KeyLoader load,
            core::Callback<size_t> done) {
  cache.GetMany(std::move(keys), std::move(load),
                [done = std::move(done)](std::vector<core::StatusOr<V>> results) mutable {
                  size_t ok = 0;
                  for (const auto& r : results) ok += r.ok() ? 1 : 0;
                  std::move(done)(ok);
                });
}

}  // namespace mpim::cache
