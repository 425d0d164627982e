// A message as it goes out to WebSocket sessions: its `msg` event frame
// encoded once and shared by every recipient (all of a fan-out's sessions
// hold the same string). Immutable once handed to a session; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "service/deliverer.h"

namespace mpim::gateway {

struct OutMessage {
  std::string conv_id;
  int64_t seq = 0;
  int64_t ts = 0;  // the message's time (ms), for the already-acked check
  std::shared_ptr<const std::string> frame;
  bool qos1 = true;
  service::Priority priority = service::Priority::kNormal;
  // Fanned out to many sessions: each may hold it up to
  // gateway.fanout_coalesce_ms to share a write with the next ones.
  bool may_wait = false;
};

}  // namespace mpim::gateway
