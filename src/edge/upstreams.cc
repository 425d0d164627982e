#include "edge/upstreams.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>
#include <span>

#include "core/config.h"
#include "edge/grpc_health.h"
#include "edge/log.h"
#include "rpc/lb/hash.h"

namespace mpim::edge {
std::string StickyId(std::string_view address) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx",
                static_cast<unsigned long long>(rpc::lb::KeyHash(address)));
  return out;
}

// In-flight counts for the load-aware balancers, over a snapshot's members.
class Upstreams::Load final : public rpc::lb::LoadView {
 public:
  explicit Load(const std::vector<std::shared_ptr<Upstream>>& members) : members_(members) {}
  int64_t InFlight(size_t index) const override {
    return members_[index]->in_flight.load(std::memory_order_relaxed);
  }

 private:
  const std::vector<std::shared_ptr<Upstream>>& members_;
};

// Upstreams with a balancer over them.
struct Upstreams::Pool {
  std::vector<std::shared_ptr<Upstream>> members;
  std::unique_ptr<rpc::lb::Balancer> balancer;
  std::unique_ptr<Load> load;
};

// What Pick reads, immutable once published: the whole cluster's pool (the
// healthy upstreams, or all when none is), and each zone's (its healthy
// upstreams only; empty when it has none).
struct Upstreams::Snapshot {
  Pool all;
  std::vector<Pool> zones;
};

core::StatusOr<std::unique_ptr<Upstreams>> Upstreams::Make(boost::asio::io_context& io,
                                                           UpstreamOptions options,
                                                           core::MetricsRegistry& metrics) {
  // Checks the balancer's name and config once, over no endpoints.
  auto probe = rpc::lb::CreateBalancer(options.balancer, {}, options.balancer_config);
  if (!probe.ok()) return probe.status();
  if (core::Status s = options.breaker.Validate(); !s.ok()) return s;
  if (!options.clock) options.clock = &core::SystemClock();
  std::unique_ptr<Upstreams> u(new Upstreams(io, std::move(options), metrics));
  net::HttpClientOptions client;
  client.max_connections_per_origin = 1;
  client.max_response_body_bytes = 64 << 10;
  auto checker = net::HttpClient::Make(io, client);
  if (!checker.ok()) return checker.status();
  u->checker_ = std::move(*checker);
  std::lock_guard lock(u->mu_);
  u->Rebuild();
  return u;
}

Upstreams::Upstreams(boost::asio::io_context& io, UpstreamOptions options,
                     core::MetricsRegistry& metrics)
    : io_(io),
      options_(std::move(options)),
      metrics_(metrics),
      healthy_gauge_(metrics.Gauge("mpim_edge_upstream_healthy",
                                   "1 when the upstream gets new clients (passed its last "
                                   "health check, no failed connection since), else 0.",
                                   {"cluster", "upstream"})),
      ejections_(metrics.Counter("mpim_edge_upstream_ejections_total",
                                 "Upstreams taken out of the balancer, by why: check (a failed "
                                 "health check) or connect (a failed connection).",
                                 {"cluster", "upstream", "reason"})),
      breaker_gauge_(metrics.Gauge("mpim_edge_upstream_breaker_state",
                                   "Circuit breaker per upstream: 0 closed, 1 open, 2 half-open.",
                                   {"cluster", "upstream"})),
      timer_(io) {
  core::CounterFamily& picks = metrics.Counter(
      "mpim_edge_zone_picks_total",
      "Upstreams picked for clients of a cluster with zones (retries included), by the zone "
      "picked from (any: the client was not located, or no zone had a healthy upstream).",
      {"cluster", "zone"});
  for (const ZoneSpec& z : options_.zones) {
    zone_picks_.push_back(&picks.With({options_.cluster, z.name}));
  }
  zone_picks_.push_back(&picks.With({options_.cluster, "any"}));
}

Upstreams::~Upstreams() = default;

