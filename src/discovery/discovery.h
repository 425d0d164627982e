// Service discovery (architecture.md, section 2): which nodes of which
// role make up the cluster, kept current while nodes come and go, and this
// node's identity in it (its snowflake node id). Engines by name
// (discovery.engine, registry.h): `static` (the list in the config) and
// `etcd` (each node registers under a lease and watches the others).
//
// Threading: Register and Stop block (an engine's round trips, up to its
// timeout) and belong to start-up and shutdown, never to an io thread.
// Nodes() may be called from any thread. Watch callbacks run on the
// engine's own thread, one at a time, and must not block (post into the
// io loop).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/status.h"

namespace mpim::discovery {

struct Node {
  std::string name;      // unique in the cluster: "<role>@<address>"
  std::string role;      // gateway | logic | task | all
  std::string address;   // HOST:PORT where other nodes reach it (its internal gRPC)
  int64_t node_id = -1;  // snowflake node id; -1: not known (static lists)
  uint32_t weight = 1;

  bool operator==(const Node&) const = default;
};

using NodesCallback = std::function<void(const std::vector<Node>& nodes)>;

class Discovery {
 public:
  virtual ~Discovery() = default;

  // Makes `self` known to the others and returns its node id: the one the
  // engine handed out (etcd: unique in the cluster, held under the node's
  // lease), or `self.node_id` where the engine hands out none. Unavailable
  // when the engine cannot be reached; already_exists when no id is free.
  virtual core::StatusOr<int64_t> Register(const Node& self) = 0;

  // Every node known now, sorted by name (this one included once
  // registered, on engines that register).
  virtual std::vector<Node> Nodes() const = 0;

  // Calls `on_change` with every node (as Nodes()) now and after each
  // change. Returns an id for Unwatch.
  virtual int Watch(NodesCallback on_change) = 0;
  virtual void Unwatch(int id) = 0;

  // Leaves the cluster (its registration goes at once, not after a lease
  // TTL) and stops the engine's threads. Idempotent.
  virtual void Stop() = 0;
};

// The nodes of one role.
std::vector<Node> WithRole(const std::vector<Node>& nodes, const std::string& role);

}  // namespace mpim::discovery
