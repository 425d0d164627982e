#include "app/node.h"

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
