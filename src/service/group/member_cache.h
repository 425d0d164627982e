// Member lists of groups up to the fan-out threshold, cached (cache/cache.h)
// so that a send to a small group does not read its members from the store
// every time. Every membership change (GroupService) invalidates its group
// after it commits. How an invalidation reaches other nodes is the cache's
// contract.
//
// Thread-safe; callbacks run on a store thread or inline (a hit).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cache/cache.h"
#include "core/callback.h"
#include "store/store.h"

namespace mpim::service {

using MemberList = std::shared_ptr<const std::vector<int64_t>>;
using MemberListCache = cache::Cache<int64_t, MemberList>;

class MemberCache {
 public:
  // Groups with more than `max_members` are "large": Get answers null.
  MemberCache(store::Store& store, int64_t max_members, std::unique_ptr<MemberListCache> cache);
  // With a local cache.
  MemberCache(store::Store& store, int64_t max_members);

  // The member ids (ascending), or null for a large group. not_found for
  // an unknown group.
  void Get(int64_t group_id, core::Callback<MemberList> done);
  // After a membership change committed; `done` once no node answers the
  // old list (the cache is a strict one, cache/cache.h).
  void Invalidate(int64_t group_id, MemberListCache::Invalidated done) {
    cache_->Invalidate(group_id, std::move(done));
  }

 private:
  // Reads the members page by page into `acc`.
  void Load(int64_t group_id, std::shared_ptr<std::vector<int64_t>> acc, int64_t after,
            core::Callback<MemberList> done);

  store::Store& store_;
  const int64_t max_;
  std::unique_ptr<MemberListCache> cache_;
};

}  // namespace mpim::service
