// Load balancers: which endpoint (one peer node of a role) gets a call.
//
// gRPC 1.51 has no public API for custom load-balancing policies, so the RPC
// client keeps one channel per endpoint and asks a Balancer which one to
// use. A balancer is built for one endpoint set and is immutable after
// that: when discovery reports a change the client builds a new one and
// swaps it in, so Pick() never waits on a rebuild. Pick() may be called from
// any number of threads at once.
//
// Every balancer sees the endpoints in name order, whatever order they were
// given in, so two gateways that know the same nodes build the same ring or
// table and send a conversation to the same logic node. Pick() answers an
// index into the span given to the factory (the caller's order).
//
// Names (registry.h): round_robin, random, weighted_random, least_loaded,
// ring_hash, maglev, bounded_load. docs/rpc.md, "Load balancers", says what
// each does and what it costs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mpim::rpc::lb {

struct Endpoint {
  std::string name;     // unique per endpoint, stable across nodes (the node's name)
  uint32_t weight = 1;  // >= 1; honoured by weighted_random and ring_hash/bounded_load
};

// Calls in flight per endpoint, read by the load-aware balancers
// (least_loaded, bounded_load); indexes are the caller's.
class LoadView {
 public:
  virtual ~LoadView() = default;
  [[nodiscard]] virtual int64_t InFlight(size_t index) const = 0;
  // The sum over the first `n` indexes (bounded_load reads it on every
  // pick); override it with a running total when n is large.
  [[nodiscard]] virtual int64_t TotalInFlight(size_t n) const;
};

struct PickContext {
  // The request's key hash (KeyHash() in hash.h), for the hashing
  // balancers; the others ignore it. A hashing balancer given no key picks
  // at random.
  bool has_key = false;
  uint64_t key_hash = 0;
  const LoadView* load = nullptr;  // needed by least_loaded and bounded_load
};

class Balancer {
 public:
  static constexpr int kNone = -1;

  virtual ~Balancer() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual size_t size() const = 0;
  // An index into the endpoints the balancer was built with; kNone when it
  // has none.
  [[nodiscard]] virtual int Pick(const PickContext& context) const = 0;
};

}  // namespace mpim::rpc::lb
