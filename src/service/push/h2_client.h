// An HTTP/2 client for one origin, as the APNs provider needs it: nghttp2
// over an Asio TCP socket, TLS 1.2+ with ALPN "h2" for https:// URLs
// (SNI, the peer verified against the system's CAs or a given CA file), or
// cleartext HTTP/2 with prior knowledge for http:// URLs (tests and private
// gateways on a trusted network).
//
// One connection carries every request, multiplexed on up to
// max_concurrent_streams streams (fewer if the server says so); requests
// beyond wait for a free stream. The connection is opened on demand, and
// again after it breaks or the server sends GOAWAY (a request the server
// refused unprocessed, REFUSED_STREAM, goes once more on the next
// connection). No request is sent twice otherwise: a broken connection
// answers its requests with an error.
//
// Threads: Submit may be called from any thread, also from within a `done`.
// Every `done` runs exactly once, on the io_context's thread (through a
// strand). The destructor answers what is in flight with an error ("client
// shut down") before it returns, after which no `done` runs; it must not run
// on the io thread, and the io_context must still be running (or stopped).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mpim::service::push {

using H2Headers = std::vector<std::pair<std::string, std::string>>;

struct H2Request {
  std::string method = "POST";
  std::string path;   // after the url's own path: "/3/device/..."
  H2Headers headers;  // names in lower case, no pseudo-headers
  std::string body;
};

struct H2Response {
  int status = 0;  // 0: no answer, `error` says why
  // Why there is no answer: "connect: Connection refused", "tls: ...",
  // "timeout after 10000 ms", "connection closed by the server", ...
  // Never the request's path or headers.
  std::string error;
  bool sent = false;  // the request's HEADERS went out on a connection
  H2Headers headers;  // the response's, names in lower case
  std::string body;   // at most 64 KiB kept

  // The first header named `name` (lower case), "" if none.
  std::string_view Header(std::string_view name) const;
};

using H2Done = std::function<void(H2Response)>;

struct H2ClientOptions {
  std::string url;             // "https://host[:port][/prefix]" or "http://..."
  std::string tls_ca_file;     // empty: the system's CAs
  int64_t timeout_ms = 10000;  // per request, from Submit to the answer
  int max_concurrent_streams = 100;
};

class H2Client {
 public:
  // invalid_argument for a bad url, a CA file that cannot be read or
  // limits out of range.
  static absl::StatusOr<std::unique_ptr<H2Client>> Make(H2ClientOptions options,
                                                        boost::asio::io_context& io);
  ~H2Client();
  H2Client(const H2Client&) = delete;
  H2Client& operator=(const H2Client&) = delete;

  void Submit(H2Request request, H2Done done);

  class Impl;

 private:
  H2Client(std::shared_ptr<Impl> impl, boost::asio::io_context& io);
  std::shared_ptr<Impl> impl_;
  boost::asio::io_context& io_;
};

}  // namespace mpim::service::push
