// An asynchronous HTTP/1.1 client (Boost.Beast behind a pimpl, so includers
// do not compile Beast), for calls to other services: the push providers'
// webhook and FCM requests, OAuth2 token requests.
//
//   - http:// and https:// URLs; TLS 1.2+ through OpenSSL with SNI, the
//     peer's chain verified against the system's CAs or `tls_ca_file`, and
//     the certificate checked against the URL's host (name or IP address).
//   - A keep-alive pool per origin (scheme, host, port): an idle connection
//     is reused (the most recently used first); at most
//     max_connections_per_origin are open at once, requests beyond wait in a
//     FIFO until one frees. An idle connection the server closed is noticed
//     when taken from the pool and replaced. A request that went out on a
//     reused connection which then broke before any byte of the answer
//     arrived (the server closed it at the same moment: the stale keep-alive
//     race) is sent once more on a fresh connection; no request is sent
//     twice otherwise.
//   - A deadline per request, from Request() to the whole answer: waiting
//     for a connection, connecting, the TLS handshake, writing and reading.
//   - The answer's body is capped (max_response_body_bytes).
//
// Errors, all kUnavailable with what failed, never a header or body of the
// request: "connect 127.0.0.1:1234: connection refused", "timeout after
// 5000 ms", "tls handshake example.com:443: certificate verify failed (SSL
// routines)", "connection closed before the response", "response body over
// 1048576 bytes", "client shut down". A URL that cannot be parsed is
// kInvalidArgument. HTTP error statuses are answers, not errors.
//
// Threads: Request may be called from any thread, also from a callback.
// Every callback runs exactly once, on the io_context's thread, one at a time
// (the client's strand). Shutdown (or the destructor) answers what is in
// flight and waiting with "client shut down" before it returns; a Request
// after it is answered so at once, on the calling thread. So no callback
// runs after Shutdown returns. It must not run inside a callback; from
// another thread the io_context must be running, stopped, or never have
// been given a request.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "net/http.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mpim::net {

struct HttpClientOptions {
  int max_connections_per_origin = 16;
  std::string tls_ca_file;  // PEM CA certificates; empty: the system's CAs
  size_t max_response_body_bytes = 1 << 20;
  size_t max_response_header_bytes = 64 << 10;
  // An idle pooled connection is closed after this: below the 60 s servers
  // commonly keep one, so that the client, not the server, closes it.
  int64_t idle_timeout_ms = 50000;
};

struct HttpClientResponse {
  int status = 0;
  Headers headers;  // names in lower case, in the order received
  std::string body;

  // The first header named `name` (lower case); empty if absent.
  std::string_view Header(std::string_view name) const;
};

using HttpClientCallback = std::function<void(core::StatusOr<HttpClientResponse>)>;

// An absolute http(s) URL taken apart.
struct HttpUrl {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string target;  // path and query, "/" at least
};
// kInvalidArgument (saying why) for anything but an absolute http:// or
// https:// URL with a host.
core::StatusOr<HttpUrl> ParseHttpUrl(std::string_view url);

// A Retry-After value in delta-seconds ("120") as milliseconds; 0 when empty
// or not a number (HTTP dates are not worth a clock comparison here).
int64_t RetryAfterMs(std::string_view value);

class HttpClient {
 public:
  // kInvalidArgument when tls_ca_file cannot be loaded or the limits are out
  // of range.
  static core::StatusOr<std::unique_ptr<HttpClient>> Make(boost::asio::io_context& io,
                                                          HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `method url` with `headers` (Host, Content-Length and User-Agent
  // are added unless given) and `body`, and calls `done` with the answer or
  // an error within about `timeout_ms`.
  void Request(std::string method, std::string_view url, Headers headers, std::string body,
               int64_t timeout_ms, HttpClientCallback done);

  // Connections opened since the client was made (for tests and metrics).
  int64_t connections_opened() const;

  void Shutdown();

  class Impl;

 private:
  explicit HttpClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mpim::net
