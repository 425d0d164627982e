#include "route/registry.h"

#include "route/local_presence.h"
#include "route/memory_route_table.h"

namespace mpim::route {

core::StatusOr<RouteParts> OpenRoutes(const core::Config& config, store::UserStore& users,
                                      Presence::Listener listener) {
  if (config.route.engine == "memory") {
    RouteParts parts;
    parts.routes = std::make_unique<MemoryRouteTable>();
    parts.presence = std::make_unique<LocalPresence>(users, std::move(listener));
    return parts;
  }
  return absl::InvalidArgumentError("route.engine: unknown engine \"" + config.route.engine +
                                    "\"");
}

std::vector<std::string> RouteEngines() { return {"memory"}; }

}  // namespace mpim::route
