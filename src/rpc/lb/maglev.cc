#include "rpc/lb/maglev.h"

#include "rpc/lb/hash.h"
#include "rpc/lb/internal.h"

namespace mpim::rpc::lb {

namespace {
constexpr uint64_t kOffsetSeed = 0x6d61676c65762d6fULL;  // "maglev-o"
constexpr uint64_t kSkipSeed = 0x6d61676c65762d73ULL;    // "maglev-s"
constexpr uint32_t kEmpty = UINT32_MAX;
}  // namespace

Maglev::Maglev(std::span<const Endpoint> endpoints, uint32_t table_size) : size_(endpoints.size()) {
  if (size_ == 0) return;
  const uint64_t m = table_size;
  std::vector<uint32_t> order = internal::NameOrder(endpoints);
  std::vector<uint64_t> offset(size_);
  std::vector<uint64_t> skip(size_);
  std::vector<uint64_t> next(size_, 0);
  for (size_t turn = 0; turn < size_; ++turn) {
    const std::string& name = endpoints[order[turn]].name;
    offset[turn] = StableHash(name, kOffsetSeed) % m;
    skip[turn] = StableHash(name, kSkipSeed) % (m - 1) + 1;
  }
  table_.assign(m, kEmpty);
  uint64_t filled = 0;
  while (true) {
    for (size_t turn = 0; turn < size_; ++turn) {
      // Skip is in [1, m) and m is prime, so the walk visits every slot.
      uint64_t slot = (offset[turn] + next[turn] * skip[turn]) % m;
      while (table_[slot] != kEmpty) {
        ++next[turn];
        slot = (offset[turn] + next[turn] * skip[turn]) % m;
      }
      table_[slot] = order[turn];
      ++next[turn];
      if (++filled == m) return;
    }
  }
}

int Maglev::Pick(const PickContext& context) const {
  if (table_.empty()) return kNone;
  uint64_t key = context.has_key ? context.key_hash : internal::Random64();
  // The high half of key * M maps the (well mixed) hash onto the slots
  // without a division: a few cycles, where `%` by a run-time M is dozens.
  auto slot = static_cast<size_t>((static_cast<unsigned __int128>(key) * table_.size()) >> 64);
  return static_cast<int>(table_[slot]);
}

std::vector<double> Maglev::Shares() const {
  std::vector<double> shares(size_, 0.0);
  for (uint32_t owner : table_) shares[owner] += 1.0 / static_cast<double>(table_.size());
  return shares;
}

}  // namespace mpim::rpc::lb
