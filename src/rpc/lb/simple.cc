#include "rpc/lb/simple.h"

#include "rpc/lb/internal.h"

namespace mpim::rpc::lb {

using internal::RandomBelow;

RoundRobin::RoundRobin(std::span<const Endpoint> endpoints)
    : order_(internal::NameOrder(endpoints)), next_(internal::Random64()) {}

int RoundRobin::Pick(const PickContext& /*context*/) const {
  if (order_.empty()) return kNone;
  uint64_t turn = next_.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(order_[turn % order_.size()]);
}

int Random::Pick(const PickContext& /*context*/) const {
  if (size_ == 0) return kNone;
  return static_cast<int>(RandomBelow(static_cast<uint32_t>(size_)));
}

WeightedRandom::WeightedRandom(std::span<const Endpoint> endpoints)
    : threshold_(endpoints.size(), 0), alias_(endpoints.size(), 0) {
  size_t n = endpoints.size();
  if (n == 0) return;
  uint64_t total = 0;
  for (const Endpoint& e : endpoints) total += e.weight;
  // Scaled probabilities: each column holds n * w / total in units of 1.
  std::vector<double> scaled(n);
  std::vector<uint32_t> small;
  std::vector<uint32_t> large;
  for (uint32_t i = 0; i < n; ++i) {
    scaled[i] = static_cast<double>(endpoints[i].weight) * static_cast<double>(n) /
                static_cast<double>(total);
    (scaled[i] < 1.0 ? small : large).push_back(i);
    alias_[i] = i;
  }
  constexpr double kOne = 4294967296.0;  // 2^32
  auto to_threshold = [&](double p) {
    return p >= 1.0 ? UINT32_MAX : static_cast<uint32_t>(p * kOne);
  };
  while (!small.empty() && !large.empty()) {
    uint32_t s = small.back();
    small.pop_back();
    uint32_t l = large.back();
    threshold_[s] = to_threshold(scaled[s]);
    alias_[s] = l;
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left is 1 up to rounding: keep the column whole.
  for (uint32_t i : small) threshold_[i] = UINT32_MAX;
  for (uint32_t i : large) threshold_[i] = UINT32_MAX;
}

int WeightedRandom::Pick(const PickContext& /*context*/) const {
  if (threshold_.empty()) return kNone;
  uint64_t r = internal::Random64();
  uint32_t column =
      static_cast<uint32_t>((static_cast<unsigned __int128>(r >> 32) * threshold_.size()) >> 32);
  auto coin = static_cast<uint32_t>(r);
  return static_cast<int>(
      coin < threshold_[column] || threshold_[column] == UINT32_MAX ? column : alias_[column]);
}

int LeastLoaded::Pick(const PickContext& context) const {
  if (size_ == 0) return kNone;
  auto n = static_cast<uint32_t>(size_);
  uint32_t a = RandomBelow(n);
  if (n == 1 || context.load == nullptr) return static_cast<int>(a);
  uint32_t b = RandomBelow(n - 1);
  if (b >= a) ++b;
  return static_cast<int>(context.load->InFlight(b) < context.load->InFlight(a) ? b : a);
}

}  // namespace mpim::rpc::lb
