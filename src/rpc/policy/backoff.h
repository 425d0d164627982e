// Back-off between retries: exponential with full jitter (the "full jitter"
// of the AWS architecture blog's study of back-off): the n-th retry waits a
// uniformly random time in [0, min(cap_ms, base_ms * 2^(n-1))]. Spreading
// the whole range keeps clients that failed together from retrying
// together.
//
// Thread-safety: the functions are pure; the random generator passed in is
// the caller's and is not guarded (one per thread, or per call). Given a
// generator seeded the same, the delays are the same (on one standard
// library: the distribution's algorithm is the library's).
#pragma once

#include <concepts>
#include <cstdint>
#include <random>

#include "core/status.h"

namespace mpim::rpc::policy {

struct BackoffConfig {
  int64_t base_ms = 50;   // the first retry's ceiling; >= 1
  int64_t cap_ms = 2000;  // no ceiling above this; >= base_ms

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

// The ceiling of the wait before retry number `retry` (1 for the first
// retry): min(cap_ms, base_ms * 2^(retry-1)), without overflow for any
// `retry`; base_ms for retry < 1. `config` must be valid.
int64_t BackoffCeilingMs(const BackoffConfig& config, int retry);

// A wait before retry number `retry`, uniform in [0, BackoffCeilingMs()].
template <std::uniform_random_bit_generator Rng>
int64_t FullJitterBackoffMs(const BackoffConfig& config, int retry, Rng& rng) {
  return std::uniform_int_distribution<int64_t>(0, BackoffCeilingMs(config, retry))(rng);
}

}  // namespace mpim::rpc::policy
