// Route table and presence engines by name: config's route.engine picks one
// (core/engines.cc holds the names).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "route/presence.h"
#include "route/route_table.h"
#include "store/user_store.h"

namespace mpim::route {

struct RouteParts {
  std::unique_ptr<RouteTable> routes;
  std::unique_ptr<Presence> presence;
};

// The route table and presence of config.route.engine. `last_seen` keeps
// users' last_seen; `listener` tells followers of presence changes. Engine redis
// (route/redis_route_table.h, route/redis_presence.h): one Redis client for
// both, owned by them (either may be destroyed first); it does not wait
// for Redis to be up. kInvalidArgument for an unknown engine or a bad
// route.redis_url.
core::StatusOr<RouteParts> OpenRoutes(const core::Config& config,
                                      Presence::LastSeenSink last_seen,
                                      Presence::Listener listener);

// last_seen written to `users` (which must outlive the presence).
Presence::LastSeenSink LastSeenInStore(store::UserStore& users);

// The engine names OpenRoutes knows.
std::vector<std::string> RouteEngines();

}  // namespace mpim::route