void Upstreams::Update(const std::vector<Entry>& upstreams) {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Upstream>> next;
  for (const Entry& e : upstreams) {
    auto it = std::find_if(all_.begin(), all_.end(),
                           [&](const auto& u) { return u->address == e.address; });
    if (it != all_.end() && (*it)->weight == e.weight) {
      next.push_back(*it);
      continue;
    }
    auto hp = core::ParseHostPort(e.address);
    if (!hp.ok()) {
      Log().Warn("ignoring an upstream with a bad address", {{"upstream", e.address}});
      continue;
    }
    auto u = std::make_shared<Upstream>();
    u->address = e.address;
    u->host = hp->first;
    u->port = hp->second;
    u->weight = std::max<uint32_t>(1, e.weight);
    u->sticky_id = StickyId(u->address);
    core::Gauge& state = breaker_gauge_.With({options_.cluster, u->address});
    state.Set(0);
    u->breaker = std::move(*rpc::policy::CircuitBreaker::Create(
        options_.breaker, *options_.clock,
        [&state, cluster = options_.cluster, address = u->address](auto, auto to) {
          state.Set(static_cast<int64_t>(to));
          Log().Warn("circuit breaker of an upstream changed state",
                     {{"cluster", cluster},
                      {"upstream", address},
                      {"state", std::string(rpc::policy::StateName(to))}});
        }));
    healthy_gauge_.With({options_.cluster, u->address}).Set(1);
    next.push_back(std::move(u));
  }
  std::sort(next.begin(), next.end(),
            [](const auto& a, const auto& b) { return a->address < b->address; });
  next.erase(std::unique(next.begin(), next.end(),
                         [](const auto& a, const auto& b) { return a->address == b->address; }),
             next.end());
  for (const auto& old : all_) {
    if (std::none_of(next.begin(), next.end(), [&](const auto& u) { return u == old; })) {
      healthy_gauge_.With({options_.cluster, old->address}).Set(0);
    }
  }
  if (next.size() != all_.size() || !std::equal(next.begin(), next.end(), all_.begin())) {
    Log().Info("upstreams changed",
               {{"cluster", options_.cluster}, {"upstreams", static_cast<int64_t>(next.size())}});
  }
  all_ = std::move(next);
  Rebuild();
}

bool Upstreams::Fill(Pool& pool, std::vector<std::shared_ptr<Upstream>> members) const {
  pool.members = std::move(members);
  std::vector<rpc::lb::Endpoint> endpoints;
  endpoints.reserve(pool.members.size());
  for (const auto& u : pool.members) endpoints.push_back({u->address, u->weight});
  auto balancer = rpc::lb::CreateBalancer(options_.balancer, endpoints, options_.balancer_config);
  if (!balancer.ok()) {  // names are unique and weights >= 1: not expected
    Log().Error("cannot build the balancer", {{"error", std::string(balancer.status().message())}});
    return false;
  }
  pool.balancer = std::move(*balancer);
  pool.load = std::make_unique<Load>(pool.members);
  return true;
}

void Upstreams::Rebuild() {
  auto snap = std::make_shared<Snapshot>();
  std::vector<std::shared_ptr<Upstream>> healthy;
  for (const auto& u : all_) {
    if (u->healthy.load()) healthy.push_back(u);
  }
  // Each pool's Load refers to its members where they are: no reallocation.
  snap->zones.reserve(options_.zones.size());
  for (const ZoneSpec& z : options_.zones) {
    std::vector<std::shared_ptr<Upstream>> in_zone;
    for (const auto& u : healthy) {
      if (std::find(z.addresses.begin(), z.addresses.end(), u->address) != z.addresses.end()) {
        in_zone.push_back(u);
      }
    }
    if (!Fill(snap->zones.emplace_back(), std::move(in_zone))) return;
  }
  if (healthy.empty()) healthy = all_;  // none healthy: try them all
  if (!Fill(snap->all, std::move(healthy))) return;
  snapshot_ = std::move(snap);
}

bool Upstreams::Admit(const std::shared_ptr<Upstream>& u, Picked& out) const {
  out.permit = u->breaker->Allow();
  if (!out.permit) return false;
  out.upstream = u;
  return true;
}

