// RouteTable on Redis 7, shared by every node of a cluster (route.engine =
// "redis"; docs/routes.md has the design, the keys and the failure costs).
//
// Keys (all under options.prefix):
//   r:{uid}            hash  "node/local" -> "session owner incarnation"
//   rn:{owner}:{inc}   set   "uid node/local" of every route an incarnation added
//   node:{owner}       string the owner's live incarnation, PX node_ttl
//   nodes              set   "owner:inc" of every incarnation with routes
//   online             set   users with at least one route
//   pseq               integer, one more for every presence event
// and the channel {prefix}presence: "1|0 uid ts_ms seq" on every online /
// offline transition (route/redis_presence.h listens).
//
// The owner of a route is the node that added it (this table's
// options.node; in production that is also route.conn.node). Every change
// is one Lua script (EVAL), so a transition is decided once, inside Redis,
// and published from there: every node sees every event once, in one
// order. Lookup is one pipelined burst (MGET of the owners' node keys, one
// HGETALL per user: one round trip for any number of users) and answers
// only the routes whose owner's node:{owner} holds their incarnation: a
// node that died (its key expired) or restarted (its key holds its new
// incarnation) is invisible at once, before the sweep deletes its routes.
//
// Heartbeat and sweep (a thread of the table's own, never a caller's):
// node:{owner} is refreshed every node_ttl / 3; every node_ttl / 5 the
// table sweeps the routes of dead incarnations, 500 at a time (a script
// that re-checks the incarnation is still dead), publishing offline for the
// users that had nothing else; options.on_swept hears those users, so that
// last_seen is written. A node killed with -9 is swept within about
// 1.2 x node_ttl.
//
// The table keeps this node's routes in memory (the mirror) and adds them
// all again (idempotent; pipelined, 500 per script) whenever its node key
// was missing or held another incarnation (Redis restarted empty, or this
// node was declared dead while Redis did not hear it), and after every
// reconnect of the client (a failover may have lost writes).
//
// Failures: kUnavailable when Redis does not answer in time (or answers an
// error); never an ok that did not happen. A failed Add leaves nothing the
// caller must remove: the route leaves the mirror and, unless the client
// says the command was never sent, the table removes it itself (retried by
// the heartbeat until Redis answers), in case the script ran but its reply
// was lost. A failed Remove is retried the same way: a route of a live node
// is never left behind for good (the route table contract's "expires with
// its node's heartbeat" covers only a dead node).
//
// Threads: every method from any thread, io threads included; none blocks
// (a Command is posted to the client's thread). Callbacks run on the Redis
// client's thread. The destructor stops the heartbeat and leaves the routes
// in Redis (as kill -9 would: the sweep removes them once node:{owner}
// expires); callers Remove their routes first for a clean stop. It waits
// for the heartbeat's command in flight (at most the client's timeout).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "redis/client.h"
#include "route/route_table.h"

namespace mpim::route {

struct RedisRouteOptions {
  uint32_t node = 0;  // server.node_id: the owner of the routes this table adds
  std::string prefix = "mpim:";
  std::chrono::milliseconds node_ttl{10000};
  // How often the table sweeps dead incarnations; 0: node_ttl / 5 (tests
  // set it long to see what Lookup does before any sweep).
  std::chrono::milliseconds sweep_every{0};
  // Users the sweep of a dead node took offline, and when (ms). On the
  // table's heartbeat thread; the registry writes their last_seen.
  using SweptHandler = std::function<void(const std::vector<int64_t>& users, int64_t ts_ms)>;
  SweptHandler on_swept;
};

class RedisRouteTable final : public RouteTable {
 public:
  // Shares `redis` (presence uses the same client); the table keeps it
  // alive. Starts the heartbeat; does not wait for Redis.
  RedisRouteTable(std::shared_ptr<redis::Client> redis, RedisRouteOptions options);
  ~RedisRouteTable() override;

  RedisRouteTable(const RedisRouteTable&) = delete;
  RedisRouteTable& operator=(const RedisRouteTable&) = delete;

  void Add(const Route& route, core::Callback<size_t> done) override;
  void Remove(int64_t user_id, ConnId conn, core::Callback<size_t> done) override;
  void Lookup(const std::vector<int64_t>& users, core::Callback<std::vector<Route>> done) override;
  // From the mirror (indexed by user).
  std::vector<Route> LocalRoutes(const std::vector<int64_t>& users) override;
  void CountConnections(core::Callback<int64_t> done) override;
  // After each registration of the mirror but the first.
  void OnRegisteredAgain(std::function<void()> fn) override;

  // This process's incarnation (random, chosen at construction).
  uint64_t incarnation() const;
  // How many times the mirror was registered again (for tests).
  uint64_t registrations() const;

 private:
  struct Core;
  struct LookupBurst;
  void Run();  // the heartbeat thread

  std::shared_ptr<redis::Client> redis_;  // outlives core_'s uses: joined below first
  std::shared_ptr<Core> core_;            // shared with the callbacks in flight
  std::thread thread_;
};

}  // namespace mpim::route
