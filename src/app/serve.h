// `mpim serve`: runs the configured role until SIGTERM or SIGINT, then
// drains (stop accepting, /readyz 503, in-flight requests finish within
// server.drain_timeout_ms) and returns the process exit code.
//
// Call from the main thread before any other thread exists: it blocks
// SIGTERM and SIGINT so that only its own wait receives them.
#pragma once

#include <signal.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/config.h"
#include "discovery/discovery.h"
#include "net/http.h"

namespace mpim::app {

int RunServe(const core::Config& config);

// Role edge (edge_role.cc), from RunServe once discovery is open.
int RunEdge(const core::Config& config, discovery::Discovery& discovery, const sigset_t& signals);

// Shared by the roles' run functions (serve.cc).
sigset_t ShutdownSignals();
// Blocks until one of `signals` arrives and returns it; meanwhile gives
// freed heap back to the system after waves of closed connections.
int WaitForStopSignal(const sigset_t& signals, const std::function<size_t()>& open_connections);
// The metrics exposition answered at GET /metrics, after setting
// mpim_ready (1 when the node would answer /readyz with 200, else 0) to
// `ready`: a scrape also says whether the node can serve (its store, or
// for a gateway a logic node, answering), for the alert rules in deploy/.
net::HttpResponse MetricsExposition(bool ready);
// The "serving" log line and the lines printed on stdout.
void AnnounceServing(const core::Config& config, const std::string& host, uint16_t port,
                     int64_t node_id, size_t io_threads);

}  // namespace mpim::app
