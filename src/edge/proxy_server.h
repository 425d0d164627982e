// The edge's listener (role edge, docs/edge.md): a reverse proxy for
// HTTP/1.1 and HTTP/2 (and so gRPC) in front of the gateways and other
// upstreams (router.h), with WebSocket upgrades turned into byte tunnels
// (Boost.Beast and nghttp2 behind a pimpl, so includers do not compile
// them; the parts: proxy_internal.h).
//
// Per client connection, one io thread:
//   - its first bytes say what it speaks, on the one port: a TLS
//     ClientHello when TLS is configured (the handshake, then HTTP/2 if
//     ALPN chose h2, else HTTP/1.1), the HTTP/2 connection preface (h2c,
//     prior knowledge), or else HTTP/1.1; HTTP/2 streams are proxied as
//     h2_session.cc says (to HTTP/1.1 upstreams as the requests below, to
//     protocol = "h2" clusters joined stream to stream: h2_upstream.h);
//   - a request is read whole (headers within server.max_header_bytes: 431,
//     body within server.max_body_bytes: 413), within the request timeout
//     (the idle timeout while a kept-alive connection waits for its next);
//   - /healthz, /readyz and /metrics are the edge's own (local());
//   - anything else is matched against the router's table (the first route
//     whose host, path prefix and headers fit; none: 404 not_found) and goes
//     to the upstream of the route's cluster that its sticky cookie names
//     (if healthy and admitted by its breaker), or else that
//     Upstreams::Pick chooses for the request's hash key (and, for a
//     cluster with zones, the client's location: geoip.h), over a keep-alive
//     connection pooled per io thread and per upstream; hop-by-hop headers
//     are dropped both ways, and X-Forwarded-For / X-Forwarded-Proto /
//     X-Forwarded-Host added; an answer from an upstream the client's
//     sticky cookie did not name sets it (Set-Cookie, also on a 101);
//   - an upstream that cannot be connected to is reported (it gets no new
//     clients until its health check passes) and the request goes to
//     another, up to the cluster's `retries` times and within its retry
//     budget; a request that broke before its answer began is retried so
//     too when it is safe to repeat (GET, HEAD, OPTIONS, upgrades), and once
//     on a fresh connection to the same upstream when a pooled connection
//     turned out closed (the keep-alive race);
//   - each exchange's outcome feeds the upstream's circuit breaker; when
//     every breaker of the cluster refuses: 503 unavailable;
//   - limits per client address: connections (closed at accept) and a
//     request rate (429 rate_limited);
//   - the edge's own refusals use protocol.md's error body: 502 unavailable
//     (no upstream could be reached), 504 unavailable (no answer in time);
//   - a WebSocket upgrade is passed to the gateway; on its 101 the two
//     connections are joined byte for byte (frames are not parsed), each
//     direction reading only once the other side took the last bytes
//     (back-pressure), with no buffer held while idle.
//
// Life cycle as net::HttpServer's: Start, StartDrain (stop accepting,
// close idle connections and tunnels, answer in-flight requests with
// Connection: close), WaitDrained, CloseAll, then stop the pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/metrics.h"
#include "core/status.h"
#include "edge/geoip.h"
#include "edge/router.h"
#include "edge/tls.h"
#include "net/http.h"
#include "net/io_pool.h"

namespace mpim::edge {

struct ProxyOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds idle_timeout{60000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds upstream_timeout{30000};
  uint32_t max_header_bytes = 16384;
  uint64_t max_body_bytes = 1 << 20;
  uint64_t max_response_bytes = 64 << 20;
  size_t max_idle_per_upstream = 64;
  bool access_log = false;  // a log line per answer (logger edge.access)
  // Non-null: the listener also takes TLS (detected per connection by its
  // first bytes), with the certificate in force when the connection came.
  TlsCerts* tls = nullptr;
  // Non-null: clients are located in it (once per connection) for clusters
  // with zones (upstreams.h).
  GeoIpDatabase* geoip = nullptr;
  // Per client address (the peer's IP): connections open at once (over it
  // a new one is closed at accept; 0: no limit), and a token bucket over
  // requests and upgrades (over it 429 rate_limited with Retry-After; 0 per
  // second: no limit). limits.connections_per_address and
  // limits.requests_per_sec_address / requests_burst_address.
  uint32_t connections_per_address = 0;
  double requests_per_sec_address = 0;
  double requests_burst_address = 1;
  // The edge's own answers by path (/healthz, /readyz, /metrics); nullopt:
  // proxied. Called on io threads; must not block.
  std::function<std::optional<net::HttpResponse>(std::string_view path)> local;
};

class ProxyServer {
 public:
  ProxyServer(net::IoPool& pool, Router& router, ProxyOptions options,
              core::MetricsRegistry& metrics = core::DefaultRegistry());
  ~ProxyServer();

  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  // Binds and starts accepting. unavailable if the address cannot be bound.
  [[nodiscard]] core::Status Start();
  uint16_t port() const;

  void StartDrain();
  bool WaitDrained(std::chrono::milliseconds timeout);
  void CloseAll();

  // Client connections open (tunnels included).
  size_t open_connections() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace mpim::edge
