// Balancers by name, as config chooses them (rpc.balancer and
// rpc.send_balancer: docs/configuration.md).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "core/status.h"
#include "rpc/lb/balancer.h"

namespace mpim::rpc::lb {

struct BalancerConfig {
  int ring_vnodes = 150;               // ring_hash, bounded_load: points per unit of weight
  uint32_t maglev_table_size = 65537;  // maglev: a prime >= the number of endpoints
  double bounded_load_factor = 1.25;   // bounded_load: capacity over the mean, >= 1

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

// Every name CreateBalancer knows, in a fixed order.
std::span<const std::string_view> BalancerNames();

// True for the balancers that place a key (ring_hash, maglev, bounded_load).
bool IsHashing(std::string_view name);

// A balancer over `endpoints`. kInvalidArgument for an unknown name, a bad
// config, an endpoint without a name, a name given twice, a zero weight, or
// more endpoints than a Maglev table has slots.
core::StatusOr<std::unique_ptr<Balancer>> CreateBalancer(std::string_view name,
                                                         std::span<const Endpoint> endpoints,
                                                         const BalancerConfig& config = {});

}  // namespace mpim::rpc::lb
