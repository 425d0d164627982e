// Cache engines by name: config's cache.engine picks one (core/engines.cc
// holds the names). Header-only: caches are typed by key and value.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cache/local_cache.h"
#include "cache/null_cache.h"
#include "core/config.h"

namespace mpim::cache {

// The engine names MakeCache knows.
inline std::vector<std::string> CacheEngines() { return {"local", "none"}; }

// A cache of config.cache.engine; `options` size the local one.
// kInvalidArgument for an unknown engine.
template <typename K, typename V, typename Hash = std::hash<K>>
core::StatusOr<std::unique_ptr<Cache<K, V>>> MakeCache(const core::Config& config,
                                                       LocalCacheOptions options = {},
                                                       core::Clock& clock = core::SystemClock()) {
  const std::string& engine = config.cache.engine;
  if (engine == "local") return std::make_unique<LocalCache<K, V, Hash>>(options, clock);
  if (engine == "none") return std::make_unique<NullCache<K, V>>();
  return absl::InvalidArgumentError("cache.engine: unknown engine \"" + engine + "\"");
}

}  // namespace mpim::cache
