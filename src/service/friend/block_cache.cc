#include "service/friend/block_cache.h"

#include <optional>

namespace mpim::service {

void BlockCache::IsBlocked(int64_t blocker, int64_t blocked, core::Callback<bool> done) {
  const std::pair<int64_t, int64_t> key{blocker, blocked};
  std::optional<bool> known;
  uint64_t generation = 0;
  {
    std::lock_guard lock(mu_);
    if (auto it = known_.find(key); it != known_.end()) known = it->second;
    generation = generation_;
  }
  // Answered without mu_ held: the callback may call back in.
  if (known) return std::move(done)(*known);
  store_.IsBlocked(blocker, blocked,
                   [this, key, generation, done = std::move(done)](core::StatusOr<bool> r) mutable {
                     if (r.ok()) {
                       std::lock_guard lock(mu_);
                       if (generation == generation_) {
                         if (known_.size() >= max_pairs_) known_.clear();
                         known_[key] = *r;
                       }
                     }
                     std::move(done)(std::move(r));
                   });
}

void BlockCache::Invalidate(int64_t blocker, int64_t blocked) {
  std::lock_guard lock(mu_);
  ++generation_;
  known_.erase({blocker, blocked});
}

}  // namespace mpim::service
