#include "bus/dispatch.h"

#include <pthread.h>

#include <vector>

namespace mpim::bus::internal {

using Clock = std::chrono::steady_clock;

Dispatcher::Dispatcher(std::string name, size_t workers) : pool_(name, workers) {
  timer_thread_ = std::thread([this, name] {
    pthread_setname_np(pthread_self(), (name + "-timer").substr(0, 15).c_str());
    RunTimers();
  });
}

Dispatcher::~Dispatcher() { Stop(); }

bool Dispatcher::Post(Task task) { return pool_.Submit(std::move(task)); }

void Dispatcher::After(std::chrono::milliseconds delay, Task task) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    timers_.emplace(Clock::now() + delay, std::move(task));
  }
  cv_.notify_one();
}

void Dispatcher::Stop() {
  std::multimap<Clock::time_point, Task> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    dropped.swap(timers_);
  }
  cv_.notify_all();
  if (timer_thread_.joinable() && timer_thread_.get_id() != std::this_thread::get_id()) {
    timer_thread_.join();
  }
  dropped.clear();  // outside the lock: a task's captures may post
  pool_.Shutdown();
}

void Dispatcher::RunTimers() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    if (first->first > Clock::now()) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    Task task = std::move(first->second);
    timers_.erase(first);
    lock.unlock();
    task();
    task = nullptr;  // its captures go before the lock is taken again
    lock.lock();
  }
}

void Serial::Post(Task task) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(task));
    if (scheduled_) return;
    scheduled_ = true;
  }
  if (!dispatcher_->Post([self = shared_from_this()] { self->Drain(); })) {
    std::deque<Task> dropped;
    std::lock_guard lock(mu_);
    scheduled_ = false;
    dropped.swap(queue_);
  }
}

void Serial::Drain() {
  // A few tasks per turn, so that one busy subscription does not hold a
  // worker while others wait.
  constexpr int kTurn = 64;
  std::unique_lock lock(mu_);
  for (int i = 0; i < kTurn && !closed_ && !queue_.empty(); ++i) {
    Task task = std::move(queue_.front());
    queue_.pop_front();
    running_ = std::this_thread::get_id();
    lock.unlock();
    task();
    task = nullptr;
    lock.lock();
    running_ = std::thread::id();
    idle_.notify_all();
  }
  if (closed_ || queue_.empty()) {
    scheduled_ = false;
    return;
  }
  lock.unlock();
  if (!dispatcher_->Post([self = shared_from_this()] { self->Drain(); })) {
    lock.lock();
    scheduled_ = false;
  }
}

void Serial::Close() {
  std::deque<Task> dropped;
  {
    std::unique_lock lock(mu_);
    closed_ = true;
    dropped.swap(queue_);
    if (running_ != std::this_thread::get_id()) {
      idle_.wait(lock, [this] { return running_ == std::thread::id(); });
    }
  }
}

bool Serial::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

}  // namespace mpim::bus::internal
