// Feeds the full-text index off the send path: sends hand their text here
// (memory only, O(1)), and a background thread writes batches to the store
// every kFlushMs. Index writes are group-committed like any other write.
//
// Loss on a crash: at most the last kFlushMs of index entries (the messages
// themselves are durable). Bounded: beyond kMaxPending queued documents new
// ones are dropped and counted (mpim_index_dropped_total).
//
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "store/store.h"

namespace mpim::service {

class Indexer {
 public:
  explicit Indexer(store::Store& store) : store_(store) {}
  ~Indexer() { Stop(); }

  void Start();
  // Flushes what is queued, then stops. Idempotent.
  void Stop();
  // The searchable text of a message: text messages only.
  void Add(const store::Message& m);

  static constexpr int64_t kFlushMs = 50;
  static constexpr size_t kMaxPending = 100000;
  static constexpr size_t kBatch = 500;

 private:
  void Run();
  void Flush(std::deque<store::SearchDocument>& docs);

  store::Store& store_;
  std::thread thread_;
  std::mutex mu_;  // guards pending_
  std::condition_variable cv_;
  std::deque<store::SearchDocument> pending_;
  std::atomic<bool> running_{false};
};

}  // namespace mpim::service
