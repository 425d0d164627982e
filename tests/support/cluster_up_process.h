// `mpim cluster up` for end-to-end tests (cluster.md section 3): runs the
// real command in a temp dir (or a given one, kept), reads the JSON line it
// prints once ready, and drives its nodes the way an operator would: kill
// one by pid, restart it with its `argv`, SIGTERM it, stop the whole
// cluster with SIGTERM.
//
// A node restarted here is this process's child (cluster up does not
// restart nodes); Stop() and the destructor end those too.
//
// Threads: one thread at a time.
#pragma once

#include <sys/types.h>

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mpim::testing {

// The target of the suites that run on `mpim serve` and on a cluster
// (WsServerTest in support/ws_helpers.h, RestartTarget): `mpim serve` by
// default, the cluster of `mpim cluster up` (two gateways, two logic nodes,
// a task node) with MPIM_E2E_TARGET=cluster, the same with an edge in
// front of the gateways (clients talk only to the edge) with
// MPIM_E2E_TARGET=edge.
bool ClusterTarget();
bool EdgeTarget();
// What `cluster up` needs for the target (--edge 1 for the edge target).
std::vector<std::string> ClusterTargetArgs();

class ClusterUpProcess {
 public:
  struct Options {
    // More arguments after `cluster up --dir DIR` (--gateways 1, --set k=v).
    std::vector<std::string> args;
    // Added to the environment of cluster up, and so of every node.
    std::vector<std::pair<std::string, std::string>> env;
    std::filesystem::path dir;  // empty: a fresh temp dir, removed at the end
  };
  struct Node {
    std::string name;  // gateway-1, logic-2, task-1
    std::string role;
    pid_t pid = -1;
    std::string http;  // 127.0.0.1:PORT
    uint16_t port = 0;
    std::vector<std::string> argv;
    bool restarted = false;  // pid is our child (restarted with argv)
  };

  explicit ClusterUpProcess(Options options = {});
  ~ClusterUpProcess();  // Stop(), SIGKILL what is left, remove a temp dir

  ClusterUpProcess(const ClusterUpProcess&) = delete;
  ClusterUpProcess& operator=(const ClusterUpProcess&) = delete;

  // Runs `mpim cluster up` and waits for its JSON line; false with error()
  // (and its stderr) when it exits first or the deadline passes.
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(240));
  // SIGTERM to cluster up (and to the nodes restarted here, first); its
  // exit code, nullopt if it did not exit within `deadline`.
  std::optional<int> Stop(std::chrono::milliseconds deadline = std::chrono::seconds(120));

  const boost::json::object& ready_line() const { return ready_; }
  std::vector<Node>& nodes() { return nodes_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  Node& node(const std::string& name);
  // The gateways' ports, as "gateways" lists them.
  std::vector<uint16_t> gateway_ports() const;
  // The edges' ports ("edges").
  std::vector<uint16_t> edge_ports() const;
  // Where clients connect: the edges when there are, else the gateways.
  std::vector<uint16_t> client_ports() const;
  // Every node of `role`, in order.
  std::vector<Node*> NodesOf(const std::string& role);

  // kill -9 and wait until the process is gone (reaped by cluster up, or
  // here when restarted here).
  bool Kill(const std::string& name);
  // SIGTERM and wait until it exits; its exit code (for a node cluster up
  // started, as cluster up reports it on stderr), nullopt if it did not
  // exit (or was not reported) in time.
  std::optional<int> Terminate(const std::string& name,
                               std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // Terminate in two halves, to stop several nodes at once: the signal,
  // then the wait (as Terminate).
  void Signal(const std::string& name, int signo);
  std::optional<int> AwaitExit(const std::string& name,
                               std::chrono::milliseconds deadline = std::chrono::seconds(60));
  // Starts a (dead) node again with its argv, waits for /readyz 200.
  bool Restart(const std::string& name,
               std::chrono::milliseconds deadline = std::chrono::seconds(60));

  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string Stderr() const;
  // The node's log under DIR/logs (and, once restarted, its restarts' log).
  std::string NodeLog(const std::string& name, size_t bytes = 4000) const;
  const std::string& error() const { return error_; }

 private:
  std::vector<uint16_t> PortsOf(const char* field) const;
  bool Gone(Node& n, std::chrono::milliseconds deadline);
  // The exit code cluster up reported for `name` (pid `pid`), waiting for
  // the report up to `deadline`; -signal for a kill.
  std::optional<int> ReportedExit(const std::string& name, pid_t pid,
                                  std::chrono::milliseconds deadline) const;

  Options options_;
  std::filesystem::path dir_;
  bool own_dir_ = false;
  pid_t pid_ = -1;
  boost::json::object ready_;
  std::vector<Node> nodes_;
  std::string error_;
};

}  // namespace mpim::testing
