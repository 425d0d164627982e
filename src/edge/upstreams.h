// One upstream cluster of an edge (routes.h): the upstreams its source
// reports (discovery, a static list, DNS SRV), each with its health and
// circuit breaker, and the balancer over the healthy ones.
//
// Health: an upstream is healthy from the moment it appears (so a new one
// gets clients at once); it turns unhealthy when its GET health_path
// answers anything but 200 or does not answer within the timeout
// health_fall times in a row (active checks, every health_interval_ms; for
// HTTP/2 upstreams gRPC's health Check instead, grpc_health.h; none
// when health_path is empty: one blip of a gateway's readiness does not
// take it out), or at once when a connection to it fails (passive: the
// proxy reports it). It turns
// healthy again on its next passed check (with no active checks: after
// eject_ms). The balancer is built over the healthy upstreams, rebuilt on
// every change and swapped in whole, so Pick never waits on a rebuild. When
// none is healthy Pick chooses among all of them (better a try than a
// certain 502).
//
// Zones (GeoIP, routes.h ZoneSpec): when the options name zones and Pick is
// given the client's location, the upstreams of the zones that serve it
// come first (geoip.h RankZones): the first zone in that order with a
// healthy upstream whose breaker admits the request gets it, balanced over
// that zone's healthy upstreams; when none does (or the location is
// unknown), any upstream of the cluster.
//
// Circuit breaker (rpc/policy/circuit_breaker.h), one per upstream: the
// proxy records each exchange (a connection that failed, broke or timed
// out, or an answer 500, 502, 503 or 504, is a failure); an open breaker
// refuses requests, which then go to another upstream whose breaker admits
// them (and are refused with 503 when none does).
//
// Threads: Update, Pick, Record and ReportFailure from any thread. Health
// checks run on the io_context given to Make.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "edge/geoip.h"
#include "net/http_client.h"
#include "rpc/lb/balancer.h"
#include "rpc/lb/registry.h"
#include "rpc/policy/circuit_breaker.h"

namespace mpim::edge {

struct Upstream {
  std::string address;  // HOST:PORT (the node's name in discovery)
  std::string host;
  uint16_t port = 0;
  uint32_t weight = 1;
  std::string sticky_id;  // the sticky cookie's value for it: a hash of the address
  std::unique_ptr<rpc::policy::CircuitBreaker> breaker;
  std::atomic<int64_t> in_flight{0};  // requests and tunnels open through the edge
  std::atomic<bool> healthy{true};
  // Bumped by each failure report: a health check begun before it cannot
  // bring the gateway back.
  std::atomic<uint64_t> failures{0};
  std::atomic<int> failed_checks{0};  // active checks failed in a row
  std::atomic<bool> checked{false};   // has passed an active check
};

struct UpstreamOptions {
  std::string cluster = "gateways";  // the metrics' cluster label
  std::string balancer = "bounded_load";
  rpc::lb::BalancerConfig balancer_config;
  std::string health_path = "/readyz";  // empty: no active checks
  // Checks by gRPC health (grpc_health.h, of health_service) instead of GET
  // health_path: HTTP/2 upstreams.
  bool grpc_health = false;
  std::string health_service;
  int64_t health_interval_ms = 1000;  // 0: no active checks
  int64_t health_timeout_ms = 1000;
  int health_fall = 2;  // failed checks in a row that take a healthy upstream out
  // Without active checks, an upstream ejected on a failed connection gets
  // clients again after this long.
  int64_t eject_ms = 5000;
  rpc::policy::CircuitBreakerConfig breaker;
  std::vector<ZoneSpec> zones;
  core::Clock* clock = nullptr;  // the breakers' clock; null: the system's
};

// An upstream chosen for one request, with its breaker's permit: give the
// permit back with Upstreams::Record (or Release) exactly once.
struct Picked {
  std::shared_ptr<Upstream> upstream;
  rpc::policy::CircuitBreaker::Permit permit;
  bool circuit_open = false;  // none was picked because every breaker refused
  explicit operator bool() const { return upstream != nullptr; }
};

// The sticky cookie's value for an upstream at `address`: 16 hex digits of
// a stable hash, the same on every edge (addresses stay private).
std::string StickyId(std::string_view address);

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

  // An upstream for a request with `key` (nullopt: none): the balancer's
  // choice, or when its breaker refuses, the least loaded other one whose
  // breaker admits. Empty when there is none at all, or none admits
  // (circuit_open). `avoid` (may be null) is skipped when another is
  // healthy: the one a retry just failed on.
  // With zones, `where` (may be null: unknown) orders them.
  Picked Pick(const std::optional<std::string>& key, const Upstream* avoid = nullptr,
              const Location* where = nullptr) const;

  // The healthy upstream whose sticky_id is `id`, if its breaker admits;
  // empty otherwise (the caller then picks as usual).
  Picked PickSticky(std::string_view id) const;

  // The outcome of an exchange with a picked upstream, for its breaker.
  void Record(const Picked& p, bool ok);
  void Release(const Picked& p);

  // A connection to `u` failed: it gets no new clients until its health
  // check passes.
  void ReportFailure(const std::shared_ptr<Upstream>& u);

  const UpstreamOptions& options() const { return options_; }

  size_t size() const;
  // Healthy upstreams that have also passed a health check (any, without
  // active checks): what the edge's readiness counts. A new upstream gets
  // requests at once, but an edge is not ready on upstreams it has not
  // seen answer.
  size_t healthy() const;

  // Starts the health checks (if any); Stop ends them and must be called
  // (from a thread other than the io_context's, while it runs) before the
  // io_context stops.
  void Start();
  void Stop();

 private:
  struct Pool;
  struct Snapshot;
  class Load;
  Picked PickFrom(const Pool& pool, const std::optional<std::string>& key,
                  const Upstream* avoid) const;
  Upstreams(boost::asio::io_context& io, UpstreamOptions options, core::MetricsRegistry& metrics);
  void Rebuild();  // with mu_ held
  // Fills `pool` with `members` and a balancer over them; false (logged)
  // if the balancer cannot be built.
  bool Fill(Pool& pool, std::vector<std::shared_ptr<Upstream>> members) const;
  void CheckAll();
  // `why`: what the failed check got (for the log).
  void Checked(const std::shared_ptr<Upstream>& u, bool ok, uint64_t failures_before,
               const std::string& why = {});
  bool Admit(const std::shared_ptr<Upstream>& u, Picked& out) const;
  bool ActiveChecks() const;

  boost::asio::io_context& io_;
  UpstreamOptions options_;
  core::MetricsRegistry& metrics_;
  core::GaugeFamily& healthy_gauge_;
  core::CounterFamily& ejections_;
  core::GaugeFamily& breaker_gauge_;
  std::vector<core::Counter*> zone_picks_;  // per zone, then "any"
  std::unique_ptr<net::HttpClient> checker_;
  std::shared_ptr<bool> alive_ =
      std::make_shared<bool>(true);  // gRPC checks' callbacks: until Stop
  boost::asio::steady_timer timer_;
  std::atomic<bool> stopped_{false};

  mutable std::mutex mu_;
  std::vector<std::shared_ptr<Upstream>> all_;  // by address
  std::shared_ptr<const Snapshot> snapshot_;    // replaced whole
  std::set<std::shared_ptr<boost::asio::steady_timer>> eject_timers_;
};

}  // namespace mpim::edge
