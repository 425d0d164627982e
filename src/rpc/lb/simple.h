// The balancers that keep no key: round_robin, random, weighted_random and
// least_loaded (power of two choices on calls in flight).
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <vector>

#include "rpc/lb/balancer.h"

namespace mpim::rpc::lb {

// Each endpoint in turn, from a random start (so clients that start at once
// do not all begin with the same endpoint). Weights are ignored.
class RoundRobin final : public Balancer {
 public:
  explicit RoundRobin(std::span<const Endpoint> endpoints);
  [[nodiscard]] std::string_view name() const override { return "round_robin"; }
  [[nodiscard]] size_t size() const override { return order_.size(); }
  [[nodiscard]] int Pick(const PickContext& context) const override;

 private:
  std::vector<uint32_t> order_;
  mutable std::atomic<uint64_t> next_;
};

// Uniform at random. Weights are ignored.
class Random final : public Balancer {
 public:
  explicit Random(std::span<const Endpoint> endpoints) : size_(endpoints.size()) {}
  [[nodiscard]] std::string_view name() const override { return "random"; }
  [[nodiscard]] size_t size() const override { return size_; }
  [[nodiscard]] int Pick(const PickContext& context) const override;

 private:
  size_t size_;
};

// At random in proportion to weight, in O(1) per pick (Vose's alias method).
class WeightedRandom final : public Balancer {
 public:
  explicit WeightedRandom(std::span<const Endpoint> endpoints);
  [[nodiscard]] std::string_view name() const override { return "weighted_random"; }
  [[nodiscard]] size_t size() const override { return threshold_.size(); }
  [[nodiscard]] int Pick(const PickContext& context) const override;

 private:
  std::vector<uint32_t> threshold_;  // keep the column with P = threshold / 2^32
  std::vector<uint32_t> alias_;
};

// Two distinct endpoints at random, the one with fewer calls in flight wins
// (Mitzenmacher's power of two choices): nearly the balance of "least
// loaded of all" at the cost of two reads, and no herd on one idle node.
// Without a LoadView it is `random`.
class LeastLoaded final : public Balancer {
 public:
  explicit LeastLoaded(std::span<const Endpoint> endpoints) : size_(endpoints.size()) {}
  [[nodiscard]] std::string_view name() const override { return "least_loaded"; }
  [[nodiscard]] size_t size() const override { return size_; }
  [[nodiscard]] int Pick(const PickContext& context) const override;

 private:
  size_t size_;
};

}  // namespace mpim::rpc::lb
