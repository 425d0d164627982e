// The event loop a thread runs, if it runs one. Work that finishes on
// another thread for code on such a thread can be handed straight back to
// it, instead of to a thread of its own that would hand it on again (one
// wake-up less).
//
// An io thread (net::IoPool) names its loop for its whole life with a
// LoopScope; CurrentLoop() is null on every other thread.
#pragma once

#include "absl/functional/any_invocable.h"

namespace mpim::core {

class Loop {
 public:
  virtual ~Loop() = default;
  // Queues `fn` to run on the loop's thread; thread-safe. False (and `fn`
  // left untouched) once the loop has stopped: run it elsewhere. A function
  // still queued when the loop is destroyed is destroyed unrun.
  virtual bool Post(absl::AnyInvocable<void() &&>& fn) = 0;
};

// The calling thread's loop, or nullptr.
Loop* CurrentLoop();

// Names `loop` as the calling thread's loop until destroyed.
class LoopScope {
 public:
  explicit LoopScope(Loop* loop);
  ~LoopScope();
  LoopScope(const LoopScope&) = delete;
  LoopScope& operator=(const LoopScope&) = delete;

 private:
  Loop* previous_;
};

}  // namespace mpim::core
