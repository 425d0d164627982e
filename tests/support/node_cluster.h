// Several `mpim serve` nodes on shared engines, for the suites of what
// crosses nodes (issues 19, 20): one redis-server of its own, a database of
// its own on the process's shared MariaDB (SharedMariaDb()), and nodes with
// distinct server.node_id, one signing key, store mysql, cache, routes and
// bus on that Redis. Either N nodes of role `all`, or one node per entry of
// `roles` (gateway, logic, task): then the gateways find the logic nodes
// through discovery, static (the logic nodes' fixed gRPC ports) or an etcd
// of the cluster's own. Each node has its own data dir and ports, kept
// across its restarts (Kill then Restart: a kill -9 and a restart).
//
// Threads: one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/etcd_server.h"
#include "support/redis_server.h"
#include "support/server_process.h"

namespace mpim::testing {

struct NodeClusterOptions {
  int nodes = 3;  // of role all, when `roles` is empty
  // One node per entry: "gateway", "logic" or "task" (or "all").
  std::vector<std::string> roles;
  std::string discovery = "static";  // static | etcd
  std::string bus_engine = "redis-pubsub";
  int64_t node_ttl_ms = 3000;  // route.node_ttl_ms: how soon a dead node's users go offline
  // More `--set k=v` for every node (e.g. "groups.fanout_threshold=20").
  std::vector<std::string> settings;
  // More environment for every node (MPIM_<SECTION>_<KEY>=...).
  std::vector<std::pair<std::string, std::string>> env;
};

class NodeCluster {
 public:
  explicit NodeCluster(NodeClusterOptions options = {});
  ~NodeCluster();  // kills the nodes and Redis, drops the database, removes the dirs

  NodeCluster(const NodeCluster&) = delete;
  NodeCluster& operator=(const NodeCluster&) = delete;

  // Starts Redis and every node; false with error() on failure.
  bool Start();
  int size() const;
  ServerProcess& node(int i) { return *nodes_.at(static_cast<size_t>(i)); }
  uint16_t port(int i) { return node(i).port(); }
  const std::string& role(int i) const { return roles_.at(static_cast<size_t>(i)); }
  // The last `bytes` of every started node's log, headed by role and number
  // (for a failed test's TearDown; nodes never started are skipped).
  std::string LogTails(size_t bytes) const;
  // The nodes that serve clients (role all or gateway), in order: client(k)
  // is the index of the k-th.
  int clients() const;
  int client(int k) const;
  // The index of the k-th node of `role`; -1 if none.
  int Nth(const std::string& role, int k) const;
  // A process set up as node i (its role, node id, settings, rpc port) on a
  // fresh data dir, not started: a misconfigured twin.
  std::unique_ptr<ServerProcess> Twin(int i) const;
  // Starts one more node of `role` (discovery etcd: the others find it);
  // its index, or -1 with error().
  int AddNode(const std::string& role);
  // SIGKILLs node i (as a crash does).
  void Kill(int i);
  // Starts node i again on its dir, ports and settings; false with error().
  bool Restart(int i);
  RedisServer& redis() { return redis_; }
  EtcdServer* etcd() { return etcd_.get(); }  // discovery etcd only
  const std::string& error() const { return error_; }

 private:
  ServerProcess::Options NodeOptions(int i) const;
  bool StartNode(int i);

  NodeClusterOptions options_;
  RedisServer redis_;
  std::unique_ptr<EtcdServer> etcd_;
  std::vector<std::string> roles_;
  std::vector<uint16_t> rpc_ports_;  // logic nodes: their gRPC port; 0 for others
  std::string db_name_;
  std::string mysql_url_;
  std::vector<std::filesystem::path> dirs_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::string error_;
};

}  // namespace mpim::testing
