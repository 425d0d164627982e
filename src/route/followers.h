// Who follows whom on this node (presence.sub): user -> the connections
// subscribed to that user's presence, sharded 32 ways. LocalPresence and
// RedisPresence keep their followers here (followers are per node in both:
// a connection only ever follows from the node that holds it).
//
// Thread-safe: every method may be called from any thread at once.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "route/conn_id.h"

namespace mpim::route {

class Followers {
 public:
  void Add(ConnId conn, const std::vector<int64_t>& users);
  void Remove(ConnId conn, const std::vector<int64_t>& users);
  // The connections following `user` (empty: nobody here).
  std::vector<ConnId> Of(int64_t user) const;
  // Every user someone here follows.
  std::vector<int64_t> Users() const;

 private:
  static constexpr size_t kShards = 32;
  struct Shard {
    mutable std::mutex mu;  // guards followers
    std::unordered_map<int64_t, std::unordered_set<ConnId, ConnIdHash>> followers;
  };
  Shard& ShardOf(int64_t user) const { return shards_[static_cast<uint64_t>(user) % kShards]; }

  mutable std::array<Shard, kShards> shards_;
};

}  // namespace mpim::route
