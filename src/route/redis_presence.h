// Presence on Redis (route.engine = "redis"), beside RedisRouteTable: the
// online/offline transitions are the route table's, decided inside Redis
// and published on {prefix}presence ("1|0 uid ts_ms seq"); this class keeps
// a view of them in memory and tells this node's followers.
//
//   - The view: every online user of the cluster (a sharded set) and the
//     last_seen this node heard of. Loaded from the set {prefix}online (with
//     {prefix}pseq, in one script) each time the subscription is (re)made,
//     then moved by the events: those the snapshot already holds (seq not
//     above its pseq) are skipped, the ones heard while it loads wait for
//     it, a gap in seq loads it again. Get answers from it: no round trip;
//     it lags behind Redis by one publish (well under a millisecond on a
//     LAN), and while Redis cannot be heard it keeps the last state it had.
//   - Followers are this node's connections (route/followers.h). On every
//     transition of a user followed here the listener runs with them, on
//     the Redis client's thread; a reload that finds a followed user's
//     state changed (events missed while the subscriber was down) tells
//     them too. After Redis restarts empty, followers may hear a user go
//     offline and come back as its node registers its routes again.
//   - Connected records nothing; Disconnected records last_seen in the
//     store (best effort), as LocalPresence does; the view's last_seen
//     moves only with offline events, whose one time every node hears, so
//     all nodes answer the same last_seen. The route table's sweep
//     writes last_seen of the users a dead node took offline
//     (route/registry.cc).
//
// Thread-safe. The destructor waits for a listener call in progress; no
// call starts after it.
#pragma once

#include <memory>
#include <string>

#include "redis/client.h"
#include "route/presence.h"
#include "store/user_store.h"

namespace mpim::route {

class RedisPresence final : public Presence {
 public:
  // Subscribes with `redis` (shared with the route table; kept alive here).
  // `prefix`: route.redis_prefix.
  RedisPresence(std::shared_ptr<redis::Client> redis, std::string prefix, LastSeenSink last_seen,
                Listener listener);
  ~RedisPresence() override;

  RedisPresence(const RedisPresence&) = delete;
  RedisPresence& operator=(const RedisPresence&) = delete;

  void Connected(int64_t user, int64_t now_ms) override;
  void Disconnected(int64_t user, int64_t now_ms) override;
  UserPresence Get(int64_t user) const override;
  void Subscribe(ConnId conn, const std::vector<int64_t>& users) override;
  void Unsubscribe(ConnId conn, const std::vector<int64_t>& users) override;

  // Whether the view is loaded from the current subscription (for tests).
  bool ready() const;
  // How many times the view was loaded (for tests).
  uint64_t loads() const;

 private:
  struct View;
  std::shared_ptr<redis::Client> redis_;
  std::shared_ptr<View> view_;  // shared with the client's handlers
};

}  // namespace mpim::route
