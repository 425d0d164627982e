// A small blocking WebSocket client for tests and tools (mpim-bench): one
// connection per object, Beast over a plain TCP socket.
//
// Every call takes a deadline and never blocks past it. Reads are
// asynchronous underneath: a Receive() that times out leaves its read
// pending, and the next Receive() picks it up, so a timeout never loses or
// tears a frame. Pings from the server are answered by Beast while a read
// runs (inside Receive and the Send calls); a client that stops calling
// Receive stops reading its socket, which is how tests play a slow consumer.
//
// Not thread-safe: one client per thread. Nothing is shared between clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mpim::client {

using WsClock = std::chrono::steady_clock;

struct WsOptions {
  // SO_RCVBUF set before connecting (0: the system default). A small value
  // makes a client that stops reading back up the server's queue quickly.
  int receive_buffer_bytes = 0;
  std::chrono::milliseconds handshake_timeout = std::chrono::seconds(10);
  // Largest message accepted from the server.
  uint64_t max_message_bytes = 64u << 20;
};

// What one Receive() produced.
struct WsFrame {
  enum Kind {
    kText,     // `data` holds a text message
    kBinary,   // `data` holds a binary message
    kClosed,   // the server closed with a close frame: `close_code`, `reason`
    kTimeout,  // nothing complete before the deadline; the read stays pending
    kError,    // the connection failed without a close frame: `error`
  };
  Kind kind = kError;
  std::string data;
  int close_code = 0;
  std::string reason;
  std::string error;
};

// The HTTP side of the upgrade, available after Connect().
struct WsHandshake {
  int status = 0;  // 101 on success; the server's status when it declined
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
};

class WsClient {
 public:
  explicit WsClient(WsOptions options = {});
  ~WsClient();  // closes the socket abruptly (no close handshake)

  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // TCP connect and WebSocket upgrade of `target` ("/ws?token=..."), with
  // extra request headers (e.g. {"Authorization", "Bearer ..."}), within
  // options.handshake_timeout. unavailable on a transport failure or
  // timeout; failed_precondition when the server declined the upgrade
  // (handshake().status says how). Call once per client.
  core::Status Connect(const std::string& host, uint16_t port, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers = {});

  // One whole message (a single unfragmented frame) before `deadline`.
  // unavailable when the connection is gone or the write did not finish.
  core::Status SendText(const std::string& text, WsClock::time_point deadline);
  core::Status SendText(const std::string& text) { return SendText(text, DefaultDeadline()); }
  core::Status SendBinary(const std::string& bytes, WsClock::time_point deadline);
  core::Status SendBinary(const std::string& bytes) { return SendBinary(bytes, DefaultDeadline()); }
  // Raw bytes on the TCP socket, bypassing WebSocket framing (a client frame
  // must be masked; this is for hostile tests that build their own frames,
  // see EncodeClientFrame). A failed raw write leaves the WebSocket state
  // alone, so Receive() can still read a close frame the server sent.
  core::Status SendRaw(const std::string& bytes, WsClock::time_point deadline);
  core::Status SendRaw(const std::string& bytes) { return SendRaw(bytes, DefaultDeadline()); }

  // One masked client frame (RFC 6455 section 5.2) with FIN set:
  // `opcode` 1 text, 2 binary, 8 close, 9 ping.
  static std::string EncodeClientFrame(int opcode, const std::string& payload);

  // The next message, or the close / failure / timeout. Once the connection
  // has closed or failed, every later call returns that same result.
  WsFrame Receive(WsClock::time_point deadline);
  WsFrame Receive(std::chrono::milliseconds timeout) { return Receive(WsClock::now() + timeout); }

  // Sends a close frame with `code` and waits (until `deadline`) for the
  // server's close; the connection is closed afterwards either way.
  core::Status Close(int code, const std::string& reason, WsClock::time_point deadline);
  // Drops the TCP connection without a close frame (a crashed client).
  void Abort();

  bool is_open() const;
  const WsHandshake& handshake() const;
  // WebSocket pings received from the server so far (answered automatically).
  int pings_received() const;

 private:
  static WsClock::time_point DefaultDeadline() { return WsClock::now() + std::chrono::seconds(10); }

  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpim::client
