// A cache in front of the store (cache-aside): values of type V by key K,
// loaded by the caller's loader on a miss. The send path reads blocks and
// group members through one; the auth service keeps revoked sessions in one.
//
// Contract for every implementation (local now; Redis in cluster mode):
//   - Get may take a network round trip: `done` runs exactly once, on any
//     thread, inline on a hit held in memory. A miss calls `load` (at most
//     one load per key at a time on one node: concurrent misses wait for it)
//     and keeps its result unless the key was invalidated while it ran;
//     errors are answered, never kept. Nothing blocks the calling thread, so
//     io threads may call it.
//   - A cache never fails a Get on its own account: if its engine is down it
//     loads from the store (`load`) instead. It never holds the only copy of
//     anything: losing every entry is always safe.
//   - Peek answers from this node's memory only, without a round trip.
//   - Invalidation: Invalidate(key) drops the key on this node before it
//     returns, so a Get on this node that starts after it reads afresh.
//     Writers invalidate after their store write commits and before they
//     answer. Other nodes: an implementation shared by several nodes must
//     make the invalidation reach each node that may hold the key (the Redis
//     one deletes the shared entry and publishes the key on the bus for the
//     nodes' in-memory tiers), and bounds what a lost invalidation can do
//     with a TTL on every entry. The local implementation serves one process
//     (role `all`), where this node is every node.
//
// Thread-safe: every method may be called from any thread at once.
//
// Adding an engine: implement Cache<K, V> in cache/<name>_cache.h, add it to
// MakeCache in cache/registry.h and its name to core/engines.cc.
#pragma once

#include <cstdint>
#include <optional>

#include "absl/functional/any_invocable.h"
#include "core/callback.h"

namespace mpim::cache {

template <typename K, typename V>
class Cache {
 public:
  // Reads the value from the source of truth; runs `done` once.
  using Loader = absl::AnyInvocable<void(core::Callback<V>) &&>;

  virtual ~Cache() = default;

  virtual void Get(const K& key, Loader load, core::Callback<V> done) = 0;
  // Sets the value (what a writer just committed); ttl_ms 0: the cache's
  // default lifetime.
  virtual void Put(const K& key, V value, int64_t ttl_ms = 0) = 0;
  virtual std::optional<V> Peek(const K& key) const = 0;
  virtual void Invalidate(const K& key) = 0;
  // Entries held in this node's memory (for tests and metrics).
  virtual size_t size() const = 0;
};

}  // namespace mpim::cache
