// The HTTP/1.1 listener (Boost.Beast behind a pimpl, so includers do not
// compile Beast): keep-alive, routing through a Router, limits on header
// (431) and body (413) size, a read timeout per request and an idle timeout
// per keep-alive connection, a cap on connections per client address, a
// server-wide cap on requests whose headers are still arriving, a request
// rate limit per client address (429), and protocol-shaped JSON error
// bodies.
//
// Life cycle, all from one control thread (main):
//   HttpServer server(pool, router, options);
//   server.Start();        // bind and listen; fails if the address is taken
//   ... pool runs ...
//   server.StartDrain();   // stop accepting, close idle connections,
//                          // answer in-flight requests with Connection: close
//   server.WaitDrained(timeout);  // until no connection is open, or timeout
//   pool.Stop();
// The router and pool must outlive the server.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/metrics.h"
#include "core/status.h"
#include "core/trusted_proxies.h"
#include "net/io_pool.h"
#include "net/router.h"
#include "net/websocket.h"

namespace mpim::net {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  // With tracing on (core/trace.h), a request to a route under this prefix
  // starts a trace (or continues its `traceparent` header's); probes and
  // scrapes elsewhere do not. Empty: every route.
  std::string traced_prefix = "/api/";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  uint32_t max_header_bytes = 16384;
  uint64_t max_body_bytes = 1 << 20;
  uint32_t connections_per_address = 0;  // 0: no limit
  // Connections whose request headers are still arriving: a new connection
  // from accept, a keep-alive one from its next request's first byte, until
  // the headers are complete. Over it a new connection is closed at accept.
  // 0: no limit.
  uint32_t max_pending_requests = 0;
  // Token bucket per client address over requests (WebSocket upgrades
  // included); over it 429 rate_limited with Retry-After. 0: no limit.
  double requests_per_sec_address = 0;
  double requests_burst_address = 1;
  // Upgrades on this path go to `on_websocket` (none when unset). Other
  // requests to it get 426.
  // Peers whose X-Forwarded-For names the client (server.trusted_proxies):
  // their connections are not limited per address, and their requests
  // count against (and are handled as from) the client's address.
  core::TrustedProxies trusted_proxies;
  std::string websocket_path = "/ws";
  WsAcceptFn on_websocket;
  WsOptions websocket;
};

class HttpServer {
 public:
  HttpServer(IoPool& pool, const Router& router, HttpServerOptions options,
             core::MetricsRegistry& metrics = core::DefaultRegistry());
  ~HttpServer();

  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. unavailable if the address cannot be bound.
  [[nodiscard]] core::Status Start();

  // The bound port (after Start).
  uint16_t port() const;

  // Also closes WebSockets with 1012 (service restart).
  void StartDrain();
  // True when every connection closed before `timeout`.
  bool WaitDrained(std::chrono::milliseconds timeout);
  // Ends every connection still open at once (WebSockets without a closing
  // handshake), on the io threads, which must still run: after a drain
  // that timed out, before the pool stops.
  void CloseAll();

  size_t open_connections() const;

  // Requests per second (and burst) allowed per client address from now on;
  // 0: no limit (run-time configuration; any thread).
  void SetRequestRate(double per_sec, double burst);

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mpim::net
