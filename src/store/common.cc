#include "store/common.h"

#include "core/clock.h"

namespace mpim::store {

int64_t SystemNowMs() { return core::SystemClock().NowMs(); }

}  // namespace mpim::store
