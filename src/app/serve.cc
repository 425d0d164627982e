#include "app/serve.h"

#include <malloc.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>

#include "app/node.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "core/process_metrics.h"
#include "core/trace.h"
#include "discovery/config_centre.h"
#include "discovery/registry.h"
#include "gateway/static_files.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/otlp_exporter.h"
#include "net/router.h"

namespace mpim::app {
namespace {

const core::Logger& Log() {
  static const core::Logger log("app");
  return log;
}

// mpim_ready for scrapes: a scrape answers at once with what the last
// readiness check found and starts the next one, so that a store that hangs
// cannot hold /metrics; a check still unanswered after kHung counts as not
// ready.
class ReadinessForScrapes {
 public:
  bool Scraped(Node& node, bool draining) {
    if (draining) return false;
    const int64_t now = core::SystemClock().SteadyMs();
    int64_t idle = 0;
    if (started_ms_.compare_exchange_strong(idle, now)) {
      node.CheckReady([this](core::Status s) {
        ready_.store(s.ok());
        started_ms_.store(0);
      });
    } else if (now - idle > kHungMs) {
      return false;
    }
    return ready_.load();
  }

 private:
  static constexpr int64_t kHungMs = 2000;
  std::atomic<int64_t> started_ms_{0};  // of the check outstanding, 0: none
  std::atomic<bool> ready_{false};      // what the last answered check said
};

// The operational endpoints (protocol.md section 2, "Operations").
void AddOperationRoutes(net::Router& router, const std::atomic<bool>& draining, Node& node) {
  router.Add("GET", "/healthz", [](net::HttpRequest, net::HttpResponder respond) {
    respond(net::HttpResponse::Json(200, R"({"status":"ok"})"));
  });
  router.Add("GET", "/readyz", [&draining, &node](net::HttpRequest, net::HttpResponder respond) {
    if (draining.load()) {
      respond(net::HttpResponse::Error(absl::UnavailableError("draining")));
      return;
    }
    node.CheckReady([respond = std::move(respond)](core::Status s) mutable {
      if (!s.ok()) {
        return respond(net::HttpResponse::Error(
            absl::UnavailableError("not ready: " + std::string(s.message()))));
      }
      respond(net::HttpResponse::Json(200, R"({"status":"ready"})"));
    });
  });
  static ReadinessForScrapes readiness;      // one node per process
  readiness.Scraped(node, draining.load());  // the first check, before any scrape
  router.Add("GET", "/metrics", [&draining, &node](net::HttpRequest, net::HttpResponder respond) {
    respond(MetricsExposition(readiness.Scraped(node, draining.load())));
  });
}

}  // namespace

net::HttpResponse MetricsExposition(bool ready) {
  static core::Gauge& gauge =
      core::DefaultRegistry()
          .Gauge("mpim_ready",
                 "1 when this node can serve (what GET /readyz answers: its store answers, for a "
                 "gateway a logic node, for an edge a healthy upstream), 0 when not or draining; "
                 "each scrape starts a check and shows the last one answered (one unanswered for "
                 "2 s: 0).")
          .With({});
  gauge.Set(ready ? 1 : 0);
  net::HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = core::DefaultRegistry().Exposition();
  return r;
}

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Once many connections have gone since the last look, hands freed heap
// back to the system: glibc keeps it otherwise, and a wave of abandoned
// connections would leave the resident size at its peak for good.
int WaitForStopSignal(const sigset_t& signals, const std::function<size_t()>& open_connections) {
  constexpr size_t kTrimAfterClosed = 256;
  size_t high_water = open_connections();
  for (;;) {
    timespec period{0, 100 * 1000 * 1000};  // 100 ms: no wave of connections hides in between
    int signo = sigtimedwait(&signals, nullptr, &period);
    if (signo > 0) return signo;
    size_t open = open_connections();
    high_water = std::max(high_water, open);
    if (high_water - open >= kTrimAfterClosed) {
      malloc_trim(0);
      high_water = open;
    }
  }
}

void AnnounceServing(const core::Config& config, const std::string& host, uint16_t port,
                     int64_t node_id, size_t io_threads) {
  std::string base = "http://" + host + ":" + std::to_string(port);
  Log().Info("serving", {{"url", base},
                         {"role", config.server.role},
                         {"node_id", node_id},
                         {"data_dir", config.server.data_dir},
                         {"io_threads", static_cast<int64_t>(io_threads)}});
  std::printf(
      "MPIM %s serving on %s\n  health:  %s/healthz\n  ready:   %s/readyz\n"
      "  metrics: %s/metrics\n",
      MPIM_VERSION, base.c_str(), base.c_str(), base.c_str(), base.c_str());
  std::fflush(stdout);
}

// Tracing (tracing.*): the OTLP exporter installed for this process while
// it runs; its last spans are sent as it ends.
class Tracing {
 public:
  explicit Tracing(const core::Config& config) {
    if (config.tracing.sample_ratio <= 0 || config.tracing.otlp_endpoint.empty()) return;
    net::OtlpOptions options;
    options.endpoint = config.tracing.otlp_endpoint;
    options.queue_max = static_cast<size_t>(config.tracing.queue_max_spans);
    options.batch_max = static_cast<size_t>(config.tracing.batch_max_spans);
    options.interval_ms = config.tracing.export_interval_ms;
    options.timeout_ms = config.tracing.export_timeout_ms;
    options.resource = {{"service.name", std::string("mpim")},
                        {"service.version", std::string(MPIM_VERSION)},
                        {"service.instance.id", config.server.listen},
                        {"mpim.role", config.server.role}};
    auto exporter = net::OtlpExporter::Make(std::move(options));
    if (!exporter.ok()) {  // the endpoint was validated at load
      Log().Error("tracing off", {{"error", std::string(exporter.status().message())}});
      return;
    }
    exporter_ = std::move(*exporter);
    core::trace::Install(exporter_, config.tracing.sample_ratio);
    Log().Info("tracing", {{"otlp_endpoint", config.tracing.otlp_endpoint},
                           {"sample_ratio", config.tracing.sample_ratio}});
  }
  ~Tracing() {
    if (!exporter_) return;
    core::trace::Install(nullptr, 0);
    exporter_->Shutdown();
  }
  Tracing(const Tracing&) = delete;
  Tracing& operator=(const Tracing&) = delete;

