// Snowflake ids: 64-bit, time-ordered, unique per node, no coordination.
//
// Layout (most significant first), always non-negative as int64_t:
//   1 bit   zero
//   41 bits milliseconds since kSnowflakeEpochMs (2024-01-01T00:00:00Z);
//           lasts until 2093-09-06
//   10 bits node id, 0..1023 (from config; unique per live node)
//   12 bits sequence within the millisecond, 0..4095
//
// The millisecond field is a logical clock: it is the wall clock when the wall
// clock is ahead of the last id, and otherwise continues from the last id.
// So ids from one generator strictly increase even when the wall clock steps
// back (they keep counting from the last timestamp until the wall clock
// catches up) and when more than 4096 ids are taken in one millisecond (the
// field moves to the next millisecond ahead of the wall clock).
//
// Uniqueness holds per generator, so a node must use one generator (and a
// node id no other live node holds). After a restart, ids are unique provided
// the wall clock has passed the last id's time; a burst of N ids can run the
// logical clock up to N/4096 ms ahead of the wall clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "core/clock.h"
#include "core/status.h"

namespace mpim::core {

// 2024-01-01T00:00:00Z in milliseconds since the Unix epoch.
inline constexpr int64_t kSnowflakeEpochMs = 1'704'067'200'000;
inline constexpr int kSnowflakeTimestampBits = 41;
inline constexpr int kSnowflakeNodeBits = 10;
inline constexpr int kSnowflakeSequenceBits = 12;
inline constexpr int kSnowflakeMaxNodeId = (1 << kSnowflakeNodeBits) - 1;        // 1023
inline constexpr int kSnowflakeMaxSequence = (1 << kSnowflakeSequenceBits) - 1;  // 4095

// An id taken apart.
struct SnowflakeParts {
  int64_t unix_ms = 0;  // the timestamp field as milliseconds since the Unix epoch
  int node_id = 0;
  int sequence = 0;

  friend bool operator==(const SnowflakeParts&, const SnowflakeParts&) = default;
};

// Takes an id apart. Pure; any int64_t is accepted (negative ids are not
// produced by a generator and decode to meaningless parts).
SnowflakeParts DecodeSnowflake(int64_t id);

// Builds an id from parts. Fields out of range are masked to their widths;
// `unix_ms` before the epoch is masked too, so callers check ranges first.
int64_t EncodeSnowflake(const SnowflakeParts& parts);

// Hands out ids for one node.
//
// Thread-safe and lock-free: Next may be called concurrently from any number
// of threads; each call is one CAS loop on a packed 64-bit state. The clock
// must outlive the generator.
class SnowflakeGenerator {
 public:
  // Fails with InvalidArgument unless 0 <= node_id <= 1023.
  [[nodiscard]] static StatusOr<std::unique_ptr<SnowflakeGenerator>> Create(
      int node_id, Clock& clock = SystemClock());

  SnowflakeGenerator(const SnowflakeGenerator&) = delete;
  SnowflakeGenerator& operator=(const SnowflakeGenerator&) = delete;

  // A new id, greater than every id this generator returned before (in any
  // thread). Never fails while the logical clock is before 2093-09-06; past
  // that the 41-bit field would overflow and the process aborts with a
  // message rather than hand out a duplicate. A wall clock before the epoch
  // counts as the epoch.
  int64_t Next();

  int node_id() const { return node_id_; }

 private:
  SnowflakeGenerator(int node_id, Clock& clock) : node_id_(node_id), clock_(clock) {}

  const int node_id_;
  Clock& clock_;
  // (ms since epoch << 12) | sequence of the last id handed out, so that
  // state + 1 carries a full sequence into the next millisecond. -1 (ms -1,
  // sequence 4095) before the first id.
  std::atomic<int64_t> state_{-1};
};

}  // namespace mpim::core
