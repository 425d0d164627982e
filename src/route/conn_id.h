// A live connection's id, unique across the cluster: the node (gateway)
// that holds the socket and the id that node gave it. Node ids are
// server.node_id (unique per running node); local ids come from the node's
// net layer (net::WsConnection::id(), never reused within a process).
//
// A value type; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace mpim::route {

struct ConnId {
  uint32_t node = 0;
  uint64_t local = 0;  // 0: no connection (a REST call, "exclude none")

  bool empty() const { return local == 0; }
  friend bool operator==(const ConnId&, const ConnId&) = default;
  std::string ToString() const { return std::to_string(node) + "/" + std::to_string(local); }
};

struct ConnIdHash {
  size_t operator()(const ConnId& c) const {
    return std::hash<uint64_t>()(c.local * 0x9E3779B97F4A7C15ull ^ c.node);
  }
};

}  // namespace mpim::route
