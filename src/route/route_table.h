// Where users are connected: user id -> the live connections (sockets) of
// that user, each with its login session. The deliverer looks recipients up
// here; presence reads "online" from it.
//
// Thread-safe: every method may be called from any thread at once.
// Implementations: route/memory_route_table.h (one process); a Redis one
// comes with cluster mode.
#pragma once

#include <cstdint>
#include <vector>

namespace mpim::route {

struct Route {
  uint64_t conn_id = 0;    // unique per socket, process-wide
  int64_t session_id = 0;  // the login session (device) behind the socket
};

class RouteTable {
 public:
  virtual ~RouteTable() = default;

  // Adds a connection of `user_id`; returns how many the user has now.
  virtual size_t Add(int64_t user_id, const Route& route) = 0;
  // Removes one; returns how many remain (0: the user went offline).
  virtual size_t Remove(int64_t user_id, uint64_t conn_id) = 0;
  // Appends the user's connections to `out` (which is not cleared).
  virtual void Lookup(int64_t user_id, std::vector<Route>& out) const = 0;
  virtual bool IsOnline(int64_t user_id) const = 0;
};

}  // namespace mpim::route