 private:
  std::shared_ptr<net::OtlpExporter> exporter_;
};

int RunServe(const core::Config& config) {
  core::InitLogging(core::ParseLogLevel(config.log.level), core::ParseLogFormat(config.log.format));

  // Threads started from here on inherit the mask; only sigwait below sees
  // the shutdown signals.
  sigset_t signals = ShutdownSignals();
  // The edge reads its routes file again on SIGHUP.
  if (config.server.role == "edge") sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::error_code fs_error;
  std::filesystem::create_directories(config.server.data_dir, fs_error);
  if (fs_error) {
    Log().Error("cannot create the data directory",
                {{"data_dir", config.server.data_dir}, {"error", fs_error.message()}});
    return 1;
  }

  core::MetricsRegistry& metrics = core::DefaultRegistry();
  core::RegisterProcessMetrics(metrics);
  metrics.Gauge("mpim_build_info", "Build information; the value is 1.", {"version", "role"})
      .With({MPIM_VERSION, config.server.role})
      .Set(1);
  Tracing tracing(config);

  auto listen = core::ParseHostPort(config.server.listen);
  if (!listen.ok()) {  // validated at load; kept for safety
    Log().Error("bad listen address", {{"error", std::string(listen.status().message())}});
    return 1;
  }

  // Discovery: the node joins the cluster's list of nodes as it starts;
  // engine etcd hands out its snowflake node id (unique while its lease
  // lives).
  auto discovery = discovery::OpenDiscovery(config.discovery);
  if (!discovery.ok()) {
    Log().Error("cannot open discovery", {{"error", std::string(discovery.status().message())}});
    return 1;
  }

  // The configuration centre (discovery engine etcd): the cluster's
  // run-time settings on top of this node's own, from the start; changes
  // reach `live` (set once the node and its listener exist).
  std::mutex live_mu;
  std::function<void(const core::Config&)> live;
  std::unique_ptr<discovery::ConfigCentre> centre;
  core::Config effective = config;
  if (config.discovery.engine == "etcd") {
    auto started = discovery::ConfigCentre::Start(config, [&](const core::Config& now) {
      std::lock_guard lock(live_mu);
      if (live) live(now);
    });
    if (!started.ok()) {
      Log().Error("cannot start the configuration centre",
                  {{"error", std::string(started.status().message())}});
      return 1;
    }
    centre = std::move(*started);
    effective = centre->Current();
    core::SetLogLevel(core::ParseLogLevel(effective.log.level));
  }

  if (config.server.role == "edge") return RunEdge(effective, **discovery, signals);

  auto node = StartNode(effective, **discovery);
  if (!node.ok()) {
    Log().Error("cannot start", {{"error", std::string(node.status().message())}});
    return 1;
  }

  std::atomic<bool> draining{false};
  net::Router router;
  AddOperationRoutes(router, draining, **node);
  (*node)->AddRoutes(router);
  std::unique_ptr<gateway::StaticFiles> web;
  const bool serves_clients = config.server.role == "all" || config.server.role == "gateway";
  if (serves_clients && config.web.root != "off") {
    std::string root = gateway::FindWebRoot(config.web.root);
    if (!root.empty()) {
      auto files = gateway::StaticFiles::Load(root);
      if (!files.ok()) {
        Log().Error("cannot load the web client",
                    {{"error", std::string(files.status().message())}});
        return 1;
      }
      web = std::move(*files);
      gateway::StaticFiles* served = web.get();
      router.SetFallback([served](net::HttpRequest req, net::HttpResponder respond) {
        served->Serve(req, std::move(respond));
      });
      Log().Info("serving the web client",
                 {{"root", root}, {"files", static_cast<int64_t>(web->files())}});
    }
  }

  net::IoPool pool(static_cast<size_t>(config.server.io_threads));
  net::HttpServerOptions http_options;
  http_options.host = listen->first;
  http_options.port = listen->second;
  http_options.request_timeout = std::chrono::milliseconds(config.server.request_timeout_ms);
  http_options.idle_timeout = std::chrono::milliseconds(config.server.idle_timeout_ms);
  http_options.max_header_bytes = static_cast<uint32_t>(config.server.max_header_bytes);
  http_options.max_body_bytes = static_cast<uint64_t>(config.server.max_body_bytes);
  http_options.connections_per_address =
      static_cast<uint32_t>(config.limits.connections_per_address);
  http_options.max_pending_requests = static_cast<uint32_t>(config.server.max_pending_requests);
  http_options.requests_per_sec_address =
      static_cast<double>(effective.limits.requests_per_sec_address);
  http_options.requests_burst_address =
      static_cast<double>(effective.limits.requests_burst_address);
  if (auto trusted = core::TrustedProxies::Parse(config.server.trusted_proxies); trusted.ok()) {
    http_options.trusted_proxies = std::move(*trusted);  // validated at load
  }
  http_options.on_websocket = (*node)->WebSocketAcceptor();
  http_options.websocket.max_message_bytes = static_cast<uint64_t>(config.limits.frame_max_bytes);
  http_options.websocket.ping_interval_ms = config.gateway.ping_interval_ms;
  http_options.websocket.idle_timeout_ms = config.gateway.idle_timeout_ms;
  http_options.websocket.coalesce_ms = config.gateway.fanout_coalesce_ms;
  net::HttpServer server(pool, router, http_options);
  if (core::Status s = server.Start(); !s.ok()) {
    Log().Error("cannot start the HTTP server", {{"error", std::string(s.message())}});
    return 1;
  }
  pool.Start();
  if (centre) {
    Node* started = node->get();
    {
      std::lock_guard lock(live_mu);
      live = [started, &server](const core::Config& now) {
        core::SetLogLevel(core::ParseLogLevel(now.log.level));
        server.SetRequestRate(static_cast<double>(now.limits.requests_per_sec_address),
                              static_cast<double>(now.limits.requests_burst_address));
        started->ApplyLive(now);
      };
      live(centre->Current());  // what changed while the node started
    }
  }

  AnnounceServing(config, listen->first, server.port(), (*node)->node_id(), pool.size());

  int signo = WaitForStopSignal(signals, [&server] { return server.open_connections(); });
  Log().Info("draining", {{"signal", signo == SIGTERM ? "SIGTERM" : "SIGINT"},
                          {"timeout_ms", config.server.drain_timeout_ms}});
  draining.store(true);
  (*node)->StartDrain();
  // Out of the cluster's lists first, so that nobody new is sent here.
  (*discovery)->Stop();
  if (centre) centre->Stop();  // no more changes while the node winds down
  server.StartDrain();
  bool drained = server.WaitDrained(std::chrono::milliseconds(config.server.drain_timeout_ms));
  if (!drained) {
    Log().Warn("drain timeout reached; closing the remaining connections",
               {{"open", static_cast<int64_t>(server.open_connections())}});
    server.CloseAll();
    server.WaitDrained(std::chrono::seconds(2));
  }
  pool.Stop();
  (*node)->Stop();
  Log().Info("stopped");
  return 0;
}

}  // namespace mpim::app
