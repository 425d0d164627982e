// Maglev hashing (Eisenbud et al., NSDI 2016): a lookup table of M slots (M
// prime, 65537 by default) filled by the endpoints in turns, each walking
// its own permutation of the slots (offset and skip from two hashes of its
// name). Every endpoint gets M/N slots, give or take one, so load is even
// to within 1 + N/M; a pick is one hash and one table read. When an
// endpoint leaves, its slots go to the others and a few more move besides
// (the paper measures a little above 1/N). Weights are ignored.
#pragma once

#include <span>
#include <vector>

#include "rpc/lb/balancer.h"

namespace mpim::rpc::lb {

class Maglev final : public Balancer {
 public:
  // `table_size` must be prime and at least endpoints.size() (registry.h
  // checks).
  Maglev(std::span<const Endpoint> endpoints, uint32_t table_size);
  [[nodiscard]] std::string_view name() const override { return "maglev"; }
  [[nodiscard]] size_t size() const override { return size_; }
  [[nodiscard]] int Pick(const PickContext& context) const override;

  // The share of the table each endpoint holds (the caller's indexes).
  [[nodiscard]] std::vector<double> Shares() const;

 private:
  size_t size_;
  std::vector<uint32_t> table_;  // slot -> caller's index
};

}  // namespace mpim::rpc::lb
