// Presence: who is online (from the route table), when they were last seen,
// and who follows whom (presence.sub). When a user's first connection opens
// or last one closes, the followers' connections get a presence event.
//
// Thread-safe. Subscriptions are per connection and end with it.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "route/route_table.h"
#include "service/deliverer.h"
#include "service/user_service.h"
#include "store/store.h"

namespace mpim::service {

class PresenceService {
 public:
  PresenceService(route::RouteTable& routes, store::Store& store, Deliverer& deliverer)
      : routes_(routes), store_(store), deliverer_(deliverer) {}

  // A connection went live (after it was added to the route table with
  // `routes_now` connections for the user) or ended (`routes_left` remain).
  void Connected(int64_t user_id, size_t routes_now, int64_t now_ms);
  void Disconnected(int64_t user_id, size_t routes_left, int64_t now_ms);

  bool IsOnline(int64_t user_id) const { return routes_.IsOnline(user_id); }
  // last_seen of users seen since this process started (0 if unknown: the
  // store's value then applies).
  int64_t LastSeen(int64_t user_id) const;

  // Sets online and the freshest last_seen on a profile.
  void Decorate(UserProfile& user) const;

  void Subscribe(uint64_t conn_id, const std::vector<int64_t>& users);
  void Unsubscribe(uint64_t conn_id, const std::vector<int64_t>& users);
  // Drops every subscription of a closed connection.
  void DropConnection(uint64_t conn_id, const std::vector<int64_t>& users);

 private:
  void Notify(int64_t user_id, bool online, int64_t last_seen);

  static constexpr size_t kShards = 32;
  struct Shard {
    mutable std::mutex mu;  // guards followers and last_seen
    std::unordered_map<int64_t, std::unordered_set<uint64_t>> followers;  // user -> conns
    std::unordered_map<int64_t, int64_t> last_seen;
  };
  Shard& ShardOf(int64_t user) const { return shards_[static_cast<uint64_t>(user) % kShards]; }

  route::RouteTable& routes_;
  store::Store& store_;
  Deliverer& deliverer_;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace mpim::service
