// Who blocks whom, for the send path: a private send asks whether the
// recipient blocks the sender, and the answer for a pair is cached
// (cache/cache.h) after the first read, so a chat costs no store read per
// message. The friend service invalidates a pair once a block or unblock of
// it has committed (before it answers), so a block takes effect for every
// send checked after the block was answered. How an invalidation reaches
// other nodes is the cache's contract (cache/cache.h).
//
// Thread-safe; callbacks run on a store thread or inline (a hit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

#include "cache/cache.h"
#include "core/callback.h"
#include "store/friend_store.h"

namespace mpim::service {

using BlockPair = std::pair<int64_t, int64_t>;  // (blocker, blocked)
struct BlockPairHash {
  size_t operator()(const BlockPair& p) const {
    return std::hash<int64_t>()(p.first * 1'000'003 ^ p.second);
  }
};
using BlockPairCache = cache::Cache<BlockPair, bool>;

class BlockCache {
 public:
  BlockCache(store::FriendStore& store, std::unique_ptr<BlockPairCache> cache)
      : store_(store), cache_(std::move(cache)) {}
  // With a local cache of at most `max_pairs` pairs.
  explicit BlockCache(store::FriendStore& store, size_t max_pairs = size_t{1} << 20);

  // Whether `blocker` blocks `blocked`; store errors as the store gives them.
  void IsBlocked(int64_t blocker, int64_t blocked, core::Callback<bool> done);
  // After a block or unblock of the pair (committed or failed); `done` once
  // no node answers the old value (answer the writer there).
  void Invalidate(int64_t blocker, int64_t blocked, BlockPairCache::Invalidated done) {
    cache_->Invalidate({blocker, blocked}, std::move(done));
  }

 private:
  store::FriendStore& store_;
  std::unique_ptr<BlockPairCache> cache_;
};

}  // namespace mpim::service
