#include "support/cluster_up_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/child_process.h"
#include "support/api_client.h"
#include "support/server_process.h"

namespace mpim::testing {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& text, size_t bytes) {
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

}  // namespace

bool ClusterTarget() {
  const char* target = std::getenv("MPIM_E2E_TARGET");
  return target != nullptr &&
         (std::string_view(target) == "cluster" || std::string_view(target) == "edge");
}

bool EdgeTarget() {
  const char* target = std::getenv("MPIM_E2E_TARGET");
  return target != nullptr && std::string_view(target) == "edge";
}

std::vector<std::string> ClusterTargetArgs() {
  if (EdgeTarget()) return {"--edge", "1"};
  return {};
}

ClusterUpProcess::ClusterUpProcess(Options options) : options_(std::move(options)) {
  dir_ = options_.dir;
  if (dir_.empty()) {
    dir_ = FreshTempDir("mpim-cluster-up-");
    own_dir_ = true;
  }
}

ClusterUpProcess::~ClusterUpProcess() {
  if (pid_ > 0 && !Stop(std::chrono::seconds(60))) {
    ::kill(pid_, SIGKILL);
    core::WaitForExit(pid_, std::chrono::seconds(10));
  }
  for (Node& n : nodes_) {
    if (n.restarted && n.pid > 0) core::Terminate(n.pid, std::chrono::milliseconds(0));
  }
  if (own_dir_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

bool ClusterUpProcess::Start(std::chrono::milliseconds deadline) {
  fs::remove(dir_ / "up.out");
  core::SpawnOptions spawn;
  spawn.argv = {MpimBinary(), "cluster", "up", "--dir", dir_.string()};
  spawn.argv.insert(spawn.argv.end(), options_.args.begin(), options_.args.end());
  spawn.env = options_.env;
  spawn.output = (dir_ / "up.out").string();
  spawn.error_output = (dir_ / "up.err").string();
  auto pid = core::Spawn(spawn);
  if (!pid.ok()) {
    error_ = std::string(pid.status().message());
    return false;
  }
  pid_ = *pid;
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    const std::string out = ReadFile(dir_ / "up.out");
    const size_t eol = out.find('\n');
    if (eol != std::string::npos) {
      boost::system::error_code ec;
      json::value v = json::parse(out.substr(0, eol), ec);
      if (ec || !v.is_object()) {
        error_ = "cluster up printed what is not a JSON object: " + out;
        return false;
      }
      ready_ = v.as_object();
      nodes_.clear();
      for (const json::value& item : ready_.at("nodes").as_array()) {
        const json::object& o = item.as_object();
        Node n;
        n.name = json::value_to<std::string>(o.at("name"));
        n.role = json::value_to<std::string>(o.at("role"));
        n.pid = static_cast<pid_t>(o.at("pid").as_int64());
        n.http = json::value_to<std::string>(o.at("http"));
        n.port = static_cast<uint16_t>(std::stoi(n.http.substr(n.http.rfind(':') + 1)));
        for (const json::value& a : o.at("argv").as_array()) {
          n.argv.push_back(json::value_to<std::string>(a));
        }
        nodes_.push_back(std::move(n));
      }
      return true;
    }
    if (auto code = core::WaitForExit(pid_, std::chrono::milliseconds(0))) {
      pid_ = -1;
      error_ = "cluster up " + core::DescribeExit(*code) + " before it was ready:\n" +
               Tail(Stderr(), 6000);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval
  }
  error_ = "cluster up not ready in time:\n" + Tail(Stderr(), 6000);
  return false;
}

std::optional<int> ClusterUpProcess::Stop(std::chrono::milliseconds deadline) {
  for (Node& n : nodes_) {
    if (n.restarted && n.pid > 0) {
      core::Terminate(n.pid, std::chrono::seconds(30));
      n.pid = -1;
    }
  }
  if (pid_ <= 0) return std::nullopt;
  ::kill(pid_, SIGTERM);
  std::optional<int> code = core::WaitForExit(pid_, deadline);
  if (code) pid_ = -1;
  return code;
}

ClusterUpProcess::Node& ClusterUpProcess::node(const std::string& name) {
  for (Node& n : nodes_) {
    if (n.name == name) return n;
  }
  throw std::out_of_range("no node " + name);
}

std::vector<uint16_t> ClusterUpProcess::PortsOf(const char* field) const {
  std::vector<uint16_t> ports;
  const json::value* list = ready_.if_contains(field);
  if (list == nullptr || !list->is_array()) return ports;
  for (const json::value& g : list->as_array()) {
    const std::string text = json::value_to<std::string>(g);
    ports.push_back(static_cast<uint16_t>(std::stoi(text.substr(text.rfind(':') + 1))));
  }
  return ports;
}

std::vector<uint16_t> ClusterUpProcess::gateway_ports() const { return PortsOf("gateways"); }
std::vector<uint16_t> ClusterUpProcess::edge_ports() const { return PortsOf("edges"); }

std::vector<uint16_t> ClusterUpProcess::client_ports() const {
  std::vector<uint16_t> edges = edge_ports();
  return edges.empty() ? gateway_ports() : edges;
}

std::vector<ClusterUpProcess::Node*> ClusterUpProcess::NodesOf(const std::string& role) {
  std::vector<Node*> out;
  for (Node& n : nodes_) {
    if (n.role == role) out.push_back(&n);
  }
  return out;
}

bool ClusterUpProcess::Gone(Node& n, std::chrono::milliseconds deadline) {
  if (n.restarted) {
    bool gone = core::WaitForExit(n.pid, deadline).has_value();
    if (gone) n.pid = -1;
    return gone;
  }
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (core::ProcessAlive(n.pid)) {  // until cluster up has reaped it
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval
  }
  n.pid = -1;
  return true;
}

bool ClusterUpProcess::Kill(const std::string& name) {
  Node& n = node(name);
  if (n.pid <= 0) return true;
  ::kill(n.pid, SIGKILL);
  return Gone(n, std::chrono::seconds(10));
}

std::optional<int> ClusterUpProcess::Terminate(const std::string& name,
                                               std::chrono::milliseconds deadline) {
  Signal(name, SIGTERM);
  return AwaitExit(name, deadline);
}

void ClusterUpProcess::Signal(const std::string& name, int signo) {
  Node& n = node(name);
  if (n.pid > 0) ::kill(n.pid, signo);
}

std::optional<int> ClusterUpProcess::AwaitExit(const std::string& name,
                                               std::chrono::milliseconds deadline) {
  Node& n = node(name);
  if (n.pid <= 0) return std::nullopt;
  if (n.restarted) {
    std::optional<int> code = core::WaitForExit(n.pid, deadline);
    if (code) n.pid = -1;
    return code;
  }
  const pid_t pid = n.pid;
  if (!Gone(n, deadline)) return std::nullopt;
  return ReportedExit(name, pid, std::chrono::seconds(5));
}

std::optional<int> ClusterUpProcess::ReportedExit(const std::string& name, pid_t pid,
                                                  std::chrono::milliseconds deadline) const {
  // "<name> (pid <pid>) exited with code N; ..." or "... killed by SIGX; ..."
  const std::string head = name + " (pid " + std::to_string(pid) + ") ";
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    const std::string err = Stderr();
    const size_t at = err.find(head);
    if (at != std::string::npos) {
      const std::string rest = err.substr(at + head.size(), 40);
      if (rest.rfind("exited with code ", 0) == 0) return std::stoi(rest.substr(17));
      if (rest.rfind("killed by SIG", 0) == 0) {
        const std::string sig = rest.substr(13, rest.find(';') - 13);
        for (int signo = 1; signo < 32; ++signo) {
          const char* abbrev = sigabbrev_np(signo);
          if (abbrev != nullptr && sig == abbrev) return -signo;
        }
        return -255;
      }
    }
    if (std::chrono::steady_clock::now() > until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval
  }
}

bool ClusterUpProcess::Restart(const std::string& name, std::chrono::milliseconds deadline) {
  Node& n = node(name);
  if (n.pid > 0 && core::ProcessAlive(n.pid)) {
    error_ = name + " is still running";
    return false;
  }
  core::SpawnOptions spawn;
  spawn.argv = n.argv;
  spawn.env = options_.env;
  spawn.output = (dir_ / "logs" / (name + ".restarts.log")).string();
  auto pid = core::Spawn(spawn);
  if (!pid.ok()) {
    error_ = std::string(pid.status().message());
    return false;
  }
  n.pid = *pid;
  n.restarted = true;
  int last = 0;
  if (!WaitForReadyz(n.port, 200, deadline, &last)) {
    error_ = name + " not ready after a restart (last /readyz " + std::to_string(last) + "):\n" +
             NodeLog(name);
    return false;
  }
  return true;
}

std::string ClusterUpProcess::Stderr() const { return ReadFile(dir_ / "up.err"); }

std::string ClusterUpProcess::NodeLog(const std::string& name, size_t bytes) const {
  std::string log = ReadFile(dir_ / "logs" / (name + ".log"));
  const std::string restarts = ReadFile(dir_ / "logs" / (name + ".restarts.log"));
  if (!restarts.empty()) log += "\n--- after restarts ---\n" + restarts;
  return Tail(log, bytes);
}

}  // namespace mpim::testing
