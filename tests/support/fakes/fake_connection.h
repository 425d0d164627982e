// A net::WsConnection for gateway tests: records the frames written and the
// close, runs posted tasks only when the test says (RunPosted), and can play
// a full socket (`full`, `buffered_bytes`) or one that refuses writes. Its
// upgrade request carries `Authorization: Bearer t` unless SetToken("").
//
// Threading: one thread, the test's (it is also the "io thread": loop() is
// the connection itself). Post() may be called from the test thread only.
#pragma once

#include <boost/json/parse.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "net/websocket.h"

namespace mpim::testing {

class FakeConnection : public net::WsConnection {
 public:
  FakeConnection() { SetToken("t"); }

  // The upgrade request's bearer token; empty: no Authorization header.
  void SetToken(std::string_view token) {
    request_.headers.clear();
    if (!token.empty())
      request_.headers.emplace_back("authorization", "Bearer " + std::string(token));
  }

  uint64_t id() const override { return 7; }
  const void* loop() const override { return this; }
  const net::HttpRequest& request() const override { return request_; }
  void SetHandler(std::shared_ptr<net::WsHandler> handler) override { handler_ = handler; }
  // Records `text`; false (nothing recorded) when `refuse_writes`.
  bool Write(std::string_view text, bool may_wait) override {
    if (refuse_writes) return false;
    frames.emplace_back(text);
    waited.push_back(may_wait);
    return true;
  }
  bool writing() const override { return full; }
  size_t buffered() const override { return buffered_bytes; }
  bool closing() const override { return closed; }
  // Records the first close (later ones change nothing, as Close is idempotent).
  void Close(uint16_t code, std::string_view reason) override {
    ++close_calls;
    if (closed) return;
    closed = true;
    close_code = code;
    close_reason = std::string(reason);
  }
  void Drain(uint16_t code, std::string_view reason) override { Close(code, reason); }
  void Abort() override { closed = true; }
  void Post(absl::AnyInvocable<void()> fn) override { posted_.push_back(std::move(fn)); }

  // Runs the posted tasks (and those they post) in order.
  void RunPosted() {
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }
  // Destroys the posted tasks unrun, as a stopped io thread's are.
  void DropPosted() { posted_.clear(); }
  size_t posted() const { return posted_.size(); }

  // Each frame written as its op, with the seq of a msg event ("msg 12");
  // a reply as "reply" or, failed, "reply <error code>".
  std::vector<std::string> Ops() const {
    std::vector<std::string> out;
    for (const auto& f : frames) {
      boost::json::object o = boost::json::parse(f).as_object();
      std::string op(o.at("op").as_string());
      if (op == "msg") {
        const boost::json::value* seq = o.if_contains("seq");
        if (seq == nullptr) seq = &o.at("msg").as_object().at("seq");
        op += " " + std::to_string(seq->as_int64());
      } else if (op == "reply" && !o.at("ok").as_bool()) {
        op += " " + std::string(o.at("error").at("code").as_string());
      }
      out.push_back(op);
    }
    return out;
  }
  // Forgets the frames written so far.
  void ClearFrames() {
    frames.clear();
    waited.clear();
  }

  std::vector<std::string> frames;  // written, in order
  std::vector<bool> waited;         // each frame's may_wait
  bool full = false;                // writing(): the socket takes nothing now
  size_t buffered_bytes = 0;        // buffered()
  bool refuse_writes = false;       // Write() returns false
  bool closed = false;
  int close_calls = 0;  // Close() and Drain() calls, the first included
  std::optional<uint16_t> close_code;
  std::string close_reason;

 private:
  net::HttpRequest request_;
  std::weak_ptr<net::WsHandler> handler_;
  std::deque<absl::AnyInvocable<void()>> posted_;
};

}  // namespace mpim::testing
