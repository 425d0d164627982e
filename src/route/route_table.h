// Where users are connected: user id -> the live connections of that user,
// each with its login session and the node (gateway) that holds it. The
// deliverer looks recipients up here; presence reads "online" from it.
//
// Contract for every implementation (memory now; Redis in cluster mode):
//   - Every call may take a network round trip. Results come through the
//     callback, which runs exactly once, on any thread: inline, before the
//     call returns (the memory table always does), or later (a remote one).
//     Callers never wait for it synchronously on an io thread.
//   - Failure: kUnavailable when the table cannot be reached or did not
//     answer in time; nothing else. A failed Add leaves no route behind that
//     the caller must remove; a failed Remove may leave the route, which a
//     remote table then expires with its node's heartbeat (a route of a node
//     that stopped refreshing disappears within a bounded time).
//   - Counts (Add, Remove) are the user's connections across all nodes
//     right after the change, as the table saw them: 1 after Add means the
//     user just came online, 0 after Remove that the last one went.
//   - Lookup is a batch: one call (one round trip) for any number of users.
//
// Thread-safe: every method may be called from any thread at once.
//
// Adding an implementation: implement this interface in route/<name>_*.{h,cc},
// register it by name in route/registry.cc and the name in core/engines.cc,
// and instantiate the contract suite (tests/route/route_table_contract.h)
// for it.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "core/callback.h"
#include "route/conn_id.h"

namespace mpim::route {

struct Route {
  int64_t user_id = 0;
  ConnId conn;             // conn.node is the node that holds the socket
  int64_t session_id = 0;  // the login session (device) behind the socket
};

class RouteTable {
 public:
  virtual ~RouteTable() = default;

  // Adds a connection; answers how many the user has now.
  virtual void Add(const Route& route, core::Callback<size_t> done) = 0;
  // Removes one (unknown: no change); answers how many remain.
  virtual void Remove(int64_t user_id, ConnId conn, core::Callback<size_t> done) = 0;
  // The connections of every user in `users` (any order; users without
  // connections contribute nothing).
  virtual void Lookup(const std::vector<int64_t>& users,
                      core::Callback<std::vector<Route>> done) = 0;
  // The routes of `users` that this table added (this process's own
  // connections), from memory: no round trip, never fails. What a deliverer
  // still reaches when Lookup failed (a remote table that cannot be
  // reached must not stop delivery within the node).
  virtual std::vector<Route> LocalRoutes(const std::vector<int64_t>& users) = 0;
  // How many live connections the table holds, across all nodes (the admin
  // API's `sessions`). One round trip.
  virtual void CountConnections(core::Callback<int64_t> done) = 0;
  // `fn` runs (on a thread of the table's) each time this node's routes
  // were registered again because they may have been lost (a shared table
  // that restarted empty, a reconnect): deliveries looked up in between may
  // have missed this node's sessions. Set once, before use; a table that
  // cannot lose routes never runs it.
  virtual void OnRegisteredAgain(std::function<void()> fn) { (void)fn; }
};

}  // namespace mpim::route
