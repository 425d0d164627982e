#include "edge/router.h"

#include <algorithm>

#include "edge/log.h"

namespace mpim::edge {
namespace {

// The role a DNS SRV cluster's lookups file their targets under.
constexpr const char* kSrvRole = "upstream";

std::vector<Upstreams::Entry> Entries(const std::vector<discovery::Node>& nodes) {
  std::vector<Upstreams::Entry> entries;
  entries.reserve(nodes.size());
  for (const discovery::Node& n : nodes) entries.push_back({n.address, n.weight});
  return entries;
}

// The clusters a table's routes use, each once.
std::vector<Cluster*> ClustersOf(const RouteTable* table) {
  std::vector<Cluster*> out;
  if (!table) return out;
  for (const Route& r : table->routes) {
    if (std::find(out.begin(), out.end(), r.cluster.get()) == out.end()) {
      out.push_back(r.cluster.get());
    }
  }
  return out;
}

}  // namespace

Router::Router(RouterOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = &core::SystemClock();
  if (!options_.metrics) options_.metrics = &core::DefaultRegistry();
}

Router::~Router() { Stop(); }

core::StatusOr<std::shared_ptr<Cluster>> Router::Build(const ClusterSpec& spec) {
  auto hash_key = HashKey::Parse(spec.hash_key);
  if (!hash_key.ok()) return hash_key.status();
  if (!spec.role.empty() && !options_.discovery) {
    return absl::InvalidArgumentError("upstream " + spec.name +
                                      ": role needs the cluster's discovery");
  }
  UpstreamOptions u;
  u.cluster = spec.name;
  u.balancer = spec.balancer;
  u.health_path = spec.health_path;
  u.grpc_health = spec.protocol == "h2";
  u.health_service = spec.health_service;
  u.health_interval_ms = options_.health_interval_ms;
  u.health_timeout_ms = options_.health_timeout_ms;
  u.breaker = spec.breaker;
  u.zones = spec.zones;
  u.clock = options_.clock;
  auto upstreams = Upstreams::Make(*options_.io, u, *options_.metrics);
  if (!upstreams.ok()) {
    return absl::InvalidArgumentError("upstream " + spec.name + ": " +
                                      std::string(upstreams.status().message()));
  }
  auto budget = rpc::policy::RetryBudget::Create(spec.retry_budget, *options_.clock);
  if (!budget.ok()) {
    return absl::InvalidArgumentError("upstream " + spec.name + ": " +
                                      std::string(budget.status().message()));
  }
  auto c = std::make_shared<Cluster>(Cluster{.spec = spec,
                                             .hash_key = *hash_key,
                                             .upstreams = std::move(*upstreams),
                                             .budget = std::move(*budget)});
  Upstreams* set = c->upstreams.get();
  if (!spec.addresses.empty()) {
    std::vector<Upstreams::Entry> entries;
    for (const std::string& a : spec.addresses) entries.push_back({a, 1});
    set->Update(entries);
  } else if (!spec.role.empty()) {
    c->watch = options_.discovery->Watch([set, role = spec.role](const auto& nodes) {
      set->Update(Entries(discovery::WithRole(nodes, role)));
    });
  } else {
    discovery::DnsDiscoveryOptions dns;
    dns.srv = {std::string(kSrvRole) + "=" + spec.dns_srv};
    dns.servers = options_.dns_servers;
    dns.refresh_ms = options_.dns_refresh_ms;
    c->dns = std::make_unique<discovery::DnsDiscovery>(std::move(dns));
    c->watch = c->dns->Watch(
        [set](const auto& nodes) { set->Update(Entries(discovery::WithRole(nodes, kSrvRole))); });
    // Looks up once now, then on its own thread. This edge is not a target:
    // it registers under a role of its own.
    (void)c->dns->Register(
        discovery::Node{.name = "edge-lookup", .role = "edge-lookup", .address = "0.0.0.0:0"});
  }
  return c;
}

void Router::StartCluster(Cluster& c) { c.upstreams->Start(); }

void Router::StopCluster(Cluster& c) {
  if (c.dns) {
    c.dns->Unwatch(c.watch);
    c.dns->Stop();
  } else if (c.watch >= 0) {
    options_.discovery->Unwatch(c.watch);
  }
  c.watch = -1;
  c.upstreams->Stop();
}

core::Status Router::Apply(const RoutesSpec& spec) {
  std::lock_guard apply(apply_mu_);
  if (stopped_) return absl::FailedPreconditionError("the router is stopped");
  std::shared_ptr<const RouteTable> old = Current();
  std::vector<std::shared_ptr<Cluster>> kept, built;
  for (const ClusterSpec& cs : spec.clusters) {
    std::shared_ptr<Cluster> found;
    if (old) {
      for (const Route& r : old->routes) {
        if (r.cluster->spec == cs) found = r.cluster;
      }
    }
    if (found) {
      kept.push_back(std::move(found));
      continue;
    }
    auto c = Build(cs);
    if (!c.ok()) {
      for (auto& b : built) StopCluster(*b);
      return c.status();
    }
    built.push_back(*c);
  }
  auto table = std::make_shared<RouteTable>();
  for (const RouteSpec& rs : spec.routes) {
    auto by_name = [&](const std::shared_ptr<Cluster>& c) { return c->spec.name == rs.upstream; };
    auto it = std::find_if(kept.begin(), kept.end(), by_name);
    if (it == kept.end()) it = std::find_if(built.begin(), built.end(), by_name);
    if (it == built.end()) {  // ParseRoutes checks this; kept for safety
      for (auto& b : built) StopCluster(*b);
      return absl::InvalidArgumentError("route " + rs.name + ": no upstream " + rs.upstream);
    }
    table->routes.push_back(Route{.spec = rs, .cluster = *it});
  }
  if (started_) {
    for (auto& b : built) StartCluster(*b);
  }
  {
    std::lock_guard lock(mu_);
    table_ = table;
  }
  // Clusters of the old table that the new one does not use.
  if (old) {
    for (const Route& r : old->routes) {
      const auto& c = r.cluster;
      const bool used = std::any_of(table->routes.begin(), table->routes.end(),
                                    [&](const Route& n) { return n.cluster == c; });
      const bool retired =
          std::any_of(retired_.begin(), retired_.end(), [&](const auto& x) { return x == c; });
      if (!used && !retired) {
        StopCluster(*c);
        retired_.push_back(c);
      }
    }
  }
  // Stopped clusters go once no request holds them (Stop waited for their
  // handlers).
  std::erase_if(retired_, [](const auto& c) { return c.use_count() == 1; });
  Log().Info("routes applied", {{"routes", static_cast<int64_t>(table->routes.size())},
                                {"upstreams_new", static_cast<int64_t>(built.size())},
                                {"upstreams_kept", static_cast<int64_t>(kept.size())}});
  return absl::OkStatus();
}

std::shared_ptr<const RouteTable> Router::Current() const {
  std::lock_guard lock(mu_);
  return table_;
}

void Router::Start() {
  std::lock_guard apply(apply_mu_);
  if (started_ || stopped_) return;
  started_ = true;
  for (Cluster* c : ClustersOf(Current().get())) StartCluster(*c);
}

void Router::Stop() {
  std::lock_guard apply(apply_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (Cluster* c : ClustersOf(Current().get())) StopCluster(*c);
}

size_t Router::healthy() const {
  auto t = Current();
  size_t n = 0;
  for (const Cluster* c : ClustersOf(t.get())) n += c->upstreams->healthy();
  return n;
}

std::vector<std::string> Router::clusters_without_healthy() const {
  auto t = Current();
  std::vector<std::string> out;
  for (const Cluster* c : ClustersOf(t.get())) {
    if (c->upstreams->healthy() == 0) out.push_back(c->spec.name);
  }
  return out;
}

}  // namespace mpim::edge
