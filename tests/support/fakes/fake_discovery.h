// A discovery::Discovery whose node list the test sets (Set), for tests of
// what watches discovery (the RPC client). Register hands back the node's
// own id.
//
// Threading: any thread; watchers are called on the thread that calls Set.
#pragma once

#include <algorithm>
#include <vector>

#include "discovery/discovery.h"
#include "discovery/watchers.h"

namespace mpim::testing {

class FakeDiscovery : public discovery::Discovery {
 public:
  void Set(std::vector<discovery::Node> nodes) {
    std::sort(nodes.begin(), nodes.end(),
              [](const auto& a, const auto& b) { return a.name < b.name; });
    watchers_.Set(std::move(nodes));
  }

  core::StatusOr<int64_t> Register(const discovery::Node& self) override { return self.node_id; }
  std::vector<discovery::Node> Nodes() const override { return watchers_.Nodes(); }
  int Watch(discovery::NodesCallback on_change) override {
    return watchers_.Add(std::move(on_change));
  }
  void Unwatch(int id) override { watchers_.Remove(id); }
  void Stop() override {}

 private:
  discovery::Watchers watchers_;
};

}  // namespace mpim::testing
