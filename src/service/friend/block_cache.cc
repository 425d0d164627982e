#include "service/friend/block_cache.h"

#include "cache/local_cache.h"

namespace mpim::service {

BlockCache::BlockCache(store::FriendStore& store, size_t max_pairs)
    : BlockCache(store, std::make_unique<cache::LocalCache<BlockPair, bool, BlockPairHash>>(
                            cache::LocalCacheOptions{.max_entries = max_pairs})) {}

void BlockCache::IsBlocked(int64_t blocker, int64_t blocked, core::Callback<bool> done) {
  cache_->Get(
      {blocker, blocked},
      [this, blocker, blocked](core::Callback<bool> loaded) {
        store_.IsBlocked(blocker, blocked, std::move(loaded));
      },
      std::move(done));
}

}  // namespace mpim::service
