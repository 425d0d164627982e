#include "cache/metrics.h"

namespace mpim::cache {

TierCounters CountersOf(core::MetricsRegistry& registry, std::string_view cache,
                        std::string_view tier) {
  auto& hits = registry.Counter("mpim_cache_hits_total", "Cache reads answered from a tier.",
                                {"cache", "tier"});
  auto& misses = registry.Counter("mpim_cache_misses_total",
                                  "Cache reads a tier could not answer (the next tier or the "
                                  "store was asked).",
                                  {"cache", "tier"});
  return {&hits.With({cache, tier}), &misses.With({cache, tier})};
}

core::Counter& ErrorsOf(core::MetricsRegistry& registry, std::string_view cache) {
  return registry
      .Counter("mpim_cache_errors_total",
               "Redis calls of a cache that failed or answered bytes that did not decode (the "
               "store answered instead).",
               {"cache"})
      .With({cache});
}

}  // namespace mpim::cache
