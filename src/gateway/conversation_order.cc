#include "gateway/conversation_order.h"

#include <algorithm>

namespace mpim::gateway {

void ConversationOrder::Start(int64_t start_seq, int64_t now_ms, Emit emit) {
  StartAfter(start_seq);
  ReleaseHeld(now_ms, emit);
}

void ConversationOrder::StartFailed(int64_t now_ms, Emit emit) {
  Start(held_.empty() ? 0 : held_.begin()->first - 1, now_ms, emit);
}

void ConversationOrder::Accept(const std::shared_ptr<const OutMessage>& msg, int64_t now_ms,
                               Emit emit) {
  if (started_ && msg->seq <= last_seq_) return;  // already handed on
  if (started_ && msg->seq == last_seq_ + 1) {
    last_seq_ = msg->seq;
    emit(*msg);
    ReleaseHeld(now_ms, emit);
    return;
  }
  if (held_.empty()) gap_since_ms_ = now_ms;
  held_.emplace(msg->seq, msg);
}

void ConversationOrder::NoteOwn(int64_t seq, int64_t now_ms, Emit emit) {
  if (started_ && seq <= last_seq_) return;
  if (started_ && seq == last_seq_ + 1) {
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
  return started_ && !held_.empty() && !filling_ && now_ms - gap_since_ms_ >= gap_wait_ms;
}

ConversationOrder::FillRange ConversationOrder::StartFill(int page_max) {
  filling_ = true;
  // Up to the last message held, not the first: when held messages and
  // gaps alternate (a member's own sends, senders' nodes recovering one
  // after the other), one read closes them all instead of one gap per
  // gap_wait_ms.
  fill_upto_ = held_.rbegin()->first;
  const int64_t span = fill_upto_ - last_seq_;
  fill_limit_ = std::max(static_cast<int>(std::min<int64_t>(span, page_max)), 1);
  return FillRange{last_seq_, fill_limit_};
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
    if (m->seq <= last_seq_) continue;
    // What the page lacks before m is not in the store (seqs are dense):
    // skipped, as the client can sync.
    last_seq_ = m->seq;
    auto held = held_.find(m->seq);
    if (held == held_.end()) {
      emit(*m);
    } else if (held->second) {
      emit(*held->second);  // the pushed copy: its priority and qos
    }  // else this session sent it
  }
  ReleaseHeld(now_ms, emit);
  const bool gap_left = !held_.empty() && held_.begin()->first > last_seq_ + 1;
  // A full page stopped at fill_limit_, not at the end of what the store
  // has: the rest is read next (each round moves on).
  const bool more = gap_left && has_more && fill.size() >= static_cast<size_t>(fill_limit_);
  if (!more) {
    // A gap below a message held when the read started was in the store
    // when it read (a conversation's seqs commit in order), so what the page
    // lacks there is not in the store: skip past it rather than stall the
    // conversation (the client can sync). A gap above it may be a message
    // committed after the read and never pushed (its sender's node died
    // between commit and publish): it waits gap_wait_ms for a fill of its
    // own, which sees it.
    while (!held_.empty() && held_.begin()->first > last_seq_ + 1 &&
           held_.begin()->first <= fill_upto_) {
      last_seq_ = held_.begin()->first - 1;
      ReleaseHeld(now_ms, emit);
    }
  }
  return more;
}

}  // namespace mpim::gateway
