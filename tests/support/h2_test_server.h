// A real HTTP/2 server for tests and benchmarks of HTTP/2 clients (the APNs
// provider): nghttp2 over TLS 1.2+ with ALPN "h2" and a self-signed
// certificate for 127.0.0.1 and localhost it makes at start (its PEM in a
// temp file, ca_file(), for the client to trust), or cleartext HTTP/2 with
// prior knowledge. Listens on 127.0.0.1, a port chosen by the system.
//
// It records every request (headers, body, the connection it came on) and
// answers each as the handler says: at once, held until ReleaseHeld, by
// closing the connection, or by resetting the stream. One thread runs every
// connection (no thread per request).
//
// Threads: the handler runs on the server's thread; every other method may be
// called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpim::testing {

struct H2TestRequest {
  int64_t connection = 0;  // 1, 2, ... in the order the server accepted them
  int32_t stream_id = 0;
  std::string method;
  std::string scheme;
  std::string authority;
  std::string path;
  std::vector<std::pair<std::string, std::string>> headers;  // regular ones, in order
  std::string body;

  // The first header named `name` (lower case), "" if none.
  std::string_view Header(std::string_view name) const;
};

struct H2TestAnswer {
  enum class Action {
    kAnswer,           // status, headers and body now
    kHold,             // the same, once ReleaseHeld is called
    kCloseConnection,  // close the request's connection without answering
    kReset,            // RST_STREAM INTERNAL_ERROR
  };
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Action action = Action::kAnswer;
};

class H2TestServer {
 public:
  enum class Mode { kTls, kCleartext };
  using Handler = std::function<H2TestAnswer(const H2TestRequest&)>;

  // Starts listening; see ok() and error().
  explicit H2TestServer(Mode mode = Mode::kTls);
  ~H2TestServer();  // closes everything, stops its thread
  H2TestServer(const H2TestServer&) = delete;
  H2TestServer& operator=(const H2TestServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  // "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT".
  std::string url() const;
  // The self-signed certificate's PEM file (kTls); "" for kCleartext.
  const std::string& ca_file() const { return ca_file_; }

  // For the requests that come after; the default answers 200, no body.
  void SetHandler(Handler handler);

  std::vector<H2TestRequest> requests() const;
  size_t request_count() const;
  // Whether `n` requests came within `timeout`.
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) const;
  // Held answers not yet released, and a wait for `n` of them.
  size_t held_count() const;
  bool WaitForHeld(size_t n, std::chrono::milliseconds timeout) const;
  // Answers every held request (whose stream is still open) now.
  void ReleaseHeld();

  // Closes every connection at once (TCP close, no GOAWAY).
  void CloseConnections();
  // Sends GOAWAY (last stream: the last one processed) on every connection,
  // which then closes once its streams are answered.
  void GoAway();

  int64_t connections_accepted() const;
  int64_t connections_open() const;
  bool WaitForConnectionsOpen(int64_t n, std::chrono::milliseconds timeout) const;
  // The most streams open at once on one connection since the start.
  int max_open_streams() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::string error_;
  uint16_t port_ = 0;
  std::string ca_file_;
  Mode mode_;
};

}  // namespace mpim::testing
