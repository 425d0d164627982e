#include "rpc/lb/registry.h"

#include <array>
#include <functional>
#include <string>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "rpc/lb/maglev.h"
#include "rpc/lb/ring_hash.h"
#include "rpc/lb/simple.h"

namespace mpim::rpc::lb {

namespace {

using Factory =
    std::function<std::unique_ptr<Balancer>(std::span<const Endpoint>, const BalancerConfig&)>;

struct Entry {
  std::string_view name;
  bool hashing;
  Factory make;
};

const std::array<Entry, 7>& Entries() {
  static const std::array<Entry, 7> entries{{
      {"round_robin", false,
       [](auto endpoints, const auto&) { return std::make_unique<RoundRobin>(endpoints); }},
      {"random", false,
       [](auto endpoints, const auto&) { return std::make_unique<Random>(endpoints); }},
      {"weighted_random", false,
       [](auto endpoints, const auto&) { return std::make_unique<WeightedRandom>(endpoints); }},
      {"least_loaded", false,
       [](auto endpoints, const auto&) { return std::make_unique<LeastLoaded>(endpoints); }},
      {"ring_hash", true,
       [](auto endpoints, const BalancerConfig& c) {
         return std::make_unique<RingHash>(endpoints, c.ring_vnodes);
       }},
      {"maglev", true,
       [](auto endpoints, const BalancerConfig& c) {
         return std::make_unique<Maglev>(endpoints, c.maglev_table_size);
       }},
      {"bounded_load", true,
       [](auto endpoints, const BalancerConfig& c) {
         return std::make_unique<BoundedLoad>(endpoints, c.ring_vnodes, c.bounded_load_factor);
       }},
  }};
  return entries;
}

const Entry* Find(std::string_view name) {
  for (const Entry& e : Entries()) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

bool IsPrime(uint32_t n) {
  if (n < 2) return false;
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) return false;
  }
  return true;
}

}  // namespace

core::Status BalancerConfig::Validate() const {
  if (ring_vnodes < 1 || ring_vnodes > 10000) {
    return absl::InvalidArgumentError("ring_vnodes must be in [1, 10000]");
  }
  if (maglev_table_size > 16777259 || !IsPrime(maglev_table_size)) {
    return absl::InvalidArgumentError(
        "maglev_table_size must be a prime no larger than 16777259 (65537 is the default)");
  }
  if (!(bounded_load_factor >= 1.0 && bounded_load_factor <= 100.0)) {
    return absl::InvalidArgumentError("bounded_load_factor must be in [1, 100]");
  }
  return absl::OkStatus();
}

std::span<const std::string_view> BalancerNames() {
  static const std::array<std::string_view, 7> names = [] {
    std::array<std::string_view, 7> out;
    for (size_t i = 0; i < out.size(); ++i) out[i] = Entries()[i].name;
    return out;
  }();
  return names;
}

bool IsHashing(std::string_view name) {
  const Entry* entry = Find(name);
  return entry != nullptr && entry->hashing;
}

core::StatusOr<std::unique_ptr<Balancer>> CreateBalancer(std::string_view name,
                                                         std::span<const Endpoint> endpoints,
                                                         const BalancerConfig& config) {
  const Entry* entry = Find(name);
  if (entry == nullptr) {
    std::string known;
    for (std::string_view n : BalancerNames())
      absl::StrAppend(&known, known.empty() ? "" : ", ", std::string(n));
    return absl::InvalidArgumentError(
        absl::StrCat("unknown balancer '", std::string(name), "' (known: ", known, ")"));
  }
  if (core::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unordered_set<std::string_view> seen;
  for (const Endpoint& e : endpoints) {
    if (e.name.empty()) return absl::InvalidArgumentError("an endpoint has no name");
    if (!seen.insert(e.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.name, "' given twice"));
    }
    if (e.weight == 0) {
      return absl::InvalidArgumentError(absl::StrCat("endpoint '", e.name, "' has weight 0"));
    }
  }
  if (name == "maglev" && endpoints.size() > config.maglev_table_size) {
    return absl::InvalidArgumentError(absl::StrCat(endpoints.size(),
                                                   " endpoints do not fit a Maglev table of ",
                                                   config.maglev_table_size, " slots"));
  }
  return entry->make(endpoints, config);
}

}  // namespace mpim::rpc::lb
