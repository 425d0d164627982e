// What one node sends another's inbox on the bus (service::Deliverer in a
// cluster): the events for that node's connections, each frame encoded once
// by the sender and carried as is, batched per destination node (one
// envelope for every recipient connection of one call).
//
// Binary, versioned by its first byte; little to parse on the receiving
// node's hot path. A value type; any thread.
//
// Versions: 2 is the base; 3 adds the sender's trace context (W3C trace
// and span id) after the header. An envelope is written as version 3 only
// when it carries a recording trace, so with tracing off (the default)
// nodes write exactly what version-2 nodes read. Decode reads both. During
// a rolling upgrade from a release without tracing, keep
// tracing.sample_ratio at 0 until every node runs this one: an older node
// drops a version-3 envelope (counted as bad; its clients catch up by
// sync), as it drops anything it cannot read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/trace.h"
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
  std::vector<Msg> msgs;      // kMessages
  std::string frame;          // kEvent, kKick
  // The span that published it, when traced (not recording: none).
  core::trace::SpanContext trace;

  std::string Encode() const;
  // nullopt for bytes that are not an envelope of this version.
  static std::optional<Envelope> Decode(std::string_view bytes);
};

}  // namespace mpim::gateway
