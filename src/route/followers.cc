#include "route/followers.h"

namespace mpim::route {

void Followers::Add(ConnId conn, const std::vector<int64_t>& users) {
  for (int64_t u : users) {
    Shard& s = ShardOf(u);
    std::lock_guard lock(s.mu);
    s.followers[u].insert(conn);
  }
}

void Followers::Remove(ConnId conn, const std::vector<int64_t>& users) {
  for (int64_t u : users) {
    Shard& s = ShardOf(u);
    std::lock_guard lock(s.mu);
    auto it = s.followers.find(u);
    if (it == s.followers.end()) continue;
    it->second.erase(conn);
    if (it->second.empty()) s.followers.erase(it);
  }
}

std::vector<ConnId> Followers::Of(int64_t user) const {
  Shard& s = ShardOf(user);
  std::lock_guard lock(s.mu);
  auto it = s.followers.find(user);
  if (it == s.followers.end()) return {};
  return {it->second.begin(), it->second.end()};
}

std::vector<int64_t> Followers::Users() const {
  std::vector<int64_t> out;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [user, conns] : s.followers) out.push_back(user);
  }
  return out;
}

}  // namespace mpim::route
