// The frames one WebSocket session owes its client, and the qos 1 messages
// it sent that the client has not acked yet (protocol.md section 3,
// "Ordering and delivery guarantees"):
//   - replies leave before every event; events by priority (urgent, high,
//     normal, low), but a frame of a conversation never overtakes an earlier
//     frame of the same conversation (it takes at most their priority);
//   - a qos 1 msg frame, once written, stays on its conversation's unacked
//     list until an ack covers it; it is queued again (as a plain normal
//     frame) once ack_timeout_ms passed both since it was sent and since the
//     conversation's last ack that moved it on;
//   - bytes() counts frames waiting plus frames unacked: the owner closes
//     the session (4008) when an Enqueue or Resend says it is over its bound.
//
// The owner keeps one Stream per conversation (its share of the queue:
// frames waiting, unacked list, ack timing) and names it in the frames it
// queues; a Stream must outlive the frames that name it (Clear() or
// DropEvents() first). Nothing here reads a clock unless given one, writes
// anywhere but to the connection given to Pump, or counts metrics (Pump and
// Resend return counts for that).
//
// Threading: not thread-safe; the session's io thread.
#pragma once

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/fifo.h"
#include "net/websocket.h"
#include "service/deliverer.h"

namespace mpim::gateway {

class OutboundQueue {
 public:
  // One conversation's share: its frames waiting and its unacked list.
  class Stream {
   public:
    size_t queued() const { return static_cast<size_t>(queued_); }
    size_t unacked() const { return unacked_.size(); }

   private:
    friend class OutboundQueue;
    struct Unacked {
      int64_t seq;
      std::shared_ptr<const std::string> frame;
      int64_t sent_ms;
    };
    int queued_ = 0;  // frames of this conversation waiting in the queues
    int queued_min_priority_ = 3;
    core::Fifo<Unacked> unacked_;
    // The last ack that moved the conversation on: a frame is re-sent only
    // once neither it was sent nor an ack came within ack_timeout_ms.
    int64_t last_ack_ms_ = 0;
    // No entry of `unacked_` is due for re-sending before this: Resend skips
    // the list until then (it can hold thousands of frames).
    int64_t resend_due_ms_ = INT64_MAX;
  };

  // A frame to write. `text` is shared (a fan-out's sessions hold one string).
  struct Frame {
    std::shared_ptr<const std::string> text;
    Stream* stream = nullptr;  // the conversation of a msg frame; null for others
    int64_t seq = 0;           // msg frames: for the unacked list
    bool qos1 = false;         // kept unacked once written (needs `stream`)
    bool may_wait = false;     // OutMessage::may_wait
  };

  // What one Pump wrote.
  struct Pumped {
    uint64_t frames = 0;
    uint64_t bytes = 0;
    bool refused = false;  // the connection refused a write (closing)
  };

  // Queues an event frame by `priority` (a frame of a stream at most at the
  // priority of that stream's frames still waiting). Returns false when
  // bytes() is now above `max_bytes` with more than one frame waiting: a
  // slow consumer, to be closed (the frame is queued all the same).
  [[nodiscard]] bool Enqueue(Frame frame, service::Priority priority, size_t max_bytes);
  // Queues a reply (or a frame that goes first, like a kick): before every
  // event. Returns false as Enqueue does.
  [[nodiscard]] bool EnqueueReply(std::shared_ptr<const std::string> text, size_t max_bytes);

  // Writes waiting frames to `conn` in order while it is not writing() and
  // has under 64 KiB buffered, stopping at the first refused write. Written
  // qos 1 frames join their stream's unacked list, sent at `clock`'s steady
  // time (read once, only then); due for re-sending ack_timeout_ms later.
  Pumped Pump(net::WsConnection& conn, const core::Clock& clock, int64_t ack_timeout_ms);

  // The client has every message of `stream` up to `seq`: drops them from
  // the unacked list. When that dropped any, the stream's timer starts over
  // at `clock`'s steady time (read only then). Returns whether it did.
  bool Ack(Stream& stream, int64_t seq, const core::Clock& clock, int64_t ack_timeout_ms);
  // Queues again (normal priority, as plain frames) the unacked frames of
  // `stream` due at `now_ms`; they stay on the list. Returns how many. The
  // owner then checks bytes() against its bound itself.
  size_t Resend(Stream& stream, int64_t now_ms, int64_t ack_timeout_ms);

  // Drops the waiting events, keeps the waiting replies (draining).
  void DropEvents();
  // Drops every waiting frame (closing, or a kick that goes alone).
  void Clear();

  size_t frames() const;  // frames waiting
  // Bytes of frames waiting plus bytes of frames unacked.
  size_t bytes() const { return queued_bytes_ + unacked_bytes_; }

 private:
  static constexpr size_t kReplyQueue = 4;
  // Queues `frame` in `queues_[queue]`; false when over `max_bytes` (see Enqueue).
  bool Push(size_t queue, Frame frame, size_t max_bytes);
  // Forgets the frames of queues_[queue] (their bytes and stream counts).
  void Drop(size_t queue);

  std::array<core::Fifo<Frame>, 5> queues_;  // urgent..low by priority, then [4] replies
  size_t queued_bytes_ = 0;
  size_t unacked_bytes_ = 0;
};

}  // namespace mpim::gateway
