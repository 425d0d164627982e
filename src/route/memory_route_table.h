// RouteTable in memory: a map sharded 64 ways, one short mutex per shard.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "route/route_table.h"

namespace mpim::route {

class MemoryRouteTable final : public RouteTable {
 public:
  size_t Add(int64_t user_id, const Route& route) override;
  size_t Remove(int64_t user_id, uint64_t conn_id) override;
  void Lookup(int64_t user_id, std::vector<Route>& out) const override;
  bool IsOnline(int64_t user_id) const override;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;  // guards routes
    std::unordered_map<int64_t, std::vector<Route>> routes;
  };
  Shard& ShardOf(int64_t user_id) const {
    return shards_[static_cast<uint64_t>(user_id) % kShards];
  }
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace mpim::route
