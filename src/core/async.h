// Small helpers for callback-style asynchronous code.
#pragma once

#include <cstddef>
#include <memory>

#include "absl/functional/any_invocable.h"

namespace mpim::core {

// Runs body(i, next) for i = 0 .. n-1, one after another: each body calls
// next() exactly once when it is done (from any thread), and the following
// one starts. Then done() runs. The state lives as long as the loop (no
// self-reference to break). A body that calls next() synchronously recurses:
// keep n to what a stack holds (thousands).
template <typename Body>
void ForEachSequential(size_t n, Body body, absl::AnyInvocable<void() &&> done) {
  struct State {
    size_t n;
    Body body;
    absl::AnyInvocable<void() &&> done;
  };
  struct Step {
    static void Run(const std::shared_ptr<State>& s, size_t i) {
      if (i == s->n) {
        auto finish = std::move(s->done);
        std::move(finish)();
        return;
      }
      s->body(i, [s, i]() { Run(s, i + 1); });
    }
  };
  Step::Run(std::make_shared<State>(State{n, std::move(body), std::move(done)}), 0);
}

}  // namespace mpim::core
