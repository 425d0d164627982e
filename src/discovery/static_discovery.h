// discovery.engine = "static": the nodes are the ones the config lists
// (discovery.static_nodes, ROLE=HOST:PORT each) plus this one; they never
// change while the process runs. Node ids are the config's
// (server.node_id), which the operator keeps unique.
//
// Threading: as Discovery (discovery.h).
#pragma once

#include <string>
#include <vector>

#include "discovery/discovery.h"
#include "discovery/watchers.h"

namespace mpim::discovery {

class StaticDiscovery final : public Discovery {
 public:
  // `entries`: ROLE=HOST:PORT each (checked by the config schema).
  explicit StaticDiscovery(const std::vector<std::string>& entries);

  core::StatusOr<int64_t> Register(const Node& self) override;
  std::vector<Node> Nodes() const override { return watchers_.Nodes(); }
  int Watch(NodesCallback on_change) override { return watchers_.Add(std::move(on_change)); }
  void Unwatch(int id) override { watchers_.Remove(id); }
  void Stop() override {}

 private:
  std::vector<Node> listed_;
  Watchers watchers_;
};

}  // namespace mpim::discovery
