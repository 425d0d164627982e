// bus::Lock on Redis (bus.redis_url): the lease is the key
// <prefix>lock:<name> holding its token, with a PX expiry; the tokens of a
// name come from <prefix>lock-fence:<name>. Acquire, Renew and Release are
// each one Lua script (atomic), so only the holder of the current token can
// extend or release it.
//
// Tokens increase even across a Redis that lost its data: a new token is
// the larger of the last one + 1 and Redis's clock in microseconds (TIME),
// so a restarted, empty Redis still hands out tokens above those of the
// leases it forgot (as long as its clock does not run back).
#pragma once

#include <memory>

#include "bus/lock.h"
#include "core/status.h"

namespace mpim::redis {
class Client;
struct ClientOptions;
}  // namespace mpim::redis

namespace mpim::bus {

class RedisLock final : public Lock {
 public:
  // Starts a client of its own (it connects in the background); keys start
  // with `prefix`. kInvalidArgument for a bad URL.
  static core::StatusOr<std::unique_ptr<RedisLock>> Open(const redis::ClientOptions& options,
                                                         std::string prefix);
  ~RedisLock() override;  // pending callbacks get kUnavailable

  void TryAcquire(std::string name, std::chrono::milliseconds ttl,
                  core::Callback<std::optional<uint64_t>> done) override;
  void Renew(std::string name, uint64_t token, std::chrono::milliseconds ttl,
             core::Callback<bool> done) override;
  void Release(std::string name, uint64_t token, core::DoneCallback done) override;

 private:
  RedisLock(std::unique_ptr<redis::Client> client, std::string prefix);

  std::unique_ptr<redis::Client> client_;
  const std::string prefix_;
};

}  // namespace mpim::bus
