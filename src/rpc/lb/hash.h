// The stable hashes of the hashing balancers. Every node must compute the
// same values, in every process and every version, or gateways disagree on
// where a conversation goes: so these are fixed functions of the bytes, not
// std::hash or absl::Hash (seeded per process). Changing them moves keys
// between nodes during a rolling upgrade; do not.
#pragma once

#include <cstdint>
#include <string_view>

namespace mpim::rpc::lb {

// The finalizer of SplitMix64 (Steele, Lea, Flood 2014): a bijection on 64
// bits with full avalanche.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// FNV-1a over the bytes, then Mix64 (FNV-1a alone avalanches poorly on
// short keys that differ in their last bytes, like "g:1001" and "g:1002").
constexpr uint64_t StableHash(std::string_view bytes, uint64_t seed = 0) {
  uint64_t h = 0xcbf29ce484222325ULL ^ Mix64(seed);
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix64(h);
}

// The key hash a caller puts in PickContext::key_hash.
constexpr uint64_t KeyHash(std::string_view key) { return StableHash(key); }

}  // namespace mpim::rpc::lb
