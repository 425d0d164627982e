#include "gateway/conversation_order.h"

#include <algorithm>

namespace mpim::gateway {

bool ConversationOrder::AckedBeforeSocket(const OutMessage& msg, int64_t activated_wall_ms) {
  // A conversation the hello listed starts from its last_seq instead; in any
  // other one, the device had acked all there was when it connected.
  return msg.ts > 0 && msg.ts < activated_wall_ms - 2000;
}

void ConversationOrder::Accept(const std::shared_ptr<const OutMessage>& msg, int64_t now_ms,
                               int64_t activated_wall_ms, Emit emit) {
  if (last_seq_ != 0 && msg->seq <= last_seq_) return;  // already handed on
  if (last_seq_ == 0 && AckedBeforeSocket(*msg, activated_wall_ms)) return;
  if (last_seq_ == 0 || msg->seq == last_seq_ + 1) {
    last_seq_ = msg->seq;
    emit(*msg);
    ReleaseHeld(now_ms, emit);
    return;
  }
  if (held_.empty()) gap_since_ms_ = now_ms;
  held_.emplace(msg->seq, msg);
}

void ConversationOrder::NoteOwn(int64_t seq, int64_t now_ms, Emit emit) {
  // Never the socket's starting point: a message of another member stored
  // before it may still be on its way here (a fan-out job pushes after the
  // send's reply), and would then look delivered already.
  if (last_seq_ == 0 || seq <= last_seq_) return;
  if (seq == last_seq_ + 1) {
    last_seq_ = seq;
    return ReleaseHeld(now_ms, emit);
  }
  if (held_.empty()) gap_since_ms_ = now_ms;
  held_.emplace(seq, nullptr);  // known here: skipped when its turn comes
}

void ConversationOrder::ReleaseHeld(int64_t now_ms, Emit emit) {
  while (!held_.empty()) {
    auto it = held_.begin();
    if (it->first <= last_seq_) {
      held_.erase(it);
      continue;
    }
    if (it->first != last_seq_ + 1) break;
    auto msg = std::move(it->second);
    last_seq_ = it->first;
    held_.erase(it);
    if (msg) emit(*msg);
  }
  if (!held_.empty()) gap_since_ms_ = now_ms;
}

bool ConversationOrder::FillDue(int64_t now_ms, int64_t gap_wait_ms) const {
  return !held_.empty() && !filling_ && now_ms - gap_since_ms_ >= gap_wait_ms;
}

ConversationOrder::FillRange ConversationOrder::StartFill(int page_max) {
  filling_ = true;
  const int64_t missing = held_.begin()->first - last_seq_ - 1;
  return FillRange{last_seq_, std::max(static_cast<int>(std::min<int64_t>(missing, page_max)), 1)};
}

void ConversationOrder::FillFailed(int64_t now_ms) {
  filling_ = false;
  // The store did not answer (busy, failing disk): try again after another
  // gap_wait_ms rather than skip what it may still hold.
  gap_since_ms_ = now_ms;
}

bool ConversationOrder::ApplyFill(const std::vector<std::shared_ptr<const OutMessage>>& fill,
                                  bool has_more, int64_t now_ms, Emit emit) {
  filling_ = false;
  for (const auto& m : fill) {
    if (m->seq != last_seq_ + 1) continue;
    last_seq_ = m->seq;
    auto own = held_.find(m->seq);
    if (own != held_.end() && !own->second) continue;  // this session sent it
    emit(*m);
  }
  const bool gap_left = !held_.empty() && held_.begin()->first > last_seq_ + 1;
  // A full page taken whole stopped at page_max, not at the end of what the
  // store has: the rest of the gap is read next (each round moves on).
  const bool more = gap_left && has_more && !fill.empty() && fill.back()->seq == last_seq_;
  // Otherwise whatever is still missing was not in the store: skip past it
  // rather than stall the conversation (the client can sync).
  if (gap_left && !more) last_seq_ = held_.begin()->first - 1;
  ReleaseHeld(now_ms, emit);
  return more;
}

}  // namespace mpim::gateway
