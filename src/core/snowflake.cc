#include "core/snowflake.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace mpim::core {
namespace {

constexpr uint64_t kSequenceMask = (uint64_t{1} << kSnowflakeSequenceBits) - 1;
constexpr uint64_t kNodeMask = (uint64_t{1} << kSnowflakeNodeBits) - 1;
constexpr uint64_t kTimestampMask = (uint64_t{1} << kSnowflakeTimestampBits) - 1;
constexpr int kTimestampShift = kSnowflakeNodeBits + kSnowflakeSequenceBits;
// First millisecond value the 41-bit field cannot hold (2093-09-06).
constexpr int64_t kTimestampLimit = int64_t{1} << kSnowflakeTimestampBits;

}  // namespace

SnowflakeParts DecodeSnowflake(int64_t id) {
  const auto u = static_cast<uint64_t>(id);
  SnowflakeParts parts;
  parts.unix_ms = static_cast<int64_t>((u >> kTimestampShift) & kTimestampMask) + kSnowflakeEpochMs;
  parts.node_id = static_cast<int>((u >> kSnowflakeSequenceBits) & kNodeMask);
  parts.sequence = static_cast<int>(u & kSequenceMask);
  return parts;
}

int64_t EncodeSnowflake(const SnowflakeParts& parts) {
  const auto ms = static_cast<uint64_t>(parts.unix_ms - kSnowflakeEpochMs) & kTimestampMask;
  const auto node = static_cast<uint64_t>(parts.node_id) & kNodeMask;
  const auto seq = static_cast<uint64_t>(parts.sequence) & kSequenceMask;
  return static_cast<int64_t>((ms << kTimestampShift) | (node << kSnowflakeSequenceBits) | seq);
}

StatusOr<std::unique_ptr<SnowflakeGenerator>> SnowflakeGenerator::Create(int node_id,
                                                                         Clock& clock) {
  if (node_id < 0 || node_id > kSnowflakeMaxNodeId) {
    return absl::InvalidArgumentError("snowflake node id " + std::to_string(node_id) +
                                      " is out of range 0.." + std::to_string(kSnowflakeMaxNodeId));
  }
  return std::unique_ptr<SnowflakeGenerator>(new SnowflakeGenerator(node_id, clock));
}

int64_t SnowflakeGenerator::Next() {
  int64_t last = state_.load(std::memory_order_relaxed);
  int64_t next;
  do {
    const int64_t now = std::clamp<int64_t>(clock_.NowMs() - kSnowflakeEpochMs, 0, kTimestampLimit);
    // Wall clock ahead of the logical clock: jump to it with sequence 0.
    // Otherwise (same ms, clock stepped back, or sequence exhausted) count on
    // from the last id; +1 on a full sequence carries into the next ms.
    next = now > (last >> kSnowflakeSequenceBits) ? now << kSnowflakeSequenceBits : last + 1;
  } while (!state_.compare_exchange_weak(last, next, std::memory_order_relaxed,
                                         std::memory_order_relaxed));
  const int64_t ms = next >> kSnowflakeSequenceBits;
  if (ms >= kTimestampLimit) {
    std::fprintf(stderr, "snowflake: timestamp field overflows 41 bits (clock past 2093?)\n");
    std::abort();
  }
  return (ms << kTimestampShift) | (int64_t{node_id_} << kSnowflakeSequenceBits) |
         (next & kSnowflakeMaxSequence);
}

}  // namespace mpim::core
