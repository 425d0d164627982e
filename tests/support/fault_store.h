// A fault-injecting decorator over store::Store, for tests (as RocksDB's
// FaultInjectionTestFS is over a file system): it forwards every call of
// every sub-store to a real store, except the calls a test armed it for,
// which fail with a chosen status or answer late.
//
//   testing::FaultStore faults(*sqlite);
//   faults.FailNext("messages.Append");                  // once, kUnavailable
//   faults.FailAlways("groups.ListMembers", absl::InternalError("boom"));
//   faults.DelayNext("jobs.Enqueue", std::chrono::milliseconds(200));
//   faults.HoldNext("messages.Append");                  // until Release
//   ... start the call under test ...
//   ASSERT_TRUE(faults.WaitHeld("messages.Append", 1, std::chrono::seconds(5)));
//   faults.Release("messages.Append");
//
// Methods are named "<sub-store>.<Method>" with the accessor's name:
// "users.Get", "groups.ListMembers", "conversations.MarkRead", and
// "store.Ping" for Store::Ping. Arming an unknown name is a test failure.
//
// What an armed call does:
//   - a failure is not forwarded: nothing reaches the real store, and the
//     callback gets the status from the fault thread (never inline);
//   - a delay or hold forwards the call at once (so the real store orders it
//     where it was made) and hands its result to the callback later, from
//     the fault thread: after the delay, or when the test calls Release;
//   - a failure may be delayed or held too: it then answers late.
// Faults apply to the next `times` calls of the method, or to every call.
//
// Thread-safe: arm, release and count from any thread while calls run.
// Drain() (and Close() and the destructor) disarms everything and delivers
// every pending result before returning; call it before destroying what the
// callbacks point into. Does not own the real store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "store/store.h"

namespace mpim::testing {

class FaultStore final : public store::Store {
 public:
  // Every call of the armed method (as `times`).
  static constexpr int kEveryCall = -1;

  struct Fault {
    absl::Status status = absl::OkStatus();  // not OK: the call fails with it
    int times = 1;                           // calls it applies to, or kEveryCall
    std::chrono::milliseconds delay{0};      // the result comes this much later
    bool hold = false;                       // the result waits for Release
  };

  explicit FaultStore(store::Store& base);
  ~FaultStore() override;
  FaultStore(const FaultStore&) = delete;
  FaultStore& operator=(const FaultStore&) = delete;

  // Arms `method` (replacing what it was armed with).
  void Arm(const std::string& method, Fault fault);
  void FailNext(const std::string& method, int times = 1,
                absl::Status status = absl::UnavailableError("injected fault"));
  void FailAlways(const std::string& method,
                  absl::Status status = absl::UnavailableError("injected fault"));
  void DelayNext(const std::string& method, std::chrono::milliseconds delay, int times = 1);
  void HoldNext(const std::string& method, int times = 1);
  // Later calls of `method` (or of every method) are forwarded untouched.
  // Results already delayed or held stay so.
  void Disarm(const std::string& method);
  void DisarmAll();

  // Hands up to `max` held results of `method` to their callbacks (oldest
  // first, from the fault thread); returns how many.
  int Release(const std::string& method, int max = INT32_MAX);
  // Waits until `n` results of `method` are held; false at the timeout.
  [[nodiscard]] bool WaitHeld(const std::string& method, int n, std::chrono::milliseconds timeout);
  // Calls of `method` made so far (armed or not).
  int64_t Calls(const std::string& method) const;
  // Waits until `n` calls of `method` were made; false at the timeout.
  [[nodiscard]] bool WaitCalls(const std::string& method, int64_t n,
                               std::chrono::milliseconds timeout);
  // Disarms everything, releases every held result and waits until every
  // delayed one has been handed to its callback.
  void Drain();

  // store::Store.
  store::UserStore& users() override;
  store::SessionStore& sessions() override;
  store::FriendStore& friends() override;
  store::GroupStore& groups() override;
  store::ConversationStore& conversations() override;
  store::MessageStore& messages() override;
  store::SearchStore& search() override;
  store::JobStore& jobs() override;
  void Ping(store::DoneCallback done) override;
  // Drains, then closes the real store.
  void Close() override;

  // Runs one intercepted call: `start(callback)` forwards it to the real
  // store. For the sub-store decorators (fault_store.cc).
  template <typename R, typename Start>
  void Intercept(std::string_view sub, std::string_view method, absl::AnyInvocable<void(R) &&> done,
                 Start start);

 private:
  using Completion = absl::AnyInvocable<void() &&>;
  using TimePoint = std::chrono::steady_clock::time_point;
  // What to do with one call, decided (and the call counted) under mu_.
  struct Action {
    absl::Status status;
    std::chrono::milliseconds delay{0};
    bool hold = false;
    bool Late() const { return hold || delay.count() > 0; }
  };
  Action Take(const std::string& method);
  // Schedules a result: held under `method`, or due after the delay.
  void Later(const std::string& method, const Action& action, Completion completion);
  void Run();

  store::Store& base_;
  struct Subs;
  std::unique_ptr<Subs> subs_;

  mutable std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::map<std::string, Fault> armed_;
  std::map<std::string, int64_t> calls_;
  std::map<std::string, std::deque<Completion>> held_;
  std::multimap<TimePoint, Completion> due_;
  int running_ = 0;  // completions being run by the fault thread
  bool stopping_ = false;
  std::thread thread_;  // the fault thread: runs due completions
};

template <typename R, typename Start>
void FaultStore::Intercept(std::string_view sub, std::string_view method,
                           absl::AnyInvocable<void(R) &&> done, Start start) {
  std::string name = std::string(sub) + "." + std::string(method);
  Action action = Take(name);
  if (!action.status.ok()) {
    Later(name, action, [done = std::move(done), r = R(action.status)]() mutable {
      std::move(done)(std::move(r));
    });
    return;
  }
  if (!action.Late()) return start(std::move(done));
  start(absl::AnyInvocable<void(R) &&>([this, name, action, done = std::move(done)](R r) mutable {
    Later(name, action,
          [done = std::move(done), r = std::move(r)]() mutable { std::move(done)(std::move(r)); });
  }));
}

}  // namespace mpim::testing
