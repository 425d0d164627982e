// `mpim cluster up`: a whole cluster on this machine in one command
// (cluster.md section 3). It starts redis-server, mariadbd and etcd
// (local_engines.h), then the nodes (gateways, logic, task, edges) as child
// processes, each with a config file DIR/<name>.toml and a log
// DIR/logs/<name>.log; once every node answers GET /readyz with 200 it prints
// one JSON line (client addresses, engines, nodes with pid, http and argv)
// on stdout and stays in the foreground. It does not restart a node that
// dies (it reports it on stderr). SIGTERM or SIGINT: edges stop, gateways drain
// (their clients get 1012), then the task and logic nodes, then the
// engines; exit 0. Ports, the database password and the token signing key
// are kept in DIR/cluster-state.json, so a second run on DIR finds its data
// (and its users' tokens stay good).
//
// Call from the main thread before any other thread exists (it blocks
// SIGTERM, SIGINT and SIGCHLD for sigtimedwait).
#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace mpim::app {

struct ClusterUpOptions {
  std::filesystem::path dir;
  int gateways = 2;
  int logic = 2;
  int task = 1;
  int edge = 0;  // edge nodes in front of the gateways
  // `--set section.key=value` for every node (in each node's argv).
  std::vector<std::string> settings;
  // How long the engines and nodes may take to be ready.
  std::chrono::seconds timeout{300};
};

// Runs until stopped; the process exit code (0 after a clean stop, 2 for
// bad options or a missing engine, 1 when the cluster could not start).
int RunClusterUp(const ClusterUpOptions& options);

}  // namespace mpim::app
