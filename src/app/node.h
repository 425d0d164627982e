// One process of MPIM: the role config.server.role names, wired from the
// parts in parts.h. serve.cc runs the HTTP server every role has (the
// client API where the role serves it, and /healthz, /readyz, /metrics)
// around a Node.
//
//   all      every service in one process, direct calls (all_in_one.cc)
//   gateway  client connections; services are gRPC clients of the logic
//            role; events reach its sessions through its bus inbox
//   logic    the services, served over gRPC (service/remote/logic_server.h)
//   task     background jobs (large-group fan-out)
//
// Each joins the cluster through discovery: a logic node once its gRPC
// server is bound (its address is what gateways dial), the others at start.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/callback.h"
#include "core/config.h"
#include "core/status.h"
#include "discovery/discovery.h"
#include "net/router.h"
#include "net/websocket.h"

namespace mpim::app {

class Node {
 public:
  virtual ~Node() = default;

  // Registers the client API on `router` (roles that serve it).
  virtual void AddRoutes(net::Router&) {}
  // Takes WebSocket upgrades on /ws; null where the role serves no clients.
  virtual net::WsAcceptFn WebSocketAcceptor() { return nullptr; }
  // OK once the node can do its work (for /readyz); may complete on any
  // thread. The error says what it waits for.
  virtual void CheckReady(core::DoneCallback done) = 0;
  // SIGTERM: stop taking new work from other nodes (a logic node tells its
  // callers NOT_SERVING), before the HTTP server drains.
  virtual void StartDrain() {}
  // Finishes the work in flight and releases everything. Idempotent.
  virtual void Stop() = 0;
  // Settings changed at run time (the configuration centre): `now` is the
  // whole configuration, validated; the node applies the core::LiveKeys()
  // it uses (serve.cc applies the HTTP server's and the log level).
  virtual void ApplyLive(const core::Config& /*now*/) {}
  // The snowflake node id this process runs with.
  virtual int64_t node_id() const = 0;
};

// Starts the node of config.server.role and makes it known through
// `discovery` (which must outlive it). Blocks until it is built.
core::StatusOr<std::unique_ptr<Node>> StartNode(const core::Config& config,
                                                discovery::Discovery& discovery);

// The role starters StartNode chooses from (roles.cc, all_in_one.cc).
core::StatusOr<std::unique_ptr<Node>> StartAllInOne(const core::Config& config,
                                                    discovery::Discovery& discovery);
core::StatusOr<std::unique_ptr<Node>> StartGateway(const core::Config& config,
                                                   discovery::Discovery& discovery);
core::StatusOr<std::unique_ptr<Node>> StartLogic(const core::Config& config,
                                                 discovery::Discovery& discovery);
core::StatusOr<std::unique_ptr<Node>> StartTask(const core::Config& config,
                                                discovery::Discovery& discovery);

// The deliverer engine names (bus.engine) the wiring knows.
std::vector<std::string> DelivererEngines();

// Registers this node (`role` at `address`) and returns the config with
// the node id discovery handed out, if it hands one out.
core::StatusOr<core::Config> JoinCluster(const core::Config& config,
                                         discovery::Discovery& discovery, const std::string& role,
                                         const std::string& address);

}  // namespace mpim::app
