#include "discovery/etcd_discovery.h"

#include <algorithm>
#include <boost/json.hpp>
#include <map>

#include "core/logging.h"

namespace mpim::discovery {
namespace {

namespace json = boost::json;

const core::Logger& Log() {
  static const core::Logger log("discovery");
  return log;
}

constexpr int64_t kNodeIds = 1024;  // snowflake: 10 bits
constexpr int64_t kRetryMs = 500;

std::string NodeValue(const Node& n) {
  return json::serialize(json::object{
      {"role", n.role}, {"address", n.address}, {"node_id", n.node_id}, {"weight", n.weight}});
}

// A registration; nullopt when its value is not one of ours.
std::optional<Node> ParseNode(const std::string& name, const std::string& value) {
  boost::system::error_code ec;
  json::value v = json::parse(value, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& o = v.as_object();
  const json::value* role = o.if_contains("role");
  const json::value* address = o.if_contains("address");
  const json::value* id = o.if_contains("node_id");
  const json::value* weight = o.if_contains("weight");
  if (!role || !role->is_string() || !address || !address->is_string() || !id || !id->is_int64()) {
    return std::nullopt;
  }
  Node n;
  n.name = name;
  n.role = std::string(role->as_string());
  n.address = std::string(address->as_string());
  n.node_id = id->as_int64();
  if (weight && weight->is_int64() && weight->as_int64() > 0) {
    n.weight = static_cast<uint32_t>(weight->as_int64());
  }
  return n;
}

// Where a node starts looking for a free id: its own wish if it has one,
// else spread by name so that nodes starting together rarely collide.
int64_t FirstId(const Node& self) {
  if (self.node_id >= 0 && self.node_id < kNodeIds) return self.node_id;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : self.name) h = (h ^ c) * 1099511628211ull;
  return static_cast<int64_t>(h % kNodeIds);
}

}  // namespace

EtcdDiscovery::EtcdDiscovery(EtcdDiscoveryOptions options)
    : options_(std::move(options)), etcd_(options_.etcd) {}

EtcdDiscovery::~EtcdDiscovery() { Stop(); }

core::StatusOr<int64_t> EtcdDiscovery::ClaimId(int64_t lease, int64_t preferred) {
  for (int64_t i = 0; i < kNodeIds; ++i) {
    const int64_t id = (preferred + i) % kNodeIds;
    std::string holder;
    auto claimed = etcd_.PutIfAbsent(options_.prefix + "node-ids/" + std::to_string(id), self_.name,
                                     lease, &holder);
    if (!claimed.ok()) return claimed.status();
    if (*claimed) return id;
  }
  return absl::AlreadyExistsError("no free node id: all " + std::to_string(kNodeIds) +
                                  " are held under " + options_.prefix + "node-ids/");
}

core::Status EtcdDiscovery::Publish(int64_t lease) {
  return etcd_.Put(options_.prefix + "nodes/" + self_.name, NodeValue(self_), lease);
}

core::StatusOr<int64_t> EtcdDiscovery::Register(const Node& self) {
  if (keeper_.joinable()) return absl::FailedPreconditionError("already registered");
  self_ = self;
  auto lease = etcd_.GrantLease(options_.lease_ttl_s);
  if (!lease.ok()) return lease.status();
  auto id = ClaimId(*lease, FirstId(self_));
  if (!id.ok()) {
    (void)etcd_.RevokeLease(*lease);
    return id.status();
  }
  self_.node_id = *id;
  if (core::Status s = Publish(*lease); !s.ok()) {
    (void)etcd_.RevokeLease(*lease);
    return s;
  }
  lease_ = *lease;
  // The first list, this node in it, before Register returns.
  if (auto range = etcd_.GetPrefix(options_.prefix + "nodes/"); range.ok()) {
    std::vector<Node> nodes;
    for (const EtcdKeyValue& kv : range->kvs) {
      if (auto n = ParseNode(kv.key.substr(options_.prefix.size() + 6), kv.value)) {
        nodes.push_back(std::move(*n));
      }
    }
    watchers_.Set(std::move(nodes));
  }
  keeper_ = std::thread([this] { KeepLoop(); });
  watcher_ = std::thread([this] { WatchLoop(); });
  Log().Info("registered in etcd", {{"node", self_.name},
                                    {"role", self_.role},
                                    {"node_id", self_.node_id},
                                    {"lease_ttl_s", options_.lease_ttl_s}});
  return self_.node_id;
}

bool EtcdDiscovery::Sleep(int64_t ms) {
  std::unique_lock lock(mu_);
  wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
  return !stopping_;
}

void EtcdDiscovery::KeepLoop() {
  const int64_t every_ms = options_.lease_ttl_s * 1000 / 3;
  int64_t wait_ms = every_ms;
  bool lost = false;
  while (Sleep(wait_ms)) {
    auto ttl = etcd_.KeepAlive(lease_.load());
    if (ttl.ok()) {
      wait_ms = every_ms;
      continue;
    }
    wait_ms = kRetryMs;  // etcd away: try again soon, the lease may still live
    if (ttl.status().code() != absl::StatusCode::kNotFound) continue;
    // The lease expired (etcd was away longer than its TTL): a new one, the
    // same node id again and the registration on it.
    if (!lost) Log().Warn("etcd lease lost; registering again", {{"node", self_.name}});
    lost = true;
    auto lease = etcd_.GrantLease(options_.lease_ttl_s);
    if (!lease.ok()) continue;
    std::string holder;
    auto claimed = etcd_.PutIfAbsent(options_.prefix + "node-ids/" + std::to_string(self_.node_id),
                                     self_.name, *lease, &holder);
    if (!claimed.ok() || !*claimed || !Publish(*lease).ok()) {
      if (claimed.ok() && !*claimed) {
        Log().Error("node id taken by another node while this one's lease was lost",
                    {{"node", self_.name}, {"node_id", self_.node_id}, {"holder", holder}});
      }
      (void)etcd_.RevokeLease(*lease);
      continue;
    }
    lease_ = *lease;
    lost = false;
    wait_ms = every_ms;
    Log().Info("registered in etcd again", {{"node", self_.name}, {"node_id", self_.node_id}});
  }
}

void EtcdDiscovery::WatchLoop() {
  const std::string prefix = options_.prefix + "nodes/";
  int64_t backoff_ms = 100;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto range = etcd_.GetPrefix(prefix);
    if (!range.ok()) {
      if (!Sleep(backoff_ms)) return;
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
      continue;
    }
    std::map<std::string, Node> nodes;
    for (const EtcdKeyValue& kv : range->kvs) {
      const std::string name = kv.key.substr(prefix.size());
      if (auto n = ParseNode(name, kv.value)) nodes[name] = std::move(*n);
    }
    auto publish = [&] {
      std::vector<Node> list;
      for (const auto& [name, n] : nodes) list.push_back(n);
      if (watchers_.Set(std::move(list))) {
        Log().Info("nodes changed", {{"nodes", uint64_t{nodes.size()}}});
      }
    };
    publish();
    auto watch = etcd_.WatchPrefix(prefix, range->revision + 1);
    if (!watch.ok()) {
      if (!Sleep(backoff_ms)) return;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      watch_ = watch->get();
    }
    for (;;) {
      auto events = (*watch)->Next();
      if (!events.ok()) break;
      backoff_ms = 100;
      for (const EtcdEvent& e : *events) {
        const std::string name = e.kv.key.substr(prefix.size());
        if (e.deleted) {
          nodes.erase(name);
        } else if (auto n = ParseNode(name, e.kv.value)) {
          nodes[name] = std::move(*n);
        }
      }
      publish();
    }
    {
      std::lock_guard lock(mu_);
      watch_ = nullptr;
      if (stopping_) return;
    }
    if (!Sleep(backoff_ms)) return;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
  }
}

void EtcdDiscovery::Halt(bool revoke) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    if (watch_) watch_->Cancel();
  }
  wake_.notify_all();
  if (keeper_.joinable()) keeper_.join();
  if (watcher_.joinable()) watcher_.join();
  if (revoke && lease_.load() != 0) {
    // The registration and the node id go with the lease, at once.
    if (core::Status s = etcd_.RevokeLease(lease_.load()); !s.ok()) {
      Log().Warn("etcd lease not revoked; it expires by itself",
                 {{"error", std::string(s.message())}});
    }
  }
}

void EtcdDiscovery::Stop() { Halt(/*revoke=*/true); }

void EtcdDiscovery::Abandon() { Halt(/*revoke=*/false); }

}  // namespace mpim::discovery
