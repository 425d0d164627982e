// Role edge (docs/edge.md): the proxy in front of the gateways. It joins
// discovery as role `edge` (so operators see it, and engines that watch
// only once joined start watching) and follows the gateways there (and the
// upstreams edge.routes_file names; SIGHUP reads it again).
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include "app/node.h"
#include "app/serve.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "edge/proxy_server.h"
#include "edge/router.h"
#include "edge/routes.h"
#include "edge/routes_file.h"
#include "edge/tls.h"
#include "net/http.h"
#include "net/io_pool.h"

namespace mpim::app {
namespace {

const core::Logger& Log() {
  static const core::Logger log("app");
  return log;
}

}  // namespace

int RunEdge(const core::Config& config, discovery::Discovery& discovery, const sigset_t& signals) {
  auto listen = core::ParseHostPort(config.server.listen);
  if (!listen.ok()) {  // validated at load; kept for safety
    Log().Error("bad edge configuration", {{"error", std::string(listen.status().message())}});
    return 1;
  }
  net::IoPool pool(static_cast<size_t>(config.server.io_threads));

  edge::Router router(edge::RouterOptions{
      .io = &pool.At(0),
      .discovery = &discovery,
      .dns_servers = config.discovery.dns_servers,
      .dns_refresh_ms = config.discovery.dns_refresh_ms,
      .health_interval_ms = config.edge.health_interval_ms,
      .health_timeout_ms = config.edge.health_timeout_ms,
  });
  const edge::RouteDefaults defaults{.balancer = config.edge.balancer,
                                     .hash_key = config.edge.hash_key,
                                     .retries = static_cast<int>(config.edge.retries)};
  std::unique_ptr<edge::RoutesFile> routes_file;
  if (config.edge.routes_file.empty()) {
    if (core::Status s = router.Apply(edge::DefaultRoutes(defaults)); !s.ok()) {
      Log().Error("cannot start the edge", {{"error", std::string(s.message())}});
      return 1;
    }
  } else {
    routes_file = std::make_unique<edge::RoutesFile>(config.edge.routes_file, defaults, router,
                                                     config.edge.routes_reload_ms);
    if (core::Status s = routes_file->Load(); !s.ok()) {
      std::fprintf(stderr, "mpim: configuration error: %s\n", std::string(s.message()).c_str());
      Log().Error("cannot start the edge", {{"error", std::string(s.message())}});
      return 2;
    }
  }

  std::unique_ptr<edge::TlsCerts> tls;
  if (!config.edge.tls_cert_file.empty()) {
    tls = std::make_unique<edge::TlsCerts>(config.edge.tls_cert_file, config.edge.tls_key_file,
                                           config.edge.routes_reload_ms);
    if (core::Status s = tls->Load(); !s.ok()) {
      std::fprintf(stderr, "mpim: configuration error: %s\n", std::string(s.message()).c_str());
      Log().Error("cannot start the edge", {{"error", std::string(s.message())}});
      return 2;
    }
  }

  std::unique_ptr<edge::GeoIpDatabase> geoip;
  if (!config.edge.geoip_database.empty()) {
    geoip = std::make_unique<edge::GeoIpDatabase>(config.edge.geoip_database,
                                                  config.edge.routes_reload_ms);
    if (core::Status s = geoip->Load(); !s.ok()) {
      std::fprintf(stderr, "mpim: configuration error: %s\n", std::string(s.message()).c_str());
      Log().Error("cannot start the edge", {{"error", std::string(s.message())}});
      return 2;
    }
  }

  std::atomic<bool> draining{false};
  edge::ProxyOptions options;
  options.tls = tls.get();
  options.geoip = geoip.get();
  options.host = listen->first;
  options.port = listen->second;
  options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(config.server.idle_timeout_ms);
  options.connect_timeout = std::chrono::milliseconds(config.edge.connect_timeout_ms);
  options.upstream_timeout = std::chrono::milliseconds(config.edge.upstream_timeout_ms);
  options.max_header_bytes = static_cast<uint32_t>(config.server.max_header_bytes);
  options.max_body_bytes = static_cast<uint64_t>(config.server.max_body_bytes);
  options.max_response_bytes = static_cast<uint64_t>(config.edge.max_response_bytes);
  options.max_idle_per_upstream = static_cast<size_t>(config.edge.max_idle_per_upstream);
  options.access_log = config.edge.access_log;
  options.connections_per_address = static_cast<uint32_t>(config.limits.connections_per_address);
  options.requests_per_sec_address = static_cast<double>(config.limits.requests_per_sec_address);
  options.requests_burst_address = static_cast<double>(config.limits.requests_burst_address);
  // The operational endpoints (protocol.md section 2) are the edge's own.
  options.local = [&draining, &router](std::string_view path) -> std::optional<net::HttpResponse> {
    if (path == "/healthz") return net::HttpResponse::Json(200, R"({"status":"ok"})");
    if (path == "/readyz") {
      if (draining.load()) return net::HttpResponse::Error(absl::UnavailableError("draining"));
      if (router.healthy() == 0) {
        std::string clusters;
        for (const std::string& name : router.clusters_without_healthy()) {
          clusters += (clusters.empty() ? "" : ", ") + name;
        }
        return net::HttpResponse::Error(absl::UnavailableError(
            "not ready: no healthy upstream is known (clusters: " + clusters + ")"));
      }
      return net::HttpResponse::Json(200, R"({"status":"ready"})");
    }
    if (path == "/metrics") return MetricsExposition(!draining.load() && router.healthy() > 0);
    return std::nullopt;
  };
  edge::ProxyServer server(pool, router, std::move(options));
  if (core::Status s = server.Start(); !s.ok()) {
    Log().Error("cannot start the edge listener", {{"error", std::string(s.message())}});
    return 1;
  }
  auto joined =
      JoinCluster(config, discovery, "edge", listen->first + ":" + std::to_string(server.port()));
  if (!joined.ok()) {
    Log().Error("cannot start", {{"error", std::string(joined.status().message())}});
    return 1;
  }
  pool.Start();
  router.Start();
  if (routes_file) routes_file->Start();
  if (tls) tls->Start();
  if (geoip) geoip->Start();
  AnnounceServing(config, listen->first, server.port(), joined->server.node_id, pool.size());

  int signo;
  for (;;) {
    signo = WaitForStopSignal(signals, [&server] { return server.open_connections(); });
    if (signo != SIGHUP) break;
    if (routes_file) routes_file->Reload("SIGHUP");
    if (tls) tls->Reload("SIGHUP");
    if (geoip) geoip->Reload("SIGHUP");
    if (!routes_file && !tls && !geoip) {
      Log().Info("SIGHUP: no routes file, certificate or GeoIP database to read again");
    }
  }
  Log().Info("draining", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                          {"timeout_ms", config.server.drain_timeout_ms}});
  draining.store(true);
  if (routes_file) routes_file->Stop();
  if (tls) tls->Stop();
  if (geoip) geoip->Stop();
  router.Stop();  // no more changes to the upstream sets while they drain
  discovery.Stop();
  server.StartDrain();
  if (!server.WaitDrained(std::chrono::milliseconds(config.server.drain_timeout_ms))) {
    Log().Warn("drain timeout reached; closing the remaining connections",
               {{"open", static_cast<int64_t>(server.open_connections())}});
    server.CloseAll();
    server.WaitDrained(std::chrono::seconds(2));
  }
  pool.Stop();
  Log().Info("stopped");
  return 0;
}

}  // namespace mpim::app
