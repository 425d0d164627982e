// N io threads, each running its own asio::io_context (one loop per thread,
// as in muduo). A connection lives on one context for its whole life, so its
// state needs no lock; other threads post to its executor.
//
// Start() once, from the main thread; Stop() (or the destructor) stops every
// loop and joins the threads. Next() is thread-safe (round robin).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>
#include <vector>

namespace mpim::net {

class IoPool {
 public:
  // threads == 0: one per core.
  explicit IoPool(size_t threads);
  ~IoPool();

  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  void Start();
  void Stop();

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& At(size_t i) { return *contexts_[i]; }
  boost::asio::io_context& Next();

 private:
  using WorkGuard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;

  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<WorkGuard> guards_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
};

}  // namespace mpim::net
