// The caches' counters in a metrics registry (GET /metrics), one series per
// cache name and tier:
//   mpim_cache_hits_total{cache,tier}    answered from that tier
//   mpim_cache_misses_total{cache,tier}  not in that tier (the next tier or
//                                        the store was asked)
//   mpim_cache_errors_total{cache}       Redis calls that failed or answered
//                                        bytes that did not decode (the
//                                        store answered instead)
// tier is "local" (a process's memory) or "redis" (the shared tier).
#pragma once

#include <string_view>

#include "core/metrics.h"

namespace mpim::cache {

struct TierCounters {
  core::Counter* hits = nullptr;
  core::Counter* misses = nullptr;

  void Hit() const {
    if (hits) hits->Inc();
  }
  void Miss() const {
    if (misses) misses->Inc();
  }
};

// The counters of `cache` in `tier`, registered on first use.
TierCounters CountersOf(core::MetricsRegistry& registry, std::string_view cache,
                        std::string_view tier);
core::Counter& ErrorsOf(core::MetricsRegistry& registry, std::string_view cache);

}  // namespace mpim::cache
