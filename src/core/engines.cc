#include "core/engines.h"

namespace mpim::core {

const std::vector<EngineName>& Engines() {
  static const std::vector<EngineName> engines = {
      {"store.engine", "sqlite", "embedded SQLite file in server.data_dir"},
      {"store.engine", "mysql", "MariaDB/MySQL server at store.mysql_url"},
      {"cache.engine", "local", "this process's memory"},
      {"cache.engine", "none", "no cache: every read goes to the store"},
      {"cache.engine", "redis", "Redis at cache.redis_url, shared by the nodes"},
      {"route.engine", "memory", "this process's memory (one node)"},
      {"route.engine", "redis", "Redis at route.redis_url, shared by the nodes"},
      {"bus.engine", "memory", "direct calls within this process (one node)"},
      {"bus.engine", "redis-pubsub",
       "Redis Pub/Sub at bus.redis_url: at most once, lowest latency"},
      {"bus.engine", "redis-streams",
       "Redis Streams at bus.redis_url: a node's inbox survives its reconnects"},
      {"discovery.engine", "static", "the nodes listed in discovery.static_nodes"},
      {"discovery.engine", "etcd",
       "etcd v3 at discovery.etcd_endpoints: nodes register under leases and watch"},
      {"discovery.engine", "dns",
       "DNS SRV records (discovery.dns_srv), read again every discovery.dns_refresh_ms"},
      // The RPC client's balancers (rpc/lb/registry.h), for calls without
      // and with a key (a conversation id).
      {"rpc.balancer", "least_loaded", "the fewer calls in flight of two endpoints at random"},
      {"rpc.balancer", "round_robin", "each endpoint in turn"},
      {"rpc.balancer", "random", "uniform"},
      {"rpc.balancer", "weighted_random", "in proportion to the endpoints' weights"},
      {"rpc.balancer", "ring_hash", "consistent hash, 150 points per endpoint"},
      {"rpc.balancer", "maglev", "Maglev consistent hash, 65,537 slots"},
      {"rpc.balancer", "bounded_load",
       "ring_hash, passing a key on from an endpoint at 1.25x the mean load"},
      {"rpc.key_balancer", "ring_hash", "consistent hash, 150 points per endpoint"},
      {"rpc.key_balancer", "maglev", "Maglev consistent hash, 65,537 slots"},
      {"rpc.key_balancer", "bounded_load",
       "ring_hash, passing a key on from an endpoint at 1.25x the mean load"},
  };
  return engines;
}

std::vector<std::string_view> EngineNames(std::string_view part) {
  std::vector<std::string_view> names;
  for (const EngineName& e : Engines()) {
    if (e.part == part) names.push_back(e.name);
  }
  return names;
}

std::string EngineHelp(std::string_view part) {
  std::string out;
  for (const EngineName& e : Engines()) {
    if (e.part != part) continue;
    if (!out.empty()) out += ", ";
    out += "`" + std::string(e.name) + "` (" + std::string(e.help) + ")";
  }
  return out;
}

}  // namespace mpim::core