Picked Upstreams::Pick(const std::optional<std::string>& key, const Upstream* avoid,
                       const Location* where) const {
  std::shared_ptr<const Snapshot> snap;
  {
    std::lock_guard lock(mu_);
    snap = snapshot_;
  }
  if (!snap) return {};
  if (where && !snap->zones.empty()) {
    for (size_t z : RankZones(options_.zones, *where)) {
      const auto& members = snap->zones[z].members;
      if (members.empty() || (members.size() == 1 && members[0].get() == avoid)) continue;
      Picked picked = PickFrom(snap->zones[z], key, avoid);
      if (picked) {
        zone_picks_[z]->Inc();
        return picked;
      }
    }
    Picked picked = PickFrom(snap->all, key, avoid);
    if (picked) zone_picks_.back()->Inc();
    return picked;
  }
  return PickFrom(snap->all, key, avoid);
}

Picked Upstreams::PickFrom(const Pool& pool, const std::optional<std::string>& key,
                           const Upstream* avoid) const {
  Picked picked;
  if (pool.members.empty()) return picked;
  rpc::lb::PickContext context;
  context.load = pool.load.get();
  if (key) {
    context.has_key = true;
    context.key_hash = rpc::lb::KeyHash(*key);
  }
  int first = pool.balancer->Pick(context);
  if (first < 0) return picked;
  const auto n = static_cast<int>(pool.members.size());
  if (pool.members[first].get() == avoid && n > 1) {
    // The next one on: for a hashing balancer, where the key would go
    // without the one that failed, most of the time.
    first = (first + 1) % n;
  }
  if (Admit(pool.members[first], picked)) return picked;
  // Its breaker refused: the others, least loaded first, the avoided one last.
  std::vector<int> order;
  for (int i = 0; i < n; ++i) {
    if (i != first) order.push_back(i);
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    const bool avoid_a = pool.members[a].get() == avoid;
    const bool avoid_b = pool.members[b].get() == avoid;
    if (avoid_a != avoid_b) return avoid_b;
    return pool.members[a]->in_flight.load(std::memory_order_relaxed) <
           pool.members[b]->in_flight.load(std::memory_order_relaxed);
  });
  for (int i : order) {
    if (Admit(pool.members[i], picked)) return picked;
  }
  picked.circuit_open = true;
  return picked;
}

Picked Upstreams::PickSticky(std::string_view id) const {
  std::shared_ptr<const Snapshot> snap;
  {
    std::lock_guard lock(mu_);
    snap = snapshot_;
  }
  Picked picked;
  if (!snap) return picked;
  for (const auto& u : snap->all.members) {
    if (u->sticky_id == id && u->healthy.load(std::memory_order_relaxed)) {
      Admit(u, picked);
      break;
    }
  }
  return picked;
}

void Upstreams::Record(const Picked& p, bool ok) {
  if (p.upstream) p.upstream->breaker->Record(p.permit, ok);
}

void Upstreams::Release(const Picked& p) {
  if (p.upstream) p.upstream->breaker->Release(p.permit);
}

void Upstreams::ReportFailure(const std::shared_ptr<Upstream>& u) {
  u->failures.fetch_add(1);
  {
    // Health and the snapshot change together: healthy() never counts an
    // upstream out that Pick may still choose.
    std::lock_guard lock(mu_);
    if (!u->healthy.exchange(false)) return;
    Rebuild();
  }
  ejections_.With({options_.cluster, u->address, "connect"}).Inc();
  healthy_gauge_.With({options_.cluster, u->address}).Set(0);
  Log().Warn("upstream unreachable; no new clients until its health check passes",
             {{"cluster", options_.cluster}, {"upstream", u->address}});
  if (!ActiveChecks()) {
    // Nothing would bring it back: it gets another chance after eject_ms.
    auto timer = std::make_shared<boost::asio::steady_timer>(
        io_, std::chrono::milliseconds(options_.eject_ms));
    const uint64_t failures = u->failures.load();
    std::lock_guard lock(mu_);
    if (stopped_.load()) return;
    eject_timers_.insert(timer);
    timer->async_wait([this, u, timer, failures](boost::system::error_code ec) {
      if (ec) return;  // cancelled by Stop
      {
        std::lock_guard lock(mu_);
        eject_timers_.erase(timer);
      }
      Checked(u, true, failures);
    });
  }
}

