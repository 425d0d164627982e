#include "store/common.h"

#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "store/sql_pages.h"

namespace mpim::store {

int64_t SystemNowMs() { return core::SystemClock().NowMs(); }

namespace {
thread_local const CommitInfo* t_commit = nullptr;
}  // namespace

const CommitInfo* CurrentCommit() { return t_commit; }
CommitScope::CommitScope(const CommitInfo& commit) : previous_(t_commit) { t_commit = &commit; }
CommitScope::~CommitScope() { t_commit = previous_; }

CommitInfo ObserveCommit(std::chrono::steady_clock::duration took, size_t writes) {
  static core::Histogram& seconds =
      core::DefaultRegistry()
          .Histogram("mpim_store_commit_seconds",
                     "Write transactions committed by the store: time from their start to their "
                     "commit (the writes in one wait that long).")
          .With({});
  static core::Histogram& carried =
      core::DefaultRegistry()
          .Histogram("mpim_store_commit_writes", "Writes carried by each committed transaction.",
                     {}, {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024})
          .With({});
  seconds.Observe(std::chrono::duration<double>(took).count());
  carried.Observe(static_cast<double>(writes));
  const int64_t end = core::trace::NowUnixNs();
  return CommitInfo{writes,
                    end - std::chrono::duration_cast<std::chrono::nanoseconds>(took).count(), end};
}

core::Status CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxPageLimit) {
    return absl::InvalidArgumentError("limit must be in [1, " + std::to_string(kMaxPageLimit) +
                                      "], got " + std::to_string(limit));
  }
  return core::Status();
}

}  // namespace mpim::store
