#include "route/registry.h"

#include <future>
#include <thread>

#include "core/logging.h"
#include "redis/client.h"
#include "route/local_presence.h"
#include "route/memory_route_table.h"
#include "route/redis_presence.h"
#include "route/redis_route_table.h"

namespace mpim::route {

namespace {

const core::Logger& Log() {
  static const core::Logger log("route");
  return log;
}

// One command, waited for (start-up only).
core::StatusOr<redis::Reply> Call(redis::Client& redis, std::vector<std::string> args,
                                  std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<core::StatusOr<redis::Reply>>>();
  auto reply = promise->get_future();
  redis.Command(std::move(args),
                [promise](core::StatusOr<redis::Reply> r) { promise->set_value(std::move(r)); });
  if (reply.wait_for(timeout + std::chrono::milliseconds(500)) != std::future_status::ready) {
    return absl::UnavailableError("redis did not answer");
  }
  return reply.get();
}

// Node ids come from the configuration (discovery static or dns): refuses
// an id another live process holds. node:{id} (route/redis_route_table.h)
// holds the incarnation of the process that owns the id, renewed every
// third of route.node_ttl_ms. A key found at start is either a predecessor
// killed moments ago (this process takes over, as a restart does) or a live
// twin: the two are told apart by waiting one renewal. Without Redis the
// check is skipped (the route table waits for Redis anyway).
core::Status CheckNodeIdFree(redis::Client& redis, const core::Config& config) {
  const std::string key =
      config.route.redis_prefix + "node:" + std::to_string(config.server.node_id);
  const auto timeout = std::chrono::milliseconds(config.route.redis_timeout_ms);
  auto first = Call(redis, {"GET", key}, timeout);
  auto first_ttl = Call(redis, {"PTTL", key}, timeout);
  if (!first.ok() || !first_ttl.ok()) {
    Log().Warn("node id not checked: redis does not answer",
               {{"error", std::string((first.ok() ? first_ttl : first).status().message())}});
    return absl::OkStatus();
  }
  if (first->type != redis::Reply::Type::kString) return absl::OkStatus();  // free
  // A live holder renews every third of the TTL; one that has not for two
  // thirds is dead (the route table's own rule gives it the whole TTL, but
  // by then its key is gone anyway). Polled, so that a renewal, or the key
  // expiring, ends the wait at once.
  const auto until = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(config.route.node_ttl_ms * 2 / 3 + 200);
  int64_t last_ttl = first_ttl->integer;
  bool renewed = false;
  while (!renewed && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto now = Call(redis, {"GET", key}, timeout);
    auto now_ttl = Call(redis, {"PTTL", key}, timeout);
    if (!now.ok() || !now_ttl.ok()) return absl::OkStatus();
    if (now->type != redis::Reply::Type::kString) return absl::OkStatus();  // expired: free
    renewed = now->str != first->str || now_ttl->integer > last_ttl + 20;
    last_ttl = now_ttl->integer;
  }
  if (renewed) {
    return absl::AlreadyExistsError("server.node_id " + std::to_string(config.server.node_id) +
                                    " is held by another live node (its Redis key " + key +
                                    " is being renewed): every node of a cluster needs its own id");
  }
  return absl::OkStatus();
}

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
  if (config.discovery.engine != "etcd") {  // etcd hands out unique ids
    if (core::Status s = CheckNodeIdFree(*shared, config); !s.ok()) return s;
  }
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
  if (config.route.engine == "redis")
    return OpenRedis(config, std::move(last_seen), std::move(listener));
  return absl::InvalidArgumentError("route.engine: unknown engine \"" + config.route.engine + "\"");
}

std::vector<std::string> RouteEngines() { return {"memory", "redis"}; }

}  // namespace mpim::route
