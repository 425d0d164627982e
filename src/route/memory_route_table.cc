#include "route/memory_route_table.h"

#include <algorithm>

namespace mpim::route {

void MemoryRouteTable::Add(const Route& route, core::Callback<size_t> done) {
  size_t now = 0;
  {
    Shard& s = ShardOf(route.user_id);
    std::lock_guard lock(s.mu);
    auto& list = s.routes[route.user_id];
    list.push_back(route);
    now = list.size();
  }
  std::move(done)(now);
}

void MemoryRouteTable::Remove(int64_t user_id, ConnId conn, core::Callback<size_t> done) {
  size_t left = 0;
  {
    Shard& s = ShardOf(user_id);
    std::lock_guard lock(s.mu);
    if (auto it = s.routes.find(user_id); it != s.routes.end()) {
      std::erase_if(it->second, [conn](const Route& r) { return r.conn == conn; });
      left = it->second.size();
      if (left == 0) s.routes.erase(it);
    }
  }
  std::move(done)(left);
}

void MemoryRouteTable::Lookup(const std::vector<int64_t>& users,
                              core::Callback<std::vector<Route>> done) {
  std::move(done)(LocalRoutes(users));
}

std::vector<Route> MemoryRouteTable::LocalRoutes(const std::vector<int64_t>& users) {
  std::vector<Route> out;
  for (int64_t user : users) {
    Shard& s = ShardOf(user);
    std::lock_guard lock(s.mu);
    auto it = s.routes.find(user);
    if (it != s.routes.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

void MemoryRouteTable::CountConnections(core::Callback<int64_t> done) {
  int64_t n = 0;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [user, routes] : s.routes) n += static_cast<int64_t>(routes.size());
  }
  std::move(done)(n);
}

}  // namespace mpim::route
