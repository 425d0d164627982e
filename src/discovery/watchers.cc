#include "discovery/watchers.h"

#include <algorithm>

namespace mpim::discovery {

std::vector<Node> WithRole(const std::vector<Node>& nodes, const std::string& role) {
  std::vector<Node> out;
  for (const Node& n : nodes) {
    if (n.role == role) out.push_back(n);
  }
  return out;
}

bool Watchers::Set(std::vector<Node> nodes) {
  std::sort(nodes.begin(), nodes.end(),
            [](const Node& a, const Node& b) { return a.name < b.name; });
  std::lock_guard lock(mu_);
  if (nodes == nodes_) return false;
  nodes_ = std::move(nodes);
  for (auto& [id, callback] : callbacks_) callback(nodes_);
  return true;
}

std::vector<Node> Watchers::Nodes() const {
  std::lock_guard lock(mu_);
  return nodes_;
}

int Watchers::Add(NodesCallback on_change) {
  std::lock_guard lock(mu_);
  const int id = next_id_++;
  on_change(nodes_);
  callbacks_.emplace(id, std::move(on_change));
  return id;
}

void Watchers::Remove(int id) {
  std::lock_guard lock(mu_);
  callbacks_.erase(id);
}

}  // namespace mpim::discovery
