#include "bus/registry.h"

#include <algorithm>

#include "bus/memory_bus.h"
#include "bus/memory_lock.h"
#include "bus/redis_bus.h"
#include "bus/redis_lock.h"
#include "redis/client.h"

namespace mpim::bus {

std::vector<std::string> BusEngines() { return {"memory", "redis-pubsub", "redis-streams"}; }

core::StatusOr<std::unique_ptr<Bus>> OpenBus(const core::Config& config) {
  const core::BusConfig& c = config.bus;
  const int64_t max_len = std::max<int64_t>(1, c.stream_max_len);
  if (c.engine == "memory") {
    MemoryBusOptions options;
    options.stream_max_len = max_len;
    return std::unique_ptr<Bus>(std::make_unique<MemoryBus>(options));
  }
  if (c.engine == "redis-pubsub" || c.engine == "redis-streams") {
    if (c.redis_url.empty()) {
      return absl::InvalidArgumentError("bus.engine=" + c.engine + " needs bus.redis_url");
    }
    RedisBusOptions options;
    options.topics = c.engine == "redis-pubsub" ? RedisBusOptions::Topics::kPubSub
                                                : RedisBusOptions::Topics::kStreams;
    options.url = c.redis_url;
    options.prefix = c.redis_prefix;
    options.timeout = std::chrono::milliseconds(std::max<int64_t>(10, c.redis_timeout_ms));
    options.stream_max_len = max_len;
    auto bus = RedisBus::Open(std::move(options));
    if (!bus.ok()) return bus.status();
    return std::unique_ptr<Bus>(std::move(*bus));
  }
  return absl::InvalidArgumentError("unknown bus.engine \"" + c.engine +
                                    "\" (memory, redis-pubsub or redis-streams)");
}

core::StatusOr<std::unique_ptr<Lock>> OpenLock(const core::Config& config) {
  const core::BusConfig& c = config.bus;
  if (c.engine == "memory") return std::unique_ptr<Lock>(std::make_unique<MemoryLock>());
  if (c.engine == "redis-pubsub" || c.engine == "redis-streams") {
    if (c.redis_url.empty()) {
      return absl::InvalidArgumentError("bus.engine=" + c.engine + " needs bus.redis_url");
    }
    redis::ClientOptions options;
    options.url = c.redis_url;
    options.timeout = std::chrono::milliseconds(std::max<int64_t>(10, c.redis_timeout_ms));
    auto lock = RedisLock::Open(options, c.redis_prefix);
    if (!lock.ok()) return lock.status();
    return std::unique_ptr<Lock>(std::move(*lock));
  }
  return absl::InvalidArgumentError("unknown bus.engine \"" + c.engine +
                                    "\" (memory, redis-pubsub or redis-streams)");
}

}  // namespace mpim::bus
