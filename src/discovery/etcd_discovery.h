// discovery.engine = "etcd": each node registers under a lease that it
// keeps alive every third of discovery.lease_ttl_s, and watches the
// others' registrations. A node that dies (kill -9) is gone from every
// other node's list once its lease expires; a node that joins is in their
// lists as soon as its registration is written (the watch pushes it).
//
// Keys (under discovery.etcd_prefix, "/mpim/" by default):
//   nodes/<name>      {"role", "address", "node_id", "weight"}, on the lease
//   node-ids/<id>     <name>: the snowflake node id this node holds, on the
//                     lease, taken with a create-if-absent transaction, so
//                     two live nodes never hold one id
//
// etcd going away: registrations stay (etcd keeps leases alive across its
// own restart), the watch is opened again with a fresh read once etcd
// answers, and Nodes() keeps the last list meanwhile. A lease that did
// expire (etcd away longer than its TTL) is replaced and the node
// registered again, with the same node id unless another node took it
// (then an error is logged and the node keeps trying: its ids could clash).
//
// Threading: as Discovery (discovery.h); two threads of its own (keeper,
// watcher) between Register and Stop.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "discovery/discovery.h"
#include "discovery/etcd_client.h"
#include "discovery/watchers.h"

namespace mpim::discovery {

struct EtcdDiscoveryOptions {
  EtcdOptions etcd;
  std::string prefix = "/mpim/";
  int64_t lease_ttl_s = 10;
};

class EtcdDiscovery final : public Discovery {
 public:
  explicit EtcdDiscovery(EtcdDiscoveryOptions options);
  ~EtcdDiscovery() override;

  core::StatusOr<int64_t> Register(const Node& self) override;
  std::vector<Node> Nodes() const override { return watchers_.Nodes(); }
  int Watch(NodesCallback on_change) override { return watchers_.Add(std::move(on_change)); }
  void Unwatch(int id) override { watchers_.Remove(id); }
  void Stop() override;

  // For tests: stops keeping the lease alive and watching, without
  // revoking anything, as a process killed with SIGKILL would.
  void Abandon();

  int64_t lease() const { return lease_.load(); }

 private:
  core::StatusOr<int64_t> ClaimId(int64_t lease, int64_t preferred);
  core::Status Publish(int64_t lease);
  void KeepLoop();
  void WatchLoop();
  // Sleeps up to `ms`; false when stopping.
  bool Sleep(int64_t ms);
  void Halt(bool revoke);

  const EtcdDiscoveryOptions options_;
  EtcdClient etcd_;
  Watchers watchers_;
  Node self_;
  std::atomic<int64_t> lease_{0};

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  EtcdWatch* watch_ = nullptr;  // the watch in progress, to cancel
  std::thread keeper_;
  std::thread watcher_;
};

}  // namespace mpim::discovery
