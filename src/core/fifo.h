// A FIFO queue on a vector that allocates nothing while empty (libstdc++'s
// std::deque allocates about 600 bytes even when empty, and an idle
// WebSocket session holds several queues). Amortized O(1) push and pop;
// memory is given back when the queue drains. Not thread-safe.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

namespace mpim::core {

template <typename T>
class Fifo {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  T& front() { return items_[head_]; }
  const T& front() const { return items_[head_]; }

  void push_back(T value) { items_.push_back(std::move(value)); }

  void pop_front() {
    items_[head_] = T();  // release what it holds now
    ++head_;
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }

  void clear() {
    std::vector<T>().swap(items_);
    head_ = 0;
  }

  auto begin() { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() { return items_.end(); }
  auto begin() const { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() const { return items_.end(); }

 private:
  std::vector<T> items_;
  size_t head_ = 0;
};

}  // namespace mpim::core
