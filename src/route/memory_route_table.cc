#include "route/memory_route_table.h"

#include <algorithm>

namespace mpim::route {

size_t MemoryRouteTable::Add(int64_t user_id, const Route& route) {
  Shard& s = ShardOf(user_id);
  std::lock_guard lock(s.mu);
  auto& list = s.routes[user_id];
  list.push_back(route);
  return list.size();
}

size_t MemoryRouteTable::Remove(int64_t user_id, uint64_t conn_id) {
  Shard& s = ShardOf(user_id);
  std::lock_guard lock(s.mu);
  auto it = s.routes.find(user_id);
  if (it == s.routes.end()) return 0;
  std::erase_if(it->second, [conn_id](const Route& r) { return r.conn_id == conn_id; });
  size_t left = it->second.size();
  if (left == 0) s.routes.erase(it);
  return left;
}

void MemoryRouteTable::Lookup(int64_t user_id, std::vector<Route>& out) const {
  Shard& s = ShardOf(user_id);
  std::lock_guard lock(s.mu);
  auto it = s.routes.find(user_id);
  if (it != s.routes.end()) out.insert(out.end(), it->second.begin(), it->second.end());
}

bool MemoryRouteTable::IsOnline(int64_t user_id) const {
  Shard& s = ShardOf(user_id);
  std::lock_guard lock(s.mu);
  return s.routes.count(user_id) != 0;
}

}  // namespace mpim::route
