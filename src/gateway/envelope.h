// What one node sends another's inbox on the bus (service::Deliverer in a
// cluster): the events for that node's connections, each frame encoded once
// by the sender and carried as is, batched per destination node (one
// envelope for every recipient connection of one call).
//
// Binary, versioned by its first byte; little to parse on the receiving
// node's hot path. A value type; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "service/deliverer.h"

namespace mpim::gateway {

struct Envelope {
  enum class Kind : uint8_t {
    kMessages = 1,  // `msgs`, to `conns`
    kEvent = 2,     // `frame` (receipt, typing, presence, conv, recall), to `conns`
    kKick = 3,      // `frame` is the reason: kick then close 4003, on `conns`
  };
  // A recipient connection on the receiving node, and the user it must
  // belong to (0: any, for presence followers): a connection id the
  // sender's route named that now belongs to someone else is skipped.
  struct Target {
    uint64_t conn = 0;
    int64_t user = 0;
    friend bool operator==(const Target&, const Target&) = default;
  };
  struct Msg {
    std::string conv_id;
    int64_t seq = 0;
    int64_t ts = 0;
    std::string frame;  // the msg event, as the session sends it
  };

  Kind kind = Kind::kEvent;
  service::Priority priority = service::Priority::kNormal;
  bool qos1 = true;
  std::vector<Target> conns;  // connections on the receiving node
  std::vector<Msg> msgs;        // kMessages
  std::string frame;            // kEvent, kKick

  std::string Encode() const;
  // nullopt for bytes that are not an envelope of this version.
  static std::optional<Envelope> Decode(std::string_view bytes);
};

}  // namespace mpim::gateway
