// Presence: who is online, when each user was last seen, and who follows
// whom (presence.sub). When a user's first connection anywhere opens, or the
// last one anywhere closes, the followers' connections are told through the
// listener given at construction.
//
// Contract for every implementation (in-process now; Redis in cluster mode):
//   - Connected, Disconnected, Subscribe and Unsubscribe never block and
//     never fail to the caller: a remote implementation sends them on and
//     retries or drops (presence is best effort; it never holds anything a
//     client was promised). Call them from any thread, io threads included.
//   - Get answers from this node's memory, without a round trip: a remote
//     implementation keeps a local view of the users it is asked about and
//     refreshes it from the shared state, so it may lag behind another
//     node's change by the propagation delay it documents.
//   - The listener runs on any thread; it must not call back into Presence.
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "route/conn_id.h"

namespace mpim::route {

struct UserPresence {
  bool online = false;
  int64_t last_seen = 0;  // ms; 0: not seen by this view (the store's value applies)
};

class Presence {
 public:
  // followers: the connections subscribed to `user`.
  using Listener = std::function<void(const std::vector<ConnId>& followers, int64_t user,
                                      bool online, int64_t last_seen)>;
  // Where a user's last_seen is kept when they go offline (best effort, any
  // thread, never blocks): the store's users, directly or through a logic
  // node (route/registry.h: LastSeenInStore).
  using LastSeenSink = std::function<void(int64_t user, int64_t ts_ms)>;

  virtual ~Presence() = default;

  // A connection of `user` went live / ended, at wall time `now_ms`.
  virtual void Connected(int64_t user, int64_t now_ms) = 0;
  virtual void Disconnected(int64_t user, int64_t now_ms) = 0;

  virtual UserPresence Get(int64_t user) const = 0;

  // Subscriptions are per connection; DropConnection ends all of one
  // connection's (`users`: those it had).
  virtual void Subscribe(ConnId conn, const std::vector<int64_t>& users) = 0;
  virtual void Unsubscribe(ConnId conn, const std::vector<int64_t>& users) = 0;
  void DropConnection(ConnId conn, const std::vector<int64_t>& users) { Unsubscribe(conn, users); }
};

}  // namespace mpim::route
