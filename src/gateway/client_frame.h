// Decoding of one client WebSocket text frame into an operation
// (protocol.md section 3): a JSON object with a string `op` and, where a
// reply is wanted, an integer `rid`. Pure and thread-safe; every parser of
// untrusted bytes has a fuzz target (tests/fuzz/client_frame_fuzz.cc).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mpim::gateway {

struct ClientFrame {
  std::string op;
  std::optional<int64_t> rid;  // set whenever the frame carried a usable one
  boost::json::object fields;  // the whole frame
};

// invalid_argument for invalid JSON (incl. nesting deeper than 32 levels),
// a non-object, a non-integer `rid` or a missing/non-string `op`. `out.rid`
// is filled in as soon as it is known, so an error can answer it.
core::Status DecodeClientFrame(std::string_view text, ClientFrame& out);

}  // namespace mpim::gateway
