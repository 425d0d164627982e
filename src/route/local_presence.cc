#include "route/local_presence.h"

namespace mpim::route {

void LocalPresence::Connected(int64_t user, int64_t now_ms) {
  bool first = false;
  {
    Shard& s = ShardOf(user);
    std::lock_guard lock(s.mu);
    first = ++s.connections[user] == 1;
  }
  if (first) Notify(user, true, now_ms);
}

void LocalPresence::Disconnected(int64_t user, int64_t now_ms) {
  bool last = false;
  {
    Shard& s = ShardOf(user);
    std::lock_guard lock(s.mu);
    s.last_seen[user] = now_ms;
    auto it = s.connections.find(user);
    if (it != s.connections.end() && --it->second == 0) {
      s.connections.erase(it);
      last = true;
    }
  }
  if (last_seen_) last_seen_(user, now_ms);
  if (last) Notify(user, false, now_ms);
}

UserPresence LocalPresence::Get(int64_t user) const {
  Shard& s = ShardOf(user);
  std::lock_guard lock(s.mu);
  UserPresence p;
  p.online = s.connections.count(user) != 0;
  if (auto it = s.last_seen.find(user); it != s.last_seen.end()) p.last_seen = it->second;
  return p;
}

void LocalPresence::Subscribe(ConnId conn, const std::vector<int64_t>& users) {
  followers_.Add(conn, users);
}

void LocalPresence::Unsubscribe(ConnId conn, const std::vector<int64_t>& users) {
  followers_.Remove(conn, users);
}

void LocalPresence::Notify(int64_t user, bool online, int64_t last_seen) {
  std::vector<ConnId> conns = followers_.Of(user);
  if (conns.empty()) return;
  if (listener_) listener_(conns, user, online, last_seen);
}

}  // namespace mpim::route
