// The `send` ops of one WebSocket session on their way to the message
// service (protocol.md section 3, `send`): stored in the order they
// arrived, yet pipelined. Up to kMaxInFlight are handed to the service at
// once, but the next one only once the one before has its place in the
// store (MessageService::Send's `ordered` callback, or its result); up to
// kMaxWaiting more wait here. It also counts the session's sends refused by
// the per-user rate (the 4029 rule) and names the refusal of sends still
// waiting when the session closes.
//
// Pure bookkeeping: the owner calls the service, takes the results, and
// tells the window (Start, Ordered, Finished). No I/O, no clock (time comes
// in as steady milliseconds).
//
// Threading: not thread-safe; the session's io thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/fifo.h"
#include "core/status.h"
#include "core/trace.h"
#include "service/message_service.h"

namespace mpim::gateway {

class SendWindow {
 public:
  static constexpr size_t kMaxWaiting = 1000;
  static constexpr int kMaxInFlight = 64;
  // Refused sends are counted over this window (and retry_after_ms of the
  // refusals while closing for it).
  static constexpr int64_t kStrikeWindowMs = 10000;

  struct Send {
    service::SendRequest request;
    std::optional<int64_t> rid;
    // When the frame was read (steady_clock, ns): only for the latency
    // histogram mpim_ws_send_seconds, whose buckets go below a millisecond.
    int64_t received_ns = 0;
    // The send's span (recording when traced): ends with its reply.
    std::shared_ptr<core::trace::Span> span;
  };

  // Queues `send` behind those waiting. OK, or rate_limited (retry_after_ms
  // 1000) when kMaxWaiting already wait: then nothing is queued.
  [[nodiscard]] core::Status Queue(Send send);

  // The next waiting send, if the window lets one go now: every send in
  // flight has its place and fewer than kMaxInFlight are in flight. The
  // owner then either Start()s it or refuses it (closing); until one or the
  // other it is neither waiting nor in flight.
  std::optional<Send> TakeNext();
  // The send just taken goes to the service: in flight, without its place.
  // Returns its number, for Ordered and Finished.
  uint64_t Start();
  // Send `number` has its place: the next may start. Returns true when that
  // opened the window (false when it was no longer the one holding it).
  bool Ordered(uint64_t number);
  // Send `number` has its result (ordered, if it was not): out of flight.
  void Finished(uint64_t number);

  // True while sends are waiting or in flight (their replies are owed).
  bool owed() const { return in_flight_ > 0 || !waiting_.empty(); }
  int in_flight() const { return in_flight_; }
  size_t waiting() const { return waiting_.size(); }

  // A send refused by the per-user rate at `now_ms`. Returns true when
  // `limit` or more were refused within kStrikeWindowMs (close with 4029).
  [[nodiscard]] bool Strike(int64_t now_ms, int64_t limit);

  // The answer to a send still waiting when the session closes: unavailable
  // when the server is restarting, else rate_limited (the session closes
  // for refused sends).
  static core::Status ClosingRefusal(bool restarting);

 private:
  core::Fifo<Send> waiting_;
  int in_flight_ = 0;
  uint64_t started_ = 0;
  // The last send started while it has no place yet (0: none); the next
  // waits for it, so the store takes them in arrival order.
  uint64_t unordered_ = 0;
  core::Fifo<int64_t> strikes_ms_;  // refused sends within the window
};

}  // namespace mpim::gateway
