#include "edge/routes_file.h"

namespace mpim::edge {

RoutesFile::RoutesFile(std::string path, RouteDefaults defaults, Router& router, int64_t poll_ms,
                       core::MetricsRegistry& metrics)
    : path_(std::move(path)),
      defaults_(std::move(defaults)),
      router_(router),
      reloads_(metrics.Counter("mpim_edge_route_reloads_total",
                               "Reloads of edge.routes_file, by result: ok (applied) or error "
                               "(the routes in force stayed).",
                               {"result"})),
      watcher_({path_}, poll_ms, [this] { Reload("changed"); }) {}

core::Status RoutesFile::Load() {
  std::lock_guard lock(load_mu_);
  watcher_.Seen(watcher_.Look());  // a bad file is read again on its next change
  auto spec = LoadRoutes(path_, defaults_);
  if (!spec.ok()) return spec.status();
  if (core::Status s = router_.Apply(*spec); !s.ok()) {
    return absl::InvalidArgumentError("routes file " + path_ + ": " + std::string(s.message()));
  }
  return absl::OkStatus();
}

void RoutesFile::Reload(const char* why) { ReportReload(reloads_, Load(), "routes", path_, why); }

}  // namespace mpim::edge
