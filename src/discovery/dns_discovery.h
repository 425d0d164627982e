// discovery.engine = "dns": the nodes of each role are the targets of a DNS
// SRV record (discovery.dns_srv, ROLE=_service._proto.name each), as a
// Kubernetes headless service publishes them, read again every
// discovery.dns_refresh_ms through c-ares (against discovery.dns_servers,
// or the system's resolvers). Each target is resolved to its IPv4 address;
// a node is named ROLE@TARGET:PORT (the target's name, stable while its
// address may change) and weighted by the record's weight (0 counts as 1).
//
// A name that does not exist or has no records means no nodes of that role;
// a lookup that fails (timeout, server failure) keeps the role's last list,
// so a resolver that blips takes no node away. This node is listed once it
// registers; its node id is the config's (server.node_id), as with static.
//
// Threading: as Discovery (discovery.h); one thread of its own resolves.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "discovery/discovery.h"
#include "discovery/watchers.h"

namespace mpim::discovery {

struct DnsDiscoveryOptions {
  std::vector<std::string> srv;      // ROLE=_service._proto.name
  std::vector<std::string> servers;  // HOST:PORT; empty: /etc/resolv.conf
  int64_t refresh_ms = 5000;
  int64_t timeout_ms = 2000;  // one lookup, all tries
};

class DnsDiscovery final : public Discovery {
 public:
  explicit DnsDiscovery(DnsDiscoveryOptions options);
  ~DnsDiscovery() override;  // Stop()

  // Resolves once before it returns (so that a node starts knowing its
  // peers), then every refresh_ms on its thread.
  core::StatusOr<int64_t> Register(const Node& self) override;
  std::vector<Node> Nodes() const override { return watchers_.Nodes(); }
  int Watch(NodesCallback on_change) override { return watchers_.Add(std::move(on_change)); }
  void Unwatch(int id) override { watchers_.Remove(id); }
  void Stop() override;

  // One round of lookups now (tests; the thread does it on its own).
  void Refresh();

 private:
  // The nodes of `name`'s SRV records; nullopt when the lookup failed.
  std::optional<std::vector<Node>> Resolve(const std::string& role, const std::string& name);
  void Loop();

  const DnsDiscoveryOptions options_;
  Watchers watchers_;

  std::mutex mu_;  // guards by_role_, self_, stopping_, started_
  std::condition_variable cv_;
  std::map<std::string, std::vector<Node>> by_role_;  // the last good answer per SRV entry
  std::optional<Node> self_;
  bool stopping_ = false;
  bool started_ = false;
  std::mutex resolve_mu_;  // one round at a time
  std::thread thread_;
};

}  // namespace mpim::discovery
