// What both bus engines run handlers on: a Dispatcher (a few worker threads
// and one timer thread, owned by a bus) and a Serial per subscription or
// consumer, which runs that subscription's tasks one at a time, in the
// order they were posted, on the Dispatcher's workers.
//
// Threads: every method may be called from any thread. Tasks never run
// inline in Post/After and never under a lock of this file.
// Closing: Serial::Close returns once no task of it is running and none
// will run again (tasks still queued are dropped); from inside one of its
// own tasks it does not wait (that task is the one running). Dispatcher::Stop
// drops pending timers, runs the tasks already queued and joins the threads;
// after it, Post and After drop what they are given.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "absl/functional/any_invocable.h"
#include "core/worker_pool.h"

namespace mpim::bus::internal {

using Task = absl::AnyInvocable<void()>;

// Topic, stream, group and consumer names: 1 to 1,024 bytes.
inline bool ValidName(std::string_view name) { return !name.empty() && name.size() <= 1024; }

class Dispatcher {
 public:
  Dispatcher(std::string name, size_t workers);
  ~Dispatcher();  // Stop()

  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Runs `task` on a worker; false (task dropped) once stopped.
  bool Post(Task task);
  // Runs `task` on the timer thread after `delay` (it must be short: post
  // real work with Post). Dropped if the dispatcher stops first.
  void After(std::chrono::milliseconds delay, Task task);
  void Stop();  // idempotent; not from a task of this dispatcher

 private:
  void RunTimers();

  core::WorkerPool pool_;
  std::mutex mu_;  // guards timers_, stopping_
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, Task> timers_;
  bool stopping_ = false;
  std::thread timer_thread_;
};

class Serial : public std::enable_shared_from_this<Serial> {
 public:
  explicit Serial(std::shared_ptr<Dispatcher> dispatcher) : dispatcher_(std::move(dispatcher)) {}

  // Queues `task` after the ones already posted; dropped once closed.
  void Post(Task task);
  void Close();
  bool closed() const;
  const std::shared_ptr<Dispatcher>& dispatcher() const { return dispatcher_; }

 private:
  void Drain();

  std::shared_ptr<Dispatcher> dispatcher_;
  mutable std::mutex mu_;  // guards everything below
  std::condition_variable idle_;
  std::deque<Task> queue_;
  bool scheduled_ = false;  // a Drain is queued or running
  bool closed_ = false;
  std::thread::id running_;  // the thread running one of our tasks, if any
};

}  // namespace mpim::bus::internal
