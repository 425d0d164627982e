// Waiting for an asynchronous callback (a store's or a service's) with a
// deadline, for tests: a callback that never comes fails the wait with
// kDeadlineExceeded instead of hanging the test.
//
//   auto sent = testing::Await<service::SendResult>(
//       [&](auto cb) { messages.Send(who, request, std::move(cb), nullptr); });
//   ASSERT_TRUE(sent.ok()) << sent.status();
//
// A callback that comes after the deadline is harmless (it writes to
// shared state the wait no longer reads).
#pragma once

#include <chrono>
#include <future>
#include <string>
#include <utility>

#include "core/status.h"
#include "store/blocking.h"

namespace mpim::testing {

inline constexpr std::chrono::milliseconds kAwaitTimeout{10'000};

namespace internal {

template <typename R>
R Within(std::future<R> result, std::chrono::milliseconds timeout) {
  if (result.wait_for(timeout) != std::future_status::ready) {
    return absl::DeadlineExceededError("the callback did not run within " +
                                       std::to_string(timeout.count()) + " ms");
  }
  return result.get();
}

}  // namespace internal

// Runs `start(callback)`; what the callback got (a StatusOr<T>), or
// kDeadlineExceeded after `timeout`.
template <typename T, typename Start>
core::StatusOr<T> Await(Start&& start, std::chrono::milliseconds timeout = kAwaitTimeout) {
  return internal::Within(store::Begin<T>(std::forward<Start>(start)), timeout);
}

// The same for a callback that gets a Status.
template <typename Start>
core::Status AwaitStatus(Start&& start, std::chrono::milliseconds timeout = kAwaitTimeout) {
  return internal::Within(store::BeginStatus(std::forward<Start>(start)), timeout);
}

}  // namespace mpim::testing
