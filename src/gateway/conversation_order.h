// One conversation's msg events for one WebSocket session, put in seq order
// (protocol.md section 3, "Ordering and delivery guarantees"): a message
// that arrives ahead of its predecessor is held until the gap closes, or
// until gateway.gap_wait_ms passed; then the owner asks the store for the
// missing ones (a fill) and hands the answer back here. What the store does
// not have either is skipped.
//
// Pure logic: no I/O, no clock. Time comes in as steady milliseconds, and
// what is in order comes out through `emit`, called synchronously, in seq
// order, with each message to queue (held messages are released through it
// too). The owner keeps one per conversation.
//
// Threading: not thread-safe; the session's io thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "gateway/out_message.h"

namespace mpim::gateway {

class ConversationOrder {
 public:
  // Called for each message now in order, to be queued.
  using Emit = absl::FunctionRef<void(const OutMessage&)>;

  // The store range a fill asks for: the `limit` messages after `after_seq`.
  struct FillRange {
    int64_t after_seq = 0;
    int limit = 1;
  };

  // Goes on live after `last_seq`: the hello's, for a listed conversation;
  // the store's start (ConversationService::StartSeq) for any other, asked
  // when its first message reaches the socket. Until then every message is
  // held, so a conversation never starts from whichever push came first
  // (pushes from different senders' nodes cross all the time).
  void StartAfter(int64_t last_seq) {
    started_ = true;
    starting_ = false;
    last_seq_ = std::max(last_seq_, last_seq);
  }
  // The highest seq handed on; 0 before the first.
  int64_t last_seq() const { return last_seq_; }
  // Messages (and own-message notes) waiting ahead of a gap.
  size_t held() const { return held_.size(); }
  bool filling() const { return filling_; }
  bool started() const { return started_; }
  // True when the owner must ask for the start (then calls StartAsked()
  // and, with the answer, Start() or StartFailed()).
  bool NeedsStart() const { return !started_ && !starting_ && !held_.empty(); }
  void StartAsked() { starting_ = true; }
  // The start is known: drops what it covers, emits what follows it, and
  // holds the rest as a gap from `now_ms`.
  void Start(int64_t start_seq, int64_t now_ms, Emit emit);
  // The start could not be read: goes on from the first message held
  // (what precedes it is the client's to find with sync).
  void StartFailed(int64_t now_ms, Emit emit);

  // A pushed message. Emits it (and what it releases) when it is next;
  // drops it when already handed on; otherwise holds it (a gap starts at
  // `now_ms` if none was open). Before the start is known it is held.
  void Accept(const std::shared_ptr<const OutMessage>& msg, int64_t now_ms, Emit emit);
  // A message this session sent (it got the reply, not the event): counts
  // as handed on, so the next one is no gap.
  void NoteOwn(int64_t seq, int64_t now_ms, Emit emit);

  // True when messages have been held for `gap_wait_ms` and no fill runs.
  bool FillDue(int64_t now_ms, int64_t gap_wait_ms) const;
  // Marks a fill running and returns what it reads: the messages after
  // last_seq() up to the last held one (every gap between them in one
  // read), at most `page_max` (at least 1). Only when held() > 0.
  FillRange StartFill(int page_max);
  // The fill's read failed: the gap waits another gap_wait_ms from `now_ms`
  // and is filled again (nothing is skipped while the store may have it).
  void FillFailed(int64_t now_ms);
  // The fill's answer, ascending by seq (`has_more`: the store has more
  // after it). Emits its messages in order (a held copy where one was
  // pushed; not own ones), skips what the store did not have up to the
  // last message held when the fill began (what was held after it may
  // follow messages committed after the read: they get their own fill),
  // then releases what was held. Returns true when the page was full
  // (has_more) and ended before the gaps did: the owner fills again at once.
  [[nodiscard]] bool ApplyFill(const std::vector<std::shared_ptr<const OutMessage>>& fill,
                               bool has_more, int64_t now_ms, Emit emit);

 private:
  // Emits held messages from last_seq_ + 1 on while they follow each other.
  void ReleaseHeld(int64_t now_ms, Emit emit);

  int64_t last_seq_ = 0;  // highest seq handed on
  // Ahead of a gap; a null entry is this session's own message.
  std::map<int64_t, std::shared_ptr<const OutMessage>> held_;
  int64_t gap_since_ms_ = 0;
  bool filling_ = false;
  int fill_limit_ = 1;     // the running fill's page size
  int64_t fill_upto_ = 0;  // the last message held when the running fill began
  bool started_ = false;   // last_seq_ is the socket's start or later
  bool starting_ = false;  // the owner is reading the start
};

}  // namespace mpim::gateway
