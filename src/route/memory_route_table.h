// RouteTable in one process's memory: a map sharded 64 ways, one short
// mutex per shard. Every callback runs inline, before the call returns;
// nothing fails.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "route/route_table.h"

namespace mpim::route {

class MemoryRouteTable final : public RouteTable {
 public:
  void Add(const Route& route, core::Callback<size_t> done) override;
  void Remove(int64_t user_id, ConnId conn, core::Callback<size_t> done) override;
  void Lookup(const std::vector<int64_t>& users, core::Callback<std::vector<Route>> done) override;
  std::vector<Route> LocalRoutes(const std::vector<int64_t>& users) override;
  void CountConnections(core::Callback<int64_t> done) override;

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    std::mutex mu;  // guards routes
    std::unordered_map<int64_t, std::vector<Route>> routes;
  };
  Shard& ShardOf(int64_t user_id) { return shards_[static_cast<uint64_t>(user_id) % kShards]; }
  std::array<Shard, kShards> shards_;
};

}  // namespace mpim::route
