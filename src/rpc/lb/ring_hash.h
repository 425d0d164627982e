// Consistent hashing on a ring (Karger et al. 1997), and the same ring with
// bounded loads (Mirrokni, Thorup, Zadimoghaddam 2018).
//
// Each endpoint puts `vnodes * weight` points on a 64-bit ring at
// StableHash(name, point number); a key goes to the owner of the first
// point at or after its hash, wrapping around. When one of N endpoints
// leaves, only the keys it owned move (about 1/N of them); with 150 points
// each the busiest endpoint owns about 1.1-1.3x the mean (docs/rpc.md has
// the figures from bench/lb_bench.cc). A pick is a binary search: O(log(N *
// vnodes)).
#pragma once

#include <span>
#include <vector>

#include "rpc/lb/balancer.h"

namespace mpim::rpc::lb {

class RingHash : public Balancer {
 public:
  RingHash(std::span<const Endpoint> endpoints, int vnodes);
  [[nodiscard]] std::string_view name() const override { return "ring_hash"; }
  [[nodiscard]] size_t size() const override { return size_; }
  [[nodiscard]] int Pick(const PickContext& context) const override;

  // The share of the hash space each endpoint owns (the caller's indexes;
  // sums to 1): the load it gets from uniformly spread keys.
  [[nodiscard]] std::vector<double> Shares() const;

 protected:
  // The ring position a key starts its walk from.
  [[nodiscard]] size_t Position(const PickContext& context) const;

  size_t size_;
  std::vector<uint64_t> points_;  // sorted
  std::vector<uint32_t> owners_;  // owners_[i] holds points_[i]; caller's indexes
};

// The ring, but no endpoint takes more than ceil(factor * (calls in flight
// + 1) / N) calls: a key whose owner is full walks on to the next endpoint
// on the ring that is not. Keys stay where they hash while load is even,
// and a hot key cannot bury one node. Needs PickContext::load; without it,
// it is ring_hash.
class BoundedLoad final : public RingHash {
 public:
  BoundedLoad(std::span<const Endpoint> endpoints, int vnodes, double factor)
      : RingHash(endpoints, vnodes), factor_(factor) {}
  [[nodiscard]] std::string_view name() const override { return "bounded_load"; }
  [[nodiscard]] int Pick(const PickContext& context) const override;

 private:
  double factor_;
};

}  // namespace mpim::rpc::lb
