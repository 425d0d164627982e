// Role edge (docs/edge.md): the proxy in front of the gateways. It joins
// discovery as role `edge` (so operators see it, and engines that watch
// only once joined start watching) and follows the gateways there.
#include <atomic>

#include "app/node.h"
#include "app/serve.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "edge/hash_key.h"
#include "edge/proxy_server.h"
#include "edge/upstreams.h"
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
  auto hash_key = edge::HashKey::Parse(config.edge.hash_key);
  if (!listen.ok() || !hash_key.ok()) {  // validated at load; kept for safety
    Log().Error("bad edge configuration",
                {{"error", std::string(!listen.ok() ? listen.status().message()
                                                    : hash_key.status().message())}});
    return 1;
  }
  net::IoPool pool(static_cast<size_t>(config.server.io_threads));

  edge::UpstreamOptions upstream_options;
  upstream_options.balancer = config.edge.balancer;
  upstream_options.health_interval_ms = config.edge.health_interval_ms;
  upstream_options.health_timeout_ms = config.edge.health_timeout_ms;
  auto upstreams = edge::Upstreams::Make(pool.At(0), upstream_options);
  if (!upstreams.ok()) {
    Log().Error("cannot start the edge", {{"error", std::string(upstreams.status().message())}});
    return 1;
  }
  edge::Upstreams& gateways = **upstreams;
  const int watch = discovery.Watch([&gateways](const std::vector<discovery::Node>& nodes) {
    std::vector<edge::Upstreams::Entry> entries;
    for (const discovery::Node& n : discovery::WithRole(nodes, "gateway")) {
      entries.push_back({n.address, n.weight});
    }
    gateways.Update(entries);
  });

  std::atomic<bool> draining{false};
  edge::ProxyOptions options;
  options.host = listen->first;
  options.port = listen->second;
  options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  options.idle_timeout = std::chrono::milliseconds(config.server.idle_timeout_ms);
  options.connect_timeout = std::chrono::milliseconds(config.edge.connect_timeout_ms);
  options.upstream_timeout = std::chrono::milliseconds(config.edge.upstream_timeout_ms);
  options.max_header_bytes = static_cast<uint32_t>(config.server.max_header_bytes);
  options.max_body_bytes = static_cast<uint64_t>(config.server.max_body_bytes);
  options.max_response_bytes = static_cast<uint64_t>(config.edge.max_response_bytes);
  options.retries = static_cast<int>(config.edge.retries);
  options.max_idle_per_upstream = static_cast<size_t>(config.edge.max_idle_per_upstream);
  options.hash_key = *hash_key;
  options.connections_per_address = static_cast<uint32_t>(config.limits.connections_per_address);
  options.requests_per_sec_address = static_cast<double>(config.limits.requests_per_sec_address);
  options.requests_burst_address = static_cast<double>(config.limits.requests_burst_address);
  // The operational endpoints (protocol.md section 2) are the edge's own.
  options.local = [&draining,
                   &gateways](std::string_view path) -> std::optional<net::HttpResponse> {
    if (path == "/healthz") return net::HttpResponse::Json(200, R"({"status":"ok"})");
    if (path == "/readyz") {
      if (draining.load()) return net::HttpResponse::Error(absl::UnavailableError("draining"));
      if (gateways.healthy() == 0) {
        return net::HttpResponse::Error(
            absl::UnavailableError("not ready: no healthy gateway is known"));
      }
      return net::HttpResponse::Json(200, R"({"status":"ready"})");
    }
    if (path == "/metrics") {
      net::HttpResponse r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = core::DefaultRegistry().Exposition();
      return r;
    }
    return std::nullopt;
  };
  edge::ProxyServer server(pool, gateways, std::move(options));
  if (core::Status s = server.Start(); !s.ok()) {
    Log().Error("cannot start the edge listener", {{"error", std::string(s.message())}});
    discovery.Unwatch(watch);
    return 1;
  }
  auto joined =
      JoinCluster(config, discovery, "edge", listen->first + ":" + std::to_string(server.port()));
  if (!joined.ok()) {
    Log().Error("cannot start", {{"error", std::string(joined.status().message())}});
    discovery.Unwatch(watch);
    return 1;
  }
  pool.Start();
  gateways.Start();
  AnnounceServing(config, listen->first, server.port(), joined->server.node_id, pool.size());

  int signo = WaitForStopSignal(signals, [&server] { return server.open_connections(); });
  Log().Info("draining", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                          {"timeout_ms", config.server.drain_timeout_ms}});
  draining.store(true);
  discovery.Unwatch(watch);
  discovery.Stop();
  server.StartDrain();
  if (!server.WaitDrained(std::chrono::milliseconds(config.server.drain_timeout_ms))) {
    Log().Warn("drain timeout reached; closing the remaining connections",
               {{"open", static_cast<int64_t>(server.open_connections())}});
    server.CloseAll();
    server.WaitDrained(std::chrono::seconds(2));
  }
  gateways.Stop();
  pool.Stop();
  Log().Info("stopped");
  return 0;
}

}  // namespace mpim::app
