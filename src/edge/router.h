// The edge's live routes (routes.h made real): each upstream cluster with
// its source followed (the cluster's discovery by role, a static list, or
// its own DNS SRV lookups), its Upstreams (health, breakers, balancer), its
// hash key and retry budget; and the route table the proxy matches
// requests against, swapped whole on each Apply.
//
// Hot reload: Apply(spec) builds the new table, keeping every cluster whose
// spec did not change (its upstreams, health and breakers stay as they are,
// connections through it are untouched), starting the new ones, and
// retiring the others: they stop following their source and checking
// health, and are freed once no request holds them. Requests in flight keep
// the table and cluster they began with; the next request sees the new one.
//
// Threads: Current() from any thread (the io threads, per request). Apply,
// Start and Stop from a thread that is not an io thread (they wait for
// engines), while the io_context runs.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "discovery/discovery.h"
#include "discovery/dns_discovery.h"
#include "edge/hash_key.h"
#include "edge/routes.h"
#include "edge/upstreams.h"
#include "rpc/policy/retry_budget.h"

namespace mpim::edge {

struct Cluster {
  ClusterSpec spec;
  HashKey hash_key;
  std::unique_ptr<Upstreams> upstreams;
  std::unique_ptr<rpc::policy::RetryBudget> budget;
  // Its source, when it is followed (role: a watch on the cluster's
  // discovery; dns_srv: lookups of its own).
  int watch = -1;
  std::unique_ptr<discovery::DnsDiscovery> dns;
};

struct Route {
  RouteSpec spec;
  std::shared_ptr<Cluster> cluster;
};

struct RouteTable {
  std::vector<Route> routes;

  // The first route that takes the request (routes.h's Matches), or null.
  template <typename HeaderLookup>
  const Route* Match(std::string_view host, std::string_view target,
                     const HeaderLookup& header) const {
    for (const Route& r : routes) {
      if (Matches(r.spec, host, target, header)) return &r;
    }
    return nullptr;
  }
};

struct RouterOptions {
  boost::asio::io_context* io = nullptr;      // health checks
  discovery::Discovery* discovery = nullptr;  // clusters with a role; may be null
  // DNS SRV clusters: resolvers and period (discovery.dns_*).
  std::vector<std::string> dns_servers;
  int64_t dns_refresh_ms = 5000;
  int64_t health_interval_ms = 1000;
  int64_t health_timeout_ms = 1000;
  core::Clock* clock = nullptr;              // breakers and budgets; null: the system's
  core::MetricsRegistry* metrics = nullptr;  // null: the default registry
};

class Router {
 public:
  explicit Router(RouterOptions options);
  ~Router();  // Stop()

  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Makes `spec` the live table (see "Hot reload" above). A spec that
  // cannot be built (a cluster the discovery engine cannot serve: role
  // without a discovery) changes nothing and says why.
  [[nodiscard]] core::Status Apply(const RoutesSpec& spec);

  // The table now; never null once Apply succeeded.
  std::shared_ptr<const RouteTable> Current() const;

  // Starts the health checks (of clusters now and those Apply adds later).
  void Start();
  // Stops every cluster (sources and health checks). Idempotent.
  void Stop();

  // Upstreams healthy now over all clusters, and the clusters with none.
  size_t healthy() const;
  std::vector<std::string> clusters_without_healthy() const;

 private:
  core::StatusOr<std::shared_ptr<Cluster>> Build(const ClusterSpec& spec);
  void StartCluster(Cluster& c);
  void StopCluster(Cluster& c);

  RouterOptions options_;
  std::mutex apply_mu_;  // one Apply, Start or Stop at a time
  bool started_ = false;
  bool stopped_ = false;
  std::vector<std::shared_ptr<Cluster>> retired_;  // stopped, freed once unused

  mutable std::mutex mu_;  // guards table_
  std::shared_ptr<const RouteTable> table_;
};

}  // namespace mpim::edge
