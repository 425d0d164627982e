#include "gateway/outbound_queue.h"

#include <algorithm>

namespace mpim::gateway {
namespace {

// Queue index for a priority: urgent first (0) .. low last (3).
size_t QueueOf(service::Priority p) { return 3 - static_cast<size_t>(p); }

}  // namespace

bool OutboundQueue::Enqueue(Frame frame, service::Priority priority, size_t max_bytes) {
  int prio = static_cast<int>(priority);
  if (frame.stream != nullptr) {
    // Never ahead of an earlier frame of the same conversation: a frame
    // takes at most the priority of the ones of its conversation still queued.
    Stream& s = *frame.stream;
    if (s.queued_ > 0) prio = std::min(prio, s.queued_min_priority_);
    s.queued_min_priority_ = prio;
    ++s.queued_;
  }
  return Push(QueueOf(static_cast<service::Priority>(prio)), std::move(frame), max_bytes);
}

bool OutboundQueue::EnqueueReply(std::shared_ptr<const std::string> text, size_t max_bytes) {
  return Push(kReplyQueue, Frame{std::move(text)}, max_bytes);
}

bool OutboundQueue::Push(size_t queue, Frame frame, size_t max_bytes) {
  queued_bytes_ += frame.text->size();
  queues_[queue].push_back(std::move(frame));
  // One frame alone is not a backlog, however large.
  return bytes() <= max_bytes || frames() <= 1;
}

OutboundQueue::Pumped OutboundQueue::Pump(net::WsConnection& conn, const core::Clock& clock,
                                          int64_t ack_timeout_ms) {
  // Frames go to the connection's buffer, which writes them out together at
  // the end of this turn; a full socket (writing()) stops the pump until
  // the owner pumps again. Each pass hands over at most kWriteBatchBytes.
  constexpr size_t kWriteBatchBytes = 64 * 1024;
  int64_t now = 0;  // read once, when a qos 1 frame goes out
  Pumped out;
  while (!conn.writing() && conn.buffered() < kWriteBatchBytes) {
    Frame* next = nullptr;
    size_t from = 0;
    for (size_t q : {kReplyQueue, size_t{0}, size_t{1}, size_t{2}, size_t{3}}) {
      if (!queues_[q].empty()) {
        next = &queues_[q].front();
        from = q;
        break;
      }
    }
    if (next == nullptr) break;
    Frame f = std::move(*next);
    queues_[from].pop_front();
    // The string lives on in the unacked list (a qos 1 frame takes the
    // pointer over: no reference count traffic) or in `f`.
    const std::string& text = *f.text;
    queued_bytes_ -= text.size();
    ++out.frames;
    out.bytes += text.size();
    if (f.stream != nullptr) {
      Stream& s = *f.stream;
      --s.queued_;
      if (f.qos1) {
        if (now == 0) now = clock.SteadyMs();
        unacked_bytes_ += text.size();
        s.unacked_.push_back(Stream::Unacked{f.seq, std::move(f.text), now});
        s.resend_due_ms_ = std::min(s.resend_due_ms_, now + ack_timeout_ms);
      }
    }
    if (!conn.Write(text, f.may_wait)) {
      out.refused = true;
      break;
    }
  }
  return out;
}

bool OutboundQueue::Ack(Stream& s, int64_t seq, const core::Clock& clock, int64_t ack_timeout_ms) {
  bool progress = false;
  while (!s.unacked_.empty() && s.unacked_.front().seq <= seq) {
    unacked_bytes_ -= s.unacked_.front().frame->size();
    s.unacked_.pop_front();
    progress = true;
  }
  if (progress) {
    // What is left went out before now: none is due before this.
    s.last_ack_ms_ = clock.SteadyMs();
    s.resend_due_ms_ = s.unacked_.empty() ? INT64_MAX : s.last_ack_ms_ + ack_timeout_ms;
  }
  return progress;
}

size_t OutboundQueue::Resend(Stream& s, int64_t now_ms, int64_t ack_timeout_ms) {
  if (now_ms < s.resend_due_ms_) return 0;
  size_t resent = 0;
  s.resend_due_ms_ = INT64_MAX;
  for (Stream::Unacked& u : s.unacked_) {
    if (now_ms - std::max(u.sent_ms, s.last_ack_ms_) >= ack_timeout_ms) {
      u.sent_ms = now_ms;
      // Re-sent as a plain frame: it stays in the unacked list as it is.
      queues_[QueueOf(service::Priority::kNormal)].push_back(Frame{u.frame});
      queued_bytes_ += u.frame->size();
      ++resent;
    }
    s.resend_due_ms_ =
        std::min(s.resend_due_ms_, std::max(u.sent_ms, s.last_ack_ms_) + ack_timeout_ms);
  }
  return resent;
}

void OutboundQueue::Drop(size_t queue) {
  for (const Frame& f : queues_[queue]) {
    queued_bytes_ -= f.text->size();
    if (f.stream != nullptr) --f.stream->queued_;
  }
  queues_[queue].clear();
}

void OutboundQueue::DropEvents() {
  for (size_t q = 0; q < kReplyQueue; ++q) Drop(q);
}

void OutboundQueue::Clear() {
  for (size_t q = 0; q < queues_.size(); ++q) Drop(q);
}

size_t OutboundQueue::frames() const {
  size_t n = 0;
  for (const auto& q : queues_) n += q.size();
  return n;
}

}  // namespace mpim::gateway
