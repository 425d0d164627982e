// Cache engines by name: config's cache.engine picks one (core/engines.cc
// holds the names). Header-only: caches are typed by key and value.
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cache/local_cache.h"
#include "cache/null_cache.h"
#include "cache/redis_cache.h"
#include "core/config.h"
#include "redis/client.h"

namespace mpim::cache {

// The engine names MakeCache knows.
inline std::vector<std::string> CacheEngines() { return {"local", "none", "redis"}; }

// What a cache needs besides the config.
struct CacheContext {
  std::string name;                // "blocks", "members": metrics label and Redis key part
  LocalCacheOptions local;         // bounds of the in-memory tier (its name: `name`)
  redis::Client* redis = nullptr;  // engine redis: the process's client (MakeRedisClient)
  core::Clock* clock = &core::SystemClock();
  // Reads that decide who may send or who receives (blocks, memberships):
  // a Get after an invalidation's `done`, on any node, reads afresh
  // (cache/cache.h). Engine redis: no in-memory tier.
  bool strict = false;
};

// The client engine redis shares between the caches of a process (its own
// thread), connecting to config.cache.redis_url; null for other engines.
// kInvalidArgument for a bad URL (it does not wait for Redis: the caches
// read the store until it answers).
inline core::StatusOr<std::unique_ptr<redis::Client>> MakeRedisClient(const core::Config& config) {
  if (config.cache.engine != "redis") return std::unique_ptr<redis::Client>();
  redis::ClientOptions options;
  options.url = config.cache.redis_url;
  options.timeout = std::chrono::milliseconds(config.cache.redis_timeout_ms);
  auto client = redis::Client::Start(options);
  if (!client.ok())
    return absl::InvalidArgumentError("cache.redis_url: " + std::string(client.status().message()));
  return client;
}

// A cache of config.cache.engine. kInvalidArgument for an unknown engine;
// kFailedPrecondition for engine redis without `context.redis`, or for key
// or value types without a codec (cache/codec.h).
template <typename K, typename V, typename Hash = std::hash<K>>
core::StatusOr<std::unique_ptr<Cache<K, V>>> MakeCache(const core::Config& config,
                                                       CacheContext context = {}) {
  const std::string& engine = config.cache.engine;
  LocalCacheOptions local = context.local;
  local.name = context.name;
  if (engine == "local") {
    local.null_ttl_ms = config.cache.null_ttl_ms;
    return std::make_unique<LocalCache<K, V, Hash>>(local, *context.clock);
  }
  if (engine == "none") return std::make_unique<NullCache<K, V>>();
  if (engine == "redis") {
    if (context.redis == nullptr) {
      return absl::FailedPreconditionError("cache.engine redis: no Redis client");
    }
    if constexpr (Encodable<K> && Encodable<V>) {
      RedisCacheOptions options{.name = context.name.empty() ? "cache" : context.name,
                                .prefix = config.cache.redis_prefix,
                                .ttl_ms = config.cache.ttl_ms,
                                .local_ttl_ms = config.cache.local_ttl_ms,
                                .memory_tier = !context.strict,
                                .null_ttl_ms = config.cache.null_ttl_ms,
                                .local_max_entries = local.max_entries,
                                .metrics = local.metrics};
      return std::make_unique<RedisCache<K, V, Hash>>(options, *context.redis, *context.clock);
    } else {
      return absl::FailedPreconditionError("cache.engine redis: cache " + context.name +
                                           " has no codec for its keys or values");
    }
  }
  return absl::InvalidArgumentError("cache.engine: unknown engine \"" + engine + "\"");
}

}  // namespace mpim::cache
