// Vocabulary shared by every store interface: completion callbacks, pages,
// page limits and the clock.
//
// The callback contract (all store interfaces follow it):
//   - Every store method returns at once; it never blocks the caller. Its
//     result arrives through the completion callback passed as the last
//     argument.
//   - The callback is invoked exactly once, on a store thread (for the
//     SQLite engine: its completion thread for writes, in commit order; a
//     reader thread for reads). The only exception: a call made after
//     Store::Close() completes inline on the caller's thread with
//     kUnavailable.
//   - Callbacks must be short and must not block: post the result to your
//     own executor. A callback may call the store again (that only queues).
//   - A write's callback runs only after its transaction has committed: an
//     OK result means the write is durable (see store.h for what durable
//     means under each synchronous setting).
//   - Errors are Status codes (core/status.h): kInvalidArgument for bad
//     input, kNotFound, kAlreadyExists, kUnavailable when the storage is
//     down, full, read-only or closed (safe to retry), kInternal for bugs.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/status.h"

namespace mpim::store {

// Completion callback for a method producing a T.
template <typename T>
using Callback = absl::AnyInvocable<void(core::StatusOr<T>) &&>;

// Completion callback for a method producing nothing but a Status.
using DoneCallback = absl::AnyInvocable<void(core::Status) &&>;

// One page of a listing. `has_more` is true when more items exist past the
// last one returned (in the listing's direction).
template <typename T>
struct Page {
  std::vector<T> items;
  bool has_more = false;
};

// Every paged method accepts a limit in [1, kMaxPageLimit]; anything else is
// kInvalidArgument. The protocol's smaller page limit (default 200) is
// enforced by the services.
inline constexpr int kMaxPageLimit = 1000;

// Milliseconds since the Unix epoch. Injected so tests can move time.
using NowMsFn = std::function<int64_t()>;

// The wall clock (core::SystemClock()).
int64_t SystemNowMs();

// A committed write transaction: when it ran (wall clock, for traces) and
// how many writes it carried.
struct CommitInfo {
  size_t writes = 0;  // 0: none (the writes failed)
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
};

// A committed write transaction, for the metrics both engines share:
// mpim_store_commit_seconds (its time from start to commit, the writes in
// it waiting meanwhile) and mpim_store_commit_writes (writes it carried).
// Returns what a trace shows of it.
CommitInfo ObserveCommit(std::chrono::steady_clock::duration took, size_t writes);

// The commit whose writes' callbacks run on this thread now (null: none):
// the engines' completion threads set it around them, so that a traced
// write's span can show the transaction it rode in.
const CommitInfo* CurrentCommit();
class CommitScope {
 public:
  explicit CommitScope(const CommitInfo& commit);
  ~CommitScope();
  CommitScope(const CommitScope&) = delete;
  CommitScope& operator=(const CommitScope&) = delete;

 private:
  const CommitInfo* previous_;
};

}  // namespace mpim::store
