#include "service/presence_service.h"

#include <algorithm>

namespace mpim::service {

void PresenceService::Connected(int64_t user_id, size_t routes_now, int64_t now_ms) {
  if (routes_now != 1) return;  // already online
  Notify(user_id, true, now_ms);
}

void PresenceService::Disconnected(int64_t user_id, size_t routes_left, int64_t now_ms) {
  {
    Shard& s = ShardOf(user_id);
    std::lock_guard lock(s.mu);
    s.last_seen[user_id] = now_ms;
  }
  store_.users().TouchLastSeen(user_id, now_ms, [](core::Status) {});  // best effort
  if (routes_left != 0) return;
  Notify(user_id, false, now_ms);
}

int64_t PresenceService::LastSeen(int64_t user_id) const {
  Shard& s = ShardOf(user_id);
  std::lock_guard lock(s.mu);
  auto it = s.last_seen.find(user_id);
  return it == s.last_seen.end() ? 0 : it->second;
}

void PresenceService::Decorate(UserProfile& user) const {
  user.online = IsOnline(user.user_id);
  user.last_seen = std::max(user.last_seen, LastSeen(user.user_id));
}

void PresenceService::Subscribe(uint64_t conn_id, const std::vector<int64_t>& users) {
  for (int64_t u : users) {
    Shard& s = ShardOf(u);
    std::lock_guard lock(s.mu);
    s.followers[u].insert(conn_id);
  }
}

void PresenceService::Unsubscribe(uint64_t conn_id, const std::vector<int64_t>& users) {
  for (int64_t u : users) {
    Shard& s = ShardOf(u);
    std::lock_guard lock(s.mu);
    auto it = s.followers.find(u);
    if (it == s.followers.end()) continue;
    it->second.erase(conn_id);
    if (it->second.empty()) s.followers.erase(it);
  }
}

void PresenceService::DropConnection(uint64_t conn_id, const std::vector<int64_t>& users) {
  Unsubscribe(conn_id, users);
}

void PresenceService::Notify(int64_t user_id, bool online, int64_t last_seen) {
  std::vector<uint64_t> conns;
  {
    Shard& s = ShardOf(user_id);
    std::lock_guard lock(s.mu);
    auto it = s.followers.find(user_id);
    if (it == s.followers.end()) return;
    conns.assign(it->second.begin(), it->second.end());
  }
  deliverer_.Presence(conns, user_id, online, last_seen);
}

}  // namespace mpim::service
