#include "rpc/lb/ring_hash.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

#include "rpc/lb/hash.h"
#include "rpc/lb/internal.h"

namespace mpim::rpc::lb {

RingHash::RingHash(std::span<const Endpoint> endpoints, int vnodes) : size_(endpoints.size()) {
  std::vector<std::pair<uint64_t, uint32_t>> ring;
  std::vector<uint32_t> order = internal::NameOrder(endpoints);
  for (uint32_t index : order) {
    const Endpoint& e = endpoints[index];
    uint64_t points = static_cast<uint64_t>(vnodes) * e.weight;
    for (uint64_t p = 0; p < points; ++p) ring.emplace_back(StableHash(e.name, p), index);
  }
  // Equal hashes (rare) are ordered by name, through the stable sort of a
  // list built in name order, so every node breaks the tie alike.
  std::stable_sort(ring.begin(), ring.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  points_.reserve(ring.size());
  owners_.reserve(ring.size());
  for (const auto& [point, owner] : ring) {
    points_.push_back(point);
    owners_.push_back(owner);
  }
}

size_t RingHash::Position(const PickContext& context) const {
  uint64_t key = context.has_key ? context.key_hash : internal::Random64();
  auto it = std::lower_bound(points_.begin(), points_.end(), key);
  return it == points_.end() ? 0 : static_cast<size_t>(it - points_.begin());
}

int RingHash::Pick(const PickContext& context) const {
  if (points_.empty()) return kNone;
  return static_cast<int>(owners_[Position(context)]);
}

std::vector<double> RingHash::Shares() const {
  std::vector<double> shares(size_, 0.0);
  if (points_.empty()) return shares;
  constexpr double kSpace = 18446744073709551616.0;  // 2^64
  // A point owns the arc from the point before it (exclusive) up to itself.
  for (size_t i = 0; i < points_.size(); ++i) {
    uint64_t from = i == 0 ? points_.back() : points_[i - 1];
    uint64_t arc = points_[i] - from;  // wraps modulo 2^64 for i == 0
    if (points_.size() == 1) arc = UINT64_MAX;
    shares[owners_[i]] += static_cast<double>(arc) / kSpace;
  }
  return shares;
}

int BoundedLoad::Pick(const PickContext& context) const {
  if (points_.empty()) return kNone;
  size_t at = Position(context);
  if (context.load == nullptr || size_ == 1) return static_cast<int>(owners_[at]);
  const LoadView& load = *context.load;
  int64_t total = load.TotalInFlight(size_);
  auto capacity = static_cast<int64_t>(
      std::ceil(factor_ * static_cast<double>(total + 1) / static_cast<double>(size_)));
  // factor >= 1 means some endpoint is below capacity, so the walk ends
  // within one lap; the lap bound only guards against a LoadView that
  // changes under the walk.
  for (size_t step = 0; step < points_.size(); ++step) {
    uint32_t owner = owners_[(at + step) % points_.size()];
    if (load.InFlight(owner) < capacity) return static_cast<int>(owner);
  }
  return static_cast<int>(owners_[at]);
}

}  // namespace mpim::rpc::lb
