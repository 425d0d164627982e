#include "edge/upstreams.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <span>

#include "core/config.h"
#include "core/logging.h"
#include "rpc/lb/hash.h"

namespace mpim::edge {
namespace {

const core::Logger& Log() {
  static const core::Logger log("edge");
  return log;
}

}  // namespace

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

// What Pick reads: the members the balancer was built over (the healthy
// gateways, or all when none is), immutable once published.
struct Upstreams::Snapshot {
  std::vector<std::shared_ptr<Upstream>> members;
  std::unique_ptr<rpc::lb::Balancer> balancer;
  std::unique_ptr<Load> load;
};

core::StatusOr<std::unique_ptr<Upstreams>> Upstreams::Make(boost::asio::io_context& io,
                                                           UpstreamOptions options,
                                                           core::MetricsRegistry& metrics) {
  // Checks the balancer's name and config once, over no endpoints.
  auto probe = rpc::lb::CreateBalancer(options.balancer, {}, options.balancer_config);
  if (!probe.ok()) return probe.status();
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
                                   "1 when the gateway gets new clients (passed its last "
                                   "health check, no failed connection since), else 0.",
                                   {"upstream"})),
      ejections_(metrics.Counter("mpim_edge_upstream_ejections_total",
                                 "Gateways taken out of the balancer, by why: check (a failed "
                                 "health check) or connect (a failed connection).",
                                 {"upstream", "reason"})),
      timer_(io) {}

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
    healthy_gauge_.With({u->address}).Set(1);
    next.push_back(std::move(u));
  }
  std::sort(next.begin(), next.end(),
            [](const auto& a, const auto& b) { return a->address < b->address; });
  next.erase(std::unique(next.begin(), next.end(),
                         [](const auto& a, const auto& b) { return a->address == b->address; }),
             next.end());
  for (const auto& old : all_) {
    if (std::none_of(next.begin(), next.end(), [&](const auto& u) { return u == old; })) {
      healthy_gauge_.With({old->address}).Set(0);
    }
  }
  if (next.size() != all_.size() || !std::equal(next.begin(), next.end(), all_.begin())) {
    Log().Info("upstreams changed", {{"upstreams", static_cast<int64_t>(next.size())}});
  }
  all_ = std::move(next);
  Rebuild();
}

void Upstreams::Rebuild() {
  auto snap = std::make_shared<Snapshot>();
  for (const auto& u : all_) {
    if (u->healthy.load()) snap->members.push_back(u);
  }
  if (snap->members.empty()) snap->members = all_;  // none healthy: try them all
  std::vector<rpc::lb::Endpoint> endpoints;
  endpoints.reserve(snap->members.size());
  for (const auto& u : snap->members) endpoints.push_back({u->address, u->weight});
  auto balancer = rpc::lb::CreateBalancer(options_.balancer, endpoints, options_.balancer_config);
  if (!balancer.ok()) {  // names are unique and weights >= 1: not expected
    Log().Error("cannot build the balancer", {{"error", std::string(balancer.status().message())}});
    return;
  }
  snap->balancer = std::move(*balancer);
  snap->load = std::make_unique<Load>(snap->members);
  snapshot_ = std::move(snap);
}

std::shared_ptr<Upstream> Upstreams::Pick(const std::optional<std::string>& key,
                                          const Upstream* avoid) const {
  std::shared_ptr<const Snapshot> snap;
  {
    std::lock_guard lock(mu_);
    snap = snapshot_;
  }
  if (!snap || snap->members.empty()) return nullptr;
  rpc::lb::PickContext context;
  context.load = snap->load.get();
  if (key) {
    context.has_key = true;
    context.key_hash = rpc::lb::KeyHash(*key);
  }
  int i = snap->balancer->Pick(context);
  if (i < 0) return nullptr;
  if (snap->members[i].get() == avoid && snap->members.size() > 1) {
    // The next one on: for a hashing balancer, where the key would go
    // without the one that failed, most of the time.
    i = (i + 1) % static_cast<int>(snap->members.size());
  }
  return snap->members[i];
}

void Upstreams::ReportFailure(const std::shared_ptr<Upstream>& u) {
  u->failures.fetch_add(1);
  if (!u->healthy.exchange(false)) return;
  ejections_.With({u->address, "connect"}).Inc();
  healthy_gauge_.With({u->address}).Set(0);
  Log().Warn("upstream unreachable; no new clients until its health check passes",
             {{"upstream", u->address}});
  std::lock_guard lock(mu_);
  Rebuild();
}

size_t Upstreams::size() const {
  std::lock_guard lock(mu_);
  return all_.size();
}

size_t Upstreams::healthy() const {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(all_.begin(), all_.end(), [](const auto& u) { return u->healthy.load(); }));
}

void Upstreams::Start() {
  if (options_.health_interval_ms <= 0) return;
  boost::asio::post(io_, [this] { CheckAll(); });
}

void Upstreams::Stop() {
  stopped_.store(true);
  boost::asio::post(io_, [this] { timer_.cancel(); });
  if (checker_) checker_->Shutdown();
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
    checker_->Request("GET", "http://" + u->address + "/readyz", {}, {}, options_.health_timeout_ms,
                      [this, u, failures](core::StatusOr<net::HttpClientResponse> r) {
                        Checked(u, r.ok() && r->status == 200, failures);
                      });
  }
  timer_.expires_after(std::chrono::milliseconds(options_.health_interval_ms));
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) CheckAll();
  });
}

void Upstreams::Checked(const std::shared_ptr<Upstream>& u, bool ok, uint64_t failures_before) {
  if (stopped_.load()) return;
  if (ok && u->failures.load() != failures_before) return;  // a failure came since it began
  if (u->healthy.load() == ok) return;
  u->healthy.store(ok);
  healthy_gauge_.With({u->address}).Set(ok ? 1 : 0);
  if (ok) {
    Log().Info("upstream healthy again", {{"upstream", u->address}});
  } else {
    ejections_.With({u->address, "check"}).Inc();
    Log().Warn("upstream failed its health check; no new clients", {{"upstream", u->address}});
  }
  std::lock_guard lock(mu_);
  Rebuild();
}

}  // namespace mpim::edge
