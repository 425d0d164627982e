#include "route/registry.h"

#include "redis/client.h"
#include "route/local_presence.h"
#include "route/memory_route_table.h"
#include "route/redis_presence.h"
#include "route/redis_route_table.h"

namespace mpim::route {

namespace {

// Engine redis: one client (its own thread) for the table and presence,
// which both keep it alive. Start-up does not wait for Redis.
core::StatusOr<RouteParts> OpenRedis(const core::Config& config, Presence::LastSeenSink last_seen,
                                     Presence::Listener listener) {
  redis::ClientOptions options;
  options.url = config.route.redis_url;
  options.timeout = std::chrono::milliseconds(config.route.redis_timeout_ms);
  auto client = redis::Client::Start(options);
  if (!client.ok()) {
    return absl::InvalidArgumentError("route.redis_url: " + std::string(client.status().message()));
  }
  std::shared_ptr<redis::Client> shared = std::move(*client);
  RedisRouteOptions table;
  table.node = static_cast<uint32_t>(config.server.node_id);
  table.prefix = config.route.redis_prefix;
  table.node_ttl = std::chrono::milliseconds(config.route.node_ttl_ms);
  // The users a dead node's sweep took offline: their last_seen (best effort).
  table.on_swept = [last_seen](const std::vector<int64_t>& offline, int64_t ts_ms) {
    if (!last_seen) return;
    for (int64_t user : offline) last_seen(user, ts_ms);
  };
  RouteParts parts;
  parts.routes = std::make_unique<RedisRouteTable>(shared, std::move(table));
  parts.presence = std::make_unique<RedisPresence>(shared, config.route.redis_prefix, last_seen,
                                                   std::move(listener));
  return parts;
}

}  // namespace

Presence::LastSeenSink LastSeenInStore(store::UserStore& users) {
  return [&users](int64_t user, int64_t ts_ms) {
    users.TouchLastSeen(user, ts_ms, [](core::Status) {});
  };
}

core::StatusOr<RouteParts> OpenRoutes(const core::Config& config, Presence::LastSeenSink last_seen,
                                      Presence::Listener listener) {
  if (config.route.engine == "memory") {
    RouteParts parts;
    parts.routes = std::make_unique<MemoryRouteTable>();
    parts.presence = std::make_unique<LocalPresence>(std::move(last_seen), std::move(listener));
    return parts;
  }
  if (config.route.engine == "redis") return OpenRedis(config, std::move(last_seen), std::move(listener));
  return absl::InvalidArgumentError("route.engine: unknown engine \"" + config.route.engine +
                                    "\"");
}

std::vector<std::string> RouteEngines() { return {"memory", "redis"}; }

}  // namespace mpim::route
