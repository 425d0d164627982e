// Opens the bus that config.bus.engine names (core/engines.cc lists them).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "bus/lock.h"
#include "core/config.h"
#include "core/status.h"

namespace mpim::bus {

// "memory", "redis-pubsub" or "redis-streams", with bus.redis_url,
// bus.redis_prefix, bus.redis_timeout_ms and bus.stream_max_len (the Redis
// engines connect in the background: a Redis that is down makes calls fail
// with kUnavailable, not Open). kInvalidArgument for an unknown engine, a
// Redis engine without bus.redis_url, or a bad URL.
core::StatusOr<std::unique_ptr<Bus>> OpenBus(const core::Config& config);

// The cluster-wide lock of config.bus.engine (bus/lock.h): in memory for
// "memory", on Redis at bus.redis_url (bus.redis_prefix, bus.redis_timeout_ms)
// for the Redis engines. Errors as OpenBus.
core::StatusOr<std::unique_ptr<Lock>> OpenLock(const core::Config& config);

// The engine names OpenBus knows.
std::vector<std::string> BusEngines();

}  // namespace mpim::bus
