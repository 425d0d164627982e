// The gateways an edge sends clients to: the set discovery reports, each
// with its health, and the balancer over the healthy ones.
//
// Health: a gateway is healthy from the moment it appears (so a new one
// gets clients at once); it turns unhealthy when its GET /readyz answers
// anything but 200 or does not answer within the timeout (active checks,
// every health_interval_ms), or when a connection to it fails (passive:
// the proxy reports it). It turns healthy again on its next passed check.
// The balancer is built over the healthy gateways, rebuilt on every change
// and swapped in whole, so Pick never waits on a rebuild. When none is
// healthy Pick chooses among all of them (better a try than a certain 502).
//
// Threads: Update, Pick and ReportFailure from any thread. Health checks
// run on the io_context given to the constructor.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"
#include "net/http_client.h"
#include "rpc/lb/balancer.h"
#include "rpc/lb/registry.h"

namespace mpim::edge {

struct Upstream {
  std::string address;  // HOST:PORT (the node's name in discovery)
  std::string host;
  uint16_t port = 0;
  uint32_t weight = 1;
  std::atomic<int64_t> in_flight{0};  // requests and tunnels open through the edge
  std::atomic<bool> healthy{true};
  // Bumped by each failure report: a health check begun before it cannot
  // bring the gateway back.
  std::atomic<uint64_t> failures{0};
};

struct UpstreamOptions {
  std::string balancer = "bounded_load";
  rpc::lb::BalancerConfig balancer_config;
  int64_t health_interval_ms = 1000;  // 0: no active checks
  int64_t health_timeout_ms = 1000;
};

class Upstreams {
 public:
  // invalid_argument for an unknown balancer.
  static core::StatusOr<std::unique_ptr<Upstreams>> Make(
      boost::asio::io_context& io, UpstreamOptions options,
      core::MetricsRegistry& metrics = core::DefaultRegistry());
  ~Upstreams();

  // The gateways now (HOST:PORT each, with weights); the health of one
  // already known is kept.
  struct Entry {
    std::string address;
    uint32_t weight = 1;
  };
  void Update(const std::vector<Entry>& upstreams);

  // A gateway for a request with `key` (nullopt: none), or null when there
  // is none at all. `avoid` (may be null) is skipped when another is
  // healthy: the one a retry just failed on.
  std::shared_ptr<Upstream> Pick(const std::optional<std::string>& key,
                                 const Upstream* avoid = nullptr) const;

  // A connection to `u` failed: it gets no new clients until its health
  // check passes.
  void ReportFailure(const std::shared_ptr<Upstream>& u);

  size_t size() const;
  size_t healthy() const;

  // Starts the health checks (if any); Stop ends them and must be called
  // (from a thread other than the io_context's, while it runs) before the
  // io_context stops.
  void Start();
  void Stop();

 private:
  struct Snapshot;
  class Load;
  Upstreams(boost::asio::io_context& io, UpstreamOptions options, core::MetricsRegistry& metrics);
  void Rebuild();  // with mu_ held
  void CheckAll();
  void Checked(const std::shared_ptr<Upstream>& u, bool ok, uint64_t failures_before);

  boost::asio::io_context& io_;
  UpstreamOptions options_;
  core::MetricsRegistry& metrics_;
  core::GaugeFamily& healthy_gauge_;
  core::CounterFamily& ejections_;
  std::unique_ptr<net::HttpClient> checker_;
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Upstream>> all_;  // by address
  std::shared_ptr<const Snapshot> snapshot_;    // replaced whole
};

}  // namespace mpim::edge
