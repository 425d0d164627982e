// Several `mpim serve` nodes (role all) on shared engines, for the suites
// of what crosses nodes (issue 19): one redis-server of its own, a database
// of its own on the process's shared MariaDB (SharedMariaDb()), and N nodes
// with distinct server.node_id, one signing key, store mysql, cache, routes
// and bus on that Redis. Each node has its own data dir, kept across its
// restarts (Kill then Start again: a kill -9 and a restart).
//
// Threads: one thread at a time.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "support/redis_server.h"
#include "support/server_process.h"

namespace mpim::testing {

struct NodeClusterOptions {
  int nodes = 3;
  std::string bus_engine = "redis-pubsub";
  int64_t node_ttl_ms = 3000;  // route.node_ttl_ms: how soon a dead node's users go offline
  // More `--set k=v` for every node (e.g. "groups.fanout_threshold=20").
  std::vector<std::string> settings;
};

class NodeCluster {
 public:
  explicit NodeCluster(NodeClusterOptions options = {});
  ~NodeCluster();  // kills the nodes and Redis, drops the database, removes the dirs

  NodeCluster(const NodeCluster&) = delete;
  NodeCluster& operator=(const NodeCluster&) = delete;

  // Starts Redis and every node; false with error() on failure.
  bool Start();
  int size() const { return static_cast<int>(nodes_.size()); }
  ServerProcess& node(int i) { return *nodes_.at(static_cast<size_t>(i)); }
  uint16_t port(int i) { return node(i).port(); }
  // SIGKILLs node i (as a crash does).
  void Kill(int i);
  // Starts node i again on its dir, ports and settings; false with error().
  bool Restart(int i);
  RedisServer& redis() { return redis_; }
  const std::string& error() const { return error_; }

 private:
  ServerProcess::Options NodeOptions(int i) const;

  NodeClusterOptions options_;
  RedisServer redis_;
  std::string db_name_;
  std::string mysql_url_;
  std::vector<std::filesystem::path> dirs_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
  std::string error_;
};

}  // namespace mpim::testing
