// A server-side WebSocket connection (RFC 6455, framing of its own on an
// Asio socket). The HTTP server (Beast) parses the upgrade request and hands
// it to the application's accept function, which installs a WsHandler; the
// connection then answers the handshake and reads frames.
//
// Threading: a connection lives on one io thread. Every method except Post()
// and id() must be called on that thread; handlers are called on it.
// Heartbeats: one ticker per io thread (every kTickMs) drives pings, the idle
// timeout and the handler's OnTick, instead of a timer per connection.
//
// Writes are coalesced: Write() appends a frame to the connection's buffer,
// and the buffer goes to the socket in one write at the end of the io
// thread's current turn, so the frames a handler writes in one go (and
// those of every event handled meanwhile) share one system call. When the
// socket cannot take everything, writing() is true until it can; then
// OnWritable() is called. Queueing, priorities and bounds are the
// handler's business: it should stop writing while writing() is true.
//
// Memory: an idle connection holds no read or write buffer; bytes of an
// incomplete frame and fragments of a message are kept only while one is
// arriving. Text is handed to the handler as it came: UTF-8 is the JSON
// parser's to check (protocol.md calls it invalid_argument, not a close).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/any_invocable.h"
#include "net/http.h"

namespace mpim::net {

inline constexpr int64_t kTickMs = 250;

class WsHandler {
 public:
  virtual ~WsHandler() = default;
  virtual void OnOpen() = 0;                       // handshake done
  virtual void OnText(std::string_view text) = 0;  // one whole text message
  virtual void OnBinary() = 0;                     // a binary message (ignored content)
  virtual void OnWritable() = 0;                   // written out; room for more
  virtual void OnTick(int64_t now_ms) = 0;         // steady clock, every kTickMs
  // The server is draining: close with `code` once what is owed is out.
  virtual void OnDrain(uint16_t code, std::string_view reason) = 0;
  virtual void OnClosed() = 0;  // gone; no calls after this
};

struct WsOptions {
  uint64_t max_message_bytes = 131072;  // larger: close 1009
  int64_t ping_interval_ms = 25000;
  int64_t idle_timeout_ms = 60000;  // nothing received (frames, pongs): close 1001
  // Frames written with `may_wait` go out within this long rather than at
  // the end of the turn, so that several share one write (0: no waiting).
  int64_t coalesce_ms = 0;
};

class WsConnection {
 public:
  virtual ~WsConnection() = default;

  // Process-wide unique id of this socket.
  virtual uint64_t id() const = 0;
  // Identifies the io thread the connection lives on: connections with the
  // same loop() can be served by one posted task.
  virtual const void* loop() const = 0;
  // The upgrade request (headers, query, remote address). Valid until the
  // handler's OnOpen returns; empty afterwards (idle sessions keep none).
  virtual const HttpRequest& request() const = 0;

  virtual void SetHandler(std::shared_ptr<WsHandler> handler) = 0;
  // Queues `text` as one text message (copied). False (nothing done) once
  // the connection is closing. With `may_wait` the write may be held up to
  // WsOptions::coalesce_ms to share a system call with later frames (any
  // frame written without it flushes everything at the end of the turn).
  virtual bool Write(std::string_view text, bool may_wait = false) = 0;
  // True while the socket is full and bytes wait for it.
  virtual bool writing() const = 0;
  // Bytes accepted by Write and not yet written to the socket.
  virtual size_t buffered() const = 0;
  virtual bool closing() const = 0;
  // Starts the closing handshake with `code` after the frames already
  // written; frames the handler still queues are its own to drop. Idempotent.
  virtual void Close(uint16_t code, std::string_view reason) = 0;

  // Asks the handler to finish what it owes and close with `code` (its
  // OnDrain); closes at once when there is no open handler.
  virtual void Drain(uint16_t code, std::string_view reason) = 0;

  // Ends the connection now, without a closing handshake: the socket is
  // closed and the handler gets OnClosed. For a server whose drain deadline
  // passed (so that nothing is left holding a session when it stops).
  virtual void Abort() = 0;

  // Runs `fn` on the connection's io thread. Thread-safe.
  virtual void Post(absl::AnyInvocable<void()> fn) = 0;

  // The client's message just read gets no answer: acknowledge it at the
  // TCP level now (TCP_QUICKACK) instead of after the kernel's delayed-ACK
  // timer (up to 40 ms). A client without TCP_NODELAY holds its next small
  // frame until that acknowledgement arrives. On the io thread.
  virtual void AcknowledgeNow() {}
};

// Called on the io thread when an upgrade arrives, before the handshake; it
// must call SetHandler. The handshake starts when it returns.
using WsAcceptFn = std::function<void(std::shared_ptr<WsConnection>)>;

}  // namespace mpim::net
