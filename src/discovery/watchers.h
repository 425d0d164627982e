// The Watch callbacks of a discovery engine and the node list they see:
// Set() stores a new list and, when it differs, calls every watcher with
// it. Shared by the engines.
//
// Thread-safe: Set, Nodes, Add and Remove from any thread; callbacks run
// under a lock on the calling thread, one at a time.
#pragma once

#include <map>
#include <mutex>
#include <vector>

#include "discovery/discovery.h"

namespace mpim::discovery {

class Watchers {
 public:
  // False when `nodes` equals the current list (nobody is called).
  bool Set(std::vector<Node> nodes);
  std::vector<Node> Nodes() const;
  // Calls `on_change` with the current list at once.
  int Add(NodesCallback on_change);
  void Remove(int id);

 private:
  mutable std::mutex mu_;
  std::vector<Node> nodes_;
  std::map<int, NodesCallback> callbacks_;
  int next_id_ = 1;
};

}  // namespace mpim::discovery
