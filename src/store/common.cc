#include "store/common.h"

#include <string>

#include "core/clock.h"
#include "store/sql_pages.h"

namespace mpim::store {

int64_t SystemNowMs() { return core::SystemClock().NowMs(); }

core::Status CheckLimit(int limit) {
  if (limit < 1 || limit > kMaxPageLimit) {
    return absl::InvalidArgumentError("limit must be in [1, " + std::to_string(kMaxPageLimit) +
                                      "], got " + std::to_string(limit));
  }
  return core::Status();
}

}  // namespace mpim::store
