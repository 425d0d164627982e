// What the e2e suites that kill and restart their server drive, by target
// (support/ws_helpers.h, ClusterTarget()): `mpim serve` on a data dir kept
// across its processes (ServerSeries), or with MPIM_E2E_TARGET=cluster the
// cluster of `mpim cluster up`, whose nodes (every gateway, logic and task
// node) are killed or stopped together and restarted with their argv on the
// same engines. Either way "the server" is everything that serves clients
// and holds state in memory; what survives it is what the store holds.
//
// Threads: one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/cluster_up_process.h"
#include "support/server_process.h"

namespace mpim::testing {

class RestartTarget {
 public:
  // `env` for every process; `settings` ("section.key=value") as --set for
  // every node.
  explicit RestartTarget(std::vector<std::pair<std::string, std::string>> env,
                         std::vector<std::string> settings = {});
  ~RestartTarget();

  RestartTarget(const RestartTarget&) = delete;
  RestartTarget& operator=(const RestartTarget&) = delete;

  // Starts the server (the first time), or again after Kill/Terminate, and
  // waits until it serves. False with error() on failure.
  bool Start();
  // kill -9 of every process of the server; true once all are gone.
  bool Kill();
  // SIGTERM to every process of the server (gateways first); the exit code
  // (the first that is not 0, else 0), nullopt if one did not exit in time.
  std::optional<int> Terminate(std::chrono::milliseconds deadline = std::chrono::seconds(30));

  // Client-facing ports (one for `mpim serve`, every gateway's on a cluster).
  std::vector<uint16_t> ports() const;
  // The k-th client-facing port, in turn (k modulo their number).
  uint16_t port(size_t k = 0) const;
  bool cluster() const { return cluster_ != nullptr; }
  // The sum of one /metrics series (as ApiClient::Metric takes it) over
  // every process of the server (the task node runs the jobs on a cluster).
  double MetricSum(std::string_view series) const;
  // The server's logs so far, whole (every node's and cluster up's on a
  // cluster).
  std::string Logs() const;
  const std::string& error() const { return error_; }

 private:
  std::unique_ptr<ServerSeries> series_;       // `mpim serve`
  ServerProcess* current_ = nullptr;           // its running process
  ServerProcess* last_ = nullptr;              // the latest one started (for its logs)
  std::unique_ptr<ClusterUpProcess> cluster_;  // or a cluster
  bool started_ = false;
  std::string error_;
};

}  // namespace mpim::testing
