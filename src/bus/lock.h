// A cluster-wide lock for work that must run on one node at a time (a
// periodic cleanup, a one-off repair): a lease held for a bounded time,
// with a fencing token.
//
// Which engine: Redis (bus.redis_url) when bus.engine is a Redis engine, this
// process's memory with bus.engine = "memory" (one node). etcd, once
// discovery uses it (issue 20), is the better home for leases; this
// interface stays. Schema migrations do not use it: they hold MariaDB's own
// GET_LOCK inside the database they change (store/mysql/schema.cc).
//
// Fencing: each lease carries a token greater than every token issued for
// the same name before. A holder that paused past its lease (GC, SIGSTOP,
// a slow disk) may still believe it holds it while another holder has
// taken it; work whose effects must not interleave therefore passes the
// token to what it writes, and that refuses tokens lower than the highest
// it has seen. A lease alone only makes overlap rare, never impossible.
//
// Threads and failures: any thread; nothing blocks; callbacks run once, on
// a thread of the lock (never inline). kUnavailable when the lock's engine
// cannot be reached or did not answer in time: then the caller does not
// hold the lock (a TryAcquire whose reply was lost may have taken it; the
// lease then simply expires).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/callback.h"

namespace mpim::bus {

class Lock {
 public:
  virtual ~Lock() = default;

  // Takes `name` for `ttl` if no one holds it: the lease's fencing token;
  // nullopt when another holder has it.
  virtual void TryAcquire(std::string name, std::chrono::milliseconds ttl,
                          core::Callback<std::optional<uint64_t>> done) = 0;
  // Extends the lease held with `token` to `ttl` from now; false when it is
  // no longer held with that token (expired, or taken by another).
  virtual void Renew(std::string name, uint64_t token, std::chrono::milliseconds ttl,
                     core::Callback<bool> done) = 0;
  // Gives the lease up if it is still held with `token` (else nothing).
  virtual void Release(std::string name, uint64_t token, core::DoneCallback done) = 0;
};

}  // namespace mpim::bus
