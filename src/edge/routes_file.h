// edge.routes_file kept live: read at start (an error there stops the edge
// from starting), then read again and applied to the Router when the file
// changes (FileWatcher, every edge.routes_reload_ms) or on Reload()
// (SIGHUP). A file that fails to read or parse on reload changes nothing:
// the routes in force stay, the error is logged and counted
// (mpim_edge_route_reloads_total{result="error"}), and the file is read
// again on its next change.
//
// Threads: Load and Reload from any thread but an io thread (Router::Apply
// waits for engines); the watcher runs on a thread of its own.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>

#include "core/metrics.h"
#include "core/status.h"
#include "edge/file_watcher.h"
#include "edge/router.h"
#include "edge/routes.h"

namespace mpim::edge {

class RoutesFile {
 public:
  RoutesFile(std::string path, RouteDefaults defaults, Router& router, int64_t poll_ms,
             core::MetricsRegistry& metrics = core::DefaultRegistry());

  // Reads, parses and applies the file; its error names the file and key.
  [[nodiscard]] core::Status Load();
  // Load again (`why` goes in the log line); errors are logged, not returned.
  void Reload(const char* why);

  // Starts watching the file (when poll_ms > 0); Stop ends it.
  void Start() { watcher_.Start(); }
  void Stop() { watcher_.Stop(); }

 private:
  const std::string path_;
  const RouteDefaults defaults_;
  Router& router_;
  core::CounterFamily& reloads_;
  std::mutex load_mu_;  // one load at a time
  FileWatcher watcher_;
};

}  // namespace mpim::edge
