#include "discovery/static_discovery.h"

namespace mpim::discovery {

StaticDiscovery::StaticDiscovery(const std::vector<std::string>& entries) {
  for (const std::string& entry : entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    Node node;
    node.role = entry.substr(0, eq);
    node.address = entry.substr(eq + 1);
    node.name = node.role + "@" + node.address;
    listed_.push_back(std::move(node));
  }
  watchers_.Set(listed_);
}

core::StatusOr<int64_t> StaticDiscovery::Register(const Node& self) {
  std::vector<Node> nodes;
  for (const Node& n : listed_) {
    if (n.name != self.name) nodes.push_back(n);  // the list may name this node too
  }
  nodes.push_back(self);
  watchers_.Set(std::move(nodes));
  return self.node_id;
}

}  // namespace mpim::discovery
