// What the balancers share: the name order of an endpoint set and a fast
// per-thread random source. Internal to src/rpc/lb.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rpc/lb/balancer.h"

namespace mpim::rpc::lb::internal {

// The caller's indexes of `endpoints`, sorted by name.
std::vector<uint32_t> NameOrder(std::span<const Endpoint> endpoints);

// A uniform 64-bit value from this thread's generator (SplitMix64, seeded
// once per thread from std::random_device): a few cycles, no lock.
uint64_t Random64();

// Uniform in [0, n), n >= 1 (Lemire's multiply-shift; bias below 2^-32 for
// any n a balancer sees).
inline uint32_t RandomBelow(uint32_t n) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(Random64()) * n) >> 64);
}

}  // namespace mpim::rpc::lb::internal
