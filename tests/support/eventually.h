// Polling for a condition with a deadline, for tests: `done` is asked every
// `period` until it holds (true) or `timeout` passes (false).
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace mpim::testing {

inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds(10000),
                       std::chrono::milliseconds period = std::chrono::milliseconds(20)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(period);
  }
  return true;
}

}  // namespace mpim::testing
