// Who blocks whom, for the send path: a private send asks whether the
// recipient blocks the sender, and the answer for a pair is kept in memory
// after the first read, so a chat costs no store read per message. The
// friend service invalidates a pair once a block or unblock of it has
// committed (before it answers), so a block takes effect for every send
// checked after the block was answered.
//
// A read racing with an invalidation is not kept (a generation number that
// every Invalidate bumps). At most `max_pairs` pairs are kept; past that the
// cache starts over. One process: a cluster needs the invalidation sent to
// every logic node (or a TTL).
//
// Thread-safe; callbacks run on a store thread or inline (a hit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "core/callback.h"
#include "store/friend_store.h"

namespace mpim::service {

class BlockCache {
 public:
  explicit BlockCache(store::FriendStore& store, size_t max_pairs = size_t{1} << 20)
      : store_(store), max_pairs_(max_pairs) {}

  // Whether `blocker` blocks `blocked`; store errors as the store gives them.
  void IsBlocked(int64_t blocker, int64_t blocked, core::Callback<bool> done);
  // After a block or unblock of the pair (committed or failed).
  void Invalidate(int64_t blocker, int64_t blocked);

 private:
  struct PairHash {
    size_t operator()(const std::pair<int64_t, int64_t>& p) const {
      return std::hash<int64_t>()(p.first * 1'000'003 ^ p.second);
    }
  };

  store::FriendStore& store_;
  const size_t max_pairs_;
  std::mutex mu_;  // guards known_ and generation_
  std::unordered_map<std::pair<int64_t, int64_t>, bool, PairHash> known_;
  uint64_t generation_ = 0;
};

}  // namespace mpim::service