size_t Upstreams::size() const {
  std::lock_guard lock(mu_);
  return all_.size();
}

size_t Upstreams::healthy() const {
  std::lock_guard lock(mu_);
  const bool checks = ActiveChecks();
  return static_cast<size_t>(std::count_if(all_.begin(), all_.end(), [&](const auto& u) {
    return u->healthy.load() && (u->checked.load() || !checks);
  }));
}

bool Upstreams::ActiveChecks() const {
  return options_.health_interval_ms > 0 && !options_.health_path.empty();
}

void Upstreams::Start() {
  if (!ActiveChecks()) return;
  boost::asio::post(io_, [this] { CheckAll(); });
}

void Upstreams::Stop() {
  if (stopped_.exchange(true)) return;
  // Timers cancelled on their thread; waited for (briefly: the io_context
  // may not be running), so that no handler of this object runs Checked
  // after Stop.
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> cancelled = done->get_future();
  boost::asio::post(io_, [this, done] {
    timer_.cancel();
    std::lock_guard lock(mu_);
    for (const auto& t : eject_timers_) t->cancel();
    eject_timers_.clear();
    alive_.reset();
    done->set_value();
  });
  if (checker_) checker_->Shutdown();
  cancelled.wait_for(std::chrono::seconds(2));
}

void Upstreams::CheckAll() {
  if (stopped_.load()) return;
  std::vector<std::shared_ptr<Upstream>> all;
  {
    std::lock_guard lock(mu_);
    all = all_;
  }
  for (const auto& u : all) {
    const uint64_t failures = u->failures.load();
    if (options_.grpc_health) {
      CheckGrpcHealth(
          io_, u->host, u->port, options_.health_service, options_.health_timeout_ms,
          [this, alive = std::weak_ptr<bool>(alive_), u, failures](bool ok, std::string why) {
            if (alive.expired()) return;  // stopped (on this thread)
            Checked(u, ok, failures, why);
          });
      continue;
    }
    checker_->Request(
        "GET", "http://" + u->address + options_.health_path, {}, {}, options_.health_timeout_ms,
        [this, u, failures](core::StatusOr<net::HttpClientResponse> r) {
          if (r.ok() && r->status == 200) return Checked(u, true, failures);
          Checked(u, false, failures,
                  r.ok() ? "status " + std::to_string(r->status) + ": " + r->body.substr(0, 200)
                         : std::string(r.status().message()));
        });
  }
  timer_.expires_after(std::chrono::milliseconds(options_.health_interval_ms));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) CheckAll();
  });
}

void Upstreams::Checked(const std::shared_ptr<Upstream>& u, bool ok, uint64_t failures_before,
                        const std::string& why) {
  if (stopped_.load()) return;
  if (ok && u->failures.load() != failures_before) return;  // a failure came since it began
  if (ok) {
    u->failed_checks.store(0);
    u->checked.store(true);
  } else if (u->failed_checks.fetch_add(1) + 1 < options_.health_fall && u->healthy.load()) {
    return;  // not yet: one blip does not take it out
  }
  {
    std::lock_guard lock(mu_);  // as in ReportFailure
    if (u->healthy.load() == ok) return;
    u->healthy.store(ok);
    Rebuild();
  }
  healthy_gauge_.With({options_.cluster, u->address}).Set(ok ? 1 : 0);
  if (ok) {
    Log().Info("upstream healthy again", {{"cluster", options_.cluster}, {"upstream", u->address}});
  } else {
    ejections_.With({options_.cluster, u->address, "check"}).Inc();
    Log().Warn("upstream failed its health checks; no new clients",
               {{"cluster", options_.cluster}, {"upstream", u->address}, {"got", why}});
  }
}

}  // namespace mpim::edge
