// Delivered cursors (every session's cumulative `ack`) kept in memory and
// written to the store in batches: an ack costs a map update instead of a
// store write, and each (session, conversation) is written at most once per
// interval, all of them in one store write (MarkDeliveredMany).
//
// What a crash loses: the cursor advances of the last interval, never a
// message. A session that reconnects after a crash may then be told about
// (and re-sent) messages it had acked: at-least-once delivery, which clients
// dedup by (conv_id, seq). Stop() writes what is pending, so a clean shutdown
// loses nothing.
//
// Readers of the cursors (hello's pending list) must see the latest value:
// take Snapshot(session) *before* reading the store, then Overlay() the
// result. A cursor leaves memory only after its write has committed, so
// every value is either in the snapshot or in what the store read sees.
//
// Thread-safe. One flusher thread between Start() and Stop().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "store/conversation_store.h"

namespace mpim::service {

class DeliveredCursors {
 public:
  // A session's cursors not yet written: conv_id -> delivered seq.
  using SessionCursors = std::unordered_map<std::string, int64_t>;

  DeliveredCursors(store::ConversationStore& store, std::chrono::milliseconds interval)
      : store_(store), interval_(interval) {}
  ~DeliveredCursors() { Stop(); }

  // Starts the flusher thread (writes every `interval`).
  void Start();
  // Stops the flusher and writes what is pending (waits for the store).
  // Later acks stay in memory only. Idempotent.
  void Stop();

  // Moves the cursor forward (lower values are ignored).
  void Advance(int64_t session_id, const std::string& conv_id, int64_t seq);

  // The session's cursors that a store read may not see yet.
  SessionCursors Snapshot(int64_t session_id) const;
  // Applies `cursors` to a pending list read from the store after the
  // snapshot was taken: raises delivered_seq, and drops conversations with
  // nothing above the cursor.
  static void Overlay(const SessionCursors& cursors,
                      std::vector<store::PendingConversation>& pending);

  // Writes what is pending now and waits for the write. On failure the
  // cursors stay pending (retried by the next flush).
  core::Status Flush();

 private:
  using BySession = std::unordered_map<int64_t, SessionCursors>;
  static void Raise(SessionCursors& into, const std::string& conv_id, int64_t seq);
  void Run();

  store::ConversationStore& store_;
  const std::chrono::milliseconds interval_;

  mutable std::mutex mu_;  // guards pending_ and writing_
  BySession pending_;      // acked since the last flush began
  BySession writing_;      // being written by the flush under way

  std::mutex flush_mu_;  // one flush at a time

  std::mutex run_mu_;  // guards running_ (and the flusher's wake-ups)
  std::condition_variable run_cv_;
  bool running_ = false;
  std::thread flusher_;
};

}  // namespace mpim::service
