// A fixed pool of threads for blocking work (SQLite, the MySQL C API,
// password hashing) that must never run on an io thread.
//
// Thread-safe: Submit may be called from any thread. Tasks run in FIFO order
// across the pool's threads; a task must not block on another task of the
// same pool. The destructor (or Shutdown) runs every task already submitted,
// then joins the threads; Submit after Shutdown returns false and drops the
// task.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"

namespace mpim::core {

class WorkerPool {
 public:
  // `name` shows in thread names (truncated to 15 chars by the OS).
  WorkerPool(std::string name, size_t threads);
  ~WorkerPool();

  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false if the pool is shut down.
  bool Submit(absl::AnyInvocable<void()> task);

  // Finishes queued tasks and joins the threads. Idempotent.
  void Shutdown();

  size_t size() const { return threads_.size(); }
  // Tasks queued and not yet started.
  size_t pending() const;

 private:
  void Run();

  const std::string name_;
  mutable std::mutex mu_;  // guards queue_ and stopping_
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace mpim::core
