#include "app/node.h"

#include <algorithm>

namespace mpim::app {

core::StatusOr<std::unique_ptr<Node>> StartNode(const core::Config& config,
                                                discovery::Discovery& discovery) {
  const std::string& role = config.server.role;
  if (role == "all") return StartAllInOne(config, discovery);
  if (role == "gateway") return StartGateway(config, discovery);
  if (role == "logic") return StartLogic(config, discovery);
  if (role == "task") return StartTask(config, discovery);
  return absl::InvalidArgumentError("unknown role \"" + role +
                                    "\"");  // the schema refuses it first
}

size_t IoThreads(const core::Config& config, size_t cores) {
  if (config.server.io_threads > 0) return static_cast<size_t>(config.server.io_threads);
  cores = std::max<size_t>(cores, 1);
  const std::string& role = config.server.role;
  const bool sqlite_writer =
      config.store.engine == "sqlite" && (role == "all" || role == "logic" || role == "task");
  return sqlite_writer && cores > 1 ? cores - 1 : cores;
}

core::StatusOr<core::Config> JoinCluster(const core::Config& config,
                                         discovery::Discovery& discovery, const std::string& role,
                                         const std::string& address) {
  discovery::Node self;
  self.role = role;
  self.address = address;
  self.name = role + "@" + address;
  self.node_id = config.server.node_id > 0 ? config.server.node_id : -1;
  auto id = discovery.Register(self);
  if (!id.ok()) {
    return absl::Status(id.status().code(), "cannot join the cluster (discovery " +
                                                config.discovery.engine +
                                                "): " + std::string(id.status().message()));
  }
  core::Config joined = config;
  if (*id >= 0) joined.server.node_id = *id;
  return joined;
}

}  // namespace mpim::app
