#include "core/clock.h"

#include <time.h>

namespace mpim::core {
namespace {

int64_t ReadMs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);  // Cannot fail for these clock ids.
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

}  // namespace

int64_t RealClock::NowMs() const { return ReadMs(CLOCK_REALTIME); }

int64_t RealClock::SteadyMs() const { return ReadMs(CLOCK_MONOTONIC); }

Clock& SystemClock() {
  static RealClock* const clock = new RealClock();
  return *clock;
}

}  // namespace mpim::core
