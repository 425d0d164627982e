// `mpim serve`: runs the configured role until SIGTERM or SIGINT, then
// drains (stop accepting, /readyz 503, in-flight requests finish within
// server.drain_timeout_ms) and returns the process exit code.
//
// Call from the main thread before any other thread exists: it blocks
// SIGTERM and SIGINT so that only its own wait receives them.
#pragma once

#include "core/config.h"

namespace mpim::app {

int RunServe(const core::Config& config);

}  // namespace mpim::app
