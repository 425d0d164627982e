// Feeds the full-text index off the send path: sends hand their text here
// (memory only, O(1)), and a background thread writes batches to the store
// every kFlushMs. Index writes are group-committed like any other write.
//
// Nothing stays unindexed for good when the process dies: on start, the
// thread first catches up, indexing every text message the index lacks from
// kCatchUpWindowMs before the newest indexed one on (a crash loses at most
// the last kFlushMs of queued entries; the messages themselves are durable).
// A batch the store refuses (unavailable) is queued again and retried.
// Bounded: beyond kMaxPending queued documents new ones are dropped and
// counted (mpim_index_dropped_total); the next start's catch-up indexes
// those within its window.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
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
  // The document of a text message with a non-empty `text`; nullopt else.
  static std::optional<store::SearchDocument> DocumentOf(const store::Message& m);

  static constexpr int64_t kFlushMs = 50;
  static constexpr size_t kMaxPending = 100000;
  static constexpr size_t kBatch = 500;
  // How far before the newest indexed message the catch-up looks (commits
  // do not follow msg_id order exactly; in a cluster, another node may have
  // indexed past one that died).
  static constexpr int64_t kCatchUpWindowMs = 10 * 60 * 1000;
  static constexpr int64_t kRetryMs = 1000;

 private:
  void Run();
  // Indexes what the index lacks (see above); returns when done or stopped.
  void CatchUp();
  // Writes the documents; those the store refused go back to the queue's
  // front. False if it refused any.
  bool Flush(std::deque<store::SearchDocument>& docs);
  // Waits up to `ms` or until Stop; false once stopping.
  bool Sleep(int64_t ms);

  store::Store& store_;
  std::thread thread_;
  std::mutex mu_;  // guards pending_
  std::condition_variable cv_;
  std::deque<store::SearchDocument> pending_;
  std::atomic<bool> running_{false};
};

}  // namespace mpim::service
