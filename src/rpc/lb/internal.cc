#include "rpc/lb/internal.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "rpc/lb/hash.h"

namespace mpim::rpc::lb::internal {

std::vector<uint32_t> NameOrder(std::span<const Endpoint> endpoints) {
  std::vector<uint32_t> order(endpoints.size());
  std::iota(order.begin(), order.end(), 0U);
  std::sort(order.begin(), order.end(),
            [&](uint32_t a, uint32_t b) { return endpoints[a].name < endpoints[b].name; });
  return order;
}

uint64_t Random64() {
  thread_local uint64_t state = [] {
    std::random_device device;
    return (static_cast<uint64_t>(device()) << 32) ^ device();
  }();
  state += 0x9e3779b97f4a7c15ULL;
  return Mix64(state);
}

}  // namespace mpim::rpc::lb::internal

namespace mpim::rpc::lb {

int64_t LoadView::TotalInFlight(size_t n) const {
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) total += InFlight(i);
  return total;
}

}  // namespace mpim::rpc::lb
