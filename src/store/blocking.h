// Blocking helpers over the async store API, for tests, command-line tools
// (`mpim migrate`, admin tools) and the task worker's thread, which may
// block. Request-serving code must not use them: they block the calling
// thread until the store answers.
//
//   auto user = store::Call(store->users(), &UserStore::Get, 1001);
//   StatusOr<User> u = store::Await<User>([&](auto cb) {
//     store->users().Get(1001, std::move(cb));
//   });
//
// Never call these from a store callback (the store thread would wait for
// itself).
#pragma once

#include <future>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "store/common.h"

namespace mpim::store {

namespace internal {

template <typename Cb>
struct CallbackArg;
template <typename R>
struct CallbackArg<absl::AnyInvocable<void(R) &&>> {
  using type = R;
};

// Runs `start(callback)`; the future gets the callback's argument (a Status
// or a StatusOr<T>).
template <typename R, typename Start>
std::future<R> StartResult(Start&& start) {
  auto promise = std::make_shared<std::promise<R>>();
  std::future<R> future = promise->get_future();
  std::forward<Start>(start)(absl::AnyInvocable<void(R) &&>(
      [promise](R result) { promise->set_value(std::move(result)); }));
  return future;
}

template <typename R, typename Start>
R AwaitResult(Start&& start) {
  return StartResult<R>(std::forward<Start>(start)).get();
}

}  // namespace internal

// Like Await/AwaitStatus without the wait: several calls can be in flight
// before the caller waits for their futures.
template <typename T, typename Start>
std::future<core::StatusOr<T>> Begin(Start&& start) {
  return internal::StartResult<core::StatusOr<T>>(std::forward<Start>(start));
}

template <typename Start>
std::future<core::Status> BeginStatus(Start&& start) {
  return internal::StartResult<core::Status>(std::forward<Start>(start));
}

template <typename T, typename Start>
core::StatusOr<T> Await(Start&& start) {
  return internal::AwaitResult<core::StatusOr<T>>(std::forward<Start>(start));
}

template <typename Start>
core::Status AwaitStatus(Start&& start) {
  return internal::AwaitResult<core::Status>(std::forward<Start>(start));
}

// Calls `(object.*method)(args..., callback)` and waits; returns what the
// callback received (Status or StatusOr<T>).
template <typename Object, typename Iface, typename... Params, typename... Args>
auto Call(Object& object, void (Iface::*method)(Params...), Args&&... args) {
  using Cb = std::decay_t<std::tuple_element_t<sizeof...(Params) - 1, std::tuple<Params...>>>;
  using R = typename internal::CallbackArg<Cb>::type;
  Iface& target = object;
  return internal::AwaitResult<R>(
      [&](Cb cb) { (target.*method)(std::forward<Args>(args)..., std::move(cb)); });
}

}  // namespace mpim::store
