#include "app/cluster_up.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include "app/local_engines.h"
#include "core/child_process.h"
#include "core/ports.h"
#include "service/auth/jwt.h"

namespace mpim::app {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kStateFile[] = "cluster-state.json";
constexpr char kLockFile[] = ".lock";
// How long each node may drain on SIGTERM before it is killed: above the
// nodes' own server.drain_timeout_ms (10 s by default).
constexpr std::chrono::seconds kNodeGrace{30};
constexpr std::chrono::seconds kEngineGrace{60};
constexpr int kPortAttempts = 3;  // a node whose port was taken meanwhile gets another

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string RandomText(size_t bytes) {
  std::string raw(bytes, '\0');
  randombytes_buf(raw.data(), raw.size());
  return service::auth::Base64UrlEncode(raw);
}

// One line on a terminal's stderr, rewritten in place while the cluster
// starts; nothing when stderr is not a terminal.
class StatusLine {
 public:
  StatusLine() : tty_(::isatty(STDERR_FILENO) == 1) {}
  void Show(const std::string& text) {
    if (!tty_ || text == last_) return;
    last_ = text;
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    std::fflush(stderr);
  }
  void Clear() {
    if (!tty_ || last_.empty()) return;
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    last_.clear();
  }

 private:
  bool tty_;
  std::string last_;
};

struct NodeProc {
  std::string name;  // gateway-1, logic-2, task-1
  std::string role;
  int64_t node_id = 0;
  uint16_t http = 0;
  uint16_t rpc = 0;  // logic nodes: their gRPC port
  fs::path config, log, data_dir;
  std::vector<std::string> argv;
  pid_t pid = -1;
  bool ready = false;
  int attempts = 0;
  std::string http_address() const { return "127.0.0.1:" + std::to_string(http); }
};

class ClusterUp {
 public:
  explicit ClusterUp(ClusterUpOptions options) : options_(std::move(options)) {}
  int Run();

 private:
  bool Lock();
  void LoadState();
  void SaveState();
  uint16_t Port(const std::string& key);  // the state's port if still free, else a new one
  void PlanNodes();
  void WriteNodeConfig(const NodeProc& n);
  bool SpawnNode(NodeProc& n);
  // Starts every engine and node and waits until all serve; false (after
  // saying why on stderr) when one fails, the deadline passes or a stop
  // signal arrives (`*stopped`).
  bool StartAll(bool* stopped);
  std::string Describe(Clock::time_point t0) const;
  std::string ReadyLine() const;
  void Reap();
  void StopAll();
  int WaitForSignal(std::chrono::milliseconds timeout);

  ClusterUpOptions options_;
  fs::path dir_;
  std::string self_;  // this binary's absolute path
  sigset_t signals_{};
  json::object state_;
  std::set<uint16_t> taken_;  // ports handed out in this run
  std::unique_ptr<LocalRedis> redis_;
  std::unique_ptr<LocalMariaDb> mariadb_;
  std::unique_ptr<LocalEtcd> etcd_;
  std::vector<LocalEngine*> engines_;
  std::vector<bool> engine_ready_;
  std::vector<NodeProc> nodes_;
  StatusLine status_;
  int lock_fd_ = -1;
};

bool ClusterUp::Lock() {
  lock_fd_ = ::open((dir_ / kLockFile).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd_ < 0 || ::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr, "mpim cluster up: %s is in use by another mpim cluster up\n",
                 dir_.c_str());
    return false;
  }
  return true;
}

void ClusterUp::LoadState() {
  std::ifstream in(dir_ / kStateFile);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (!ec && v.is_object()) state_ = v.as_object();
  }
  if (!state_.contains("ports") || !state_["ports"].is_object()) state_["ports"] = json::object();
  if (!state_.contains("mysql_password") || !state_["mysql_password"].is_string())
    state_["mysql_password"] = RandomText(18);
  if (!state_.contains("token_key") || !state_["token_key"].is_string())
    state_["token_key"] = RandomText(32);
}

void ClusterUp::SaveState() {
  const fs::path tmp = dir_ / (std::string(kStateFile) + ".tmp");
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << json::serialize(state_) << "\n";
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);
  fs::rename(tmp, dir_ / kStateFile);
}

uint16_t ClusterUp::Port(const std::string& key) {
  json::object& ports = state_["ports"].as_object();
  uint16_t port = 0;
  if (const json::value* v = ports.if_contains(key); v != nullptr && v->is_int64()) {
    port = static_cast<uint16_t>(v->as_int64());
  }
  for (int i = 0; (port == 0 || taken_.count(port) || !core::LoopbackPortFree(port)) && i < 100;
       ++i) {
    port = core::FreeLoopbackPort();
  }
  taken_.insert(port);
  ports[key] = port;
  return port;
}

void ClusterUp::PlanNodes() {
  const std::pair<const char*, int> roles[] = {{"logic", options_.logic},
                                               {"task", options_.task},
                                               {"gateway", options_.gateways},
                                               {"edge", options_.edge}};
  int64_t next_id = 1;
  for (const auto& [role, count] : roles) {
    for (int i = 1; i <= count; ++i) {
      NodeProc n;
      n.role = role;
      n.name = std::string(role) + "-" + std::to_string(i);
      n.node_id = next_id++;
      n.config = dir_ / (n.name + ".toml");
      n.log = dir_ / "logs" / (n.name + ".log");
      n.data_dir = dir_ / "nodes" / n.name;
      n.argv = {self_, "serve", "--config", n.config.string()};
      for (const std::string& s : options_.settings) {
        n.argv.push_back("--set");
        n.argv.push_back(s);
      }
      nodes_.push_back(std::move(n));
    }
  }
}

void ClusterUp::WriteNodeConfig(const NodeProc& n) {
  const std::string redis = "redis://" + redis_->address();
  toml::table server{{"role", n.role},
                     {"listen", n.http_address()},
                     {"data_dir", n.data_dir.string()},
                     {"node_id", n.node_id}};
  if (n.role == "gateway" && options_.edge > 0) {
    // The edges' requests count against the clients they carry.
    server.insert("trusted_proxies", toml::array{"127.0.0.1"});
  }
  const toml::table discovery{{"engine", "etcd"},
                              {"etcd_endpoints", toml::array{etcd_->address()}}};
  toml::table config{{"server", server}, {"discovery", discovery}};
  if (n.role != "edge") {  // an edge needs only to find the gateways
    config = toml::table{
        {"server", server},
        {"store", toml::table{{"engine", "mysql"}, {"mysql_url", mariadb_->address()}}},
        {"cache", toml::table{{"engine", "redis"}, {"redis_url", redis}}},
        {"route", toml::table{{"engine", "redis"}, {"redis_url", redis}}},
        {"bus", toml::table{{"engine", "redis-streams"}, {"redis_url", redis}}},
        {"discovery", discovery},
        {"auth", toml::table{{"token_key", state_["token_key"].as_string().c_str()},
                             {"token_key_id", "cluster"}}},
    };
  }
  if (n.role == "logic") {
    config.insert("rpc", toml::table{{"listen", "127.0.0.1:" + std::to_string(n.rpc)}});
  }
  const fs::path tmp = n.config.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << "# " << n.name << " of the cluster in " << dir_.string()
        << ", written by `mpim cluster up` at each start\n"
        << "# (ports, engines and secrets: " << kStateFile
        << "). More settings: mpim cluster up --set section.key=value.\n\n"
        << config << "\n";
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write);  // it holds secrets
  fs::rename(tmp, n.config);
}

bool ClusterUp::SpawnNode(NodeProc& n) {
  ++n.attempts;
  n.http = Port(n.name + ".http");
  if (n.role == "logic") n.rpc = Port(n.name + ".rpc");
  SaveState();
  fs::create_directories(n.data_dir);
  WriteNodeConfig(n);
  core::SpawnOptions spawn;
  spawn.argv = n.argv;
  spawn.output = n.log.string();
  auto pid = core::Spawn(spawn);
  if (!pid.ok()) {
    std::fprintf(stderr, "mpim cluster up: %s: %s\n", n.name.c_str(),
                 std::string(pid.status().message()).c_str());
    return false;
  }
  n.pid = *pid;
  n.ready = false;
  return true;
}

int ClusterUp::WaitForSignal(std::chrono::milliseconds timeout) {
  timespec ts{.tv_sec = static_cast<time_t>(timeout.count() / 1000),
              .tv_nsec = static_cast<long>(timeout.count() % 1000) * 1000000};
  int signo = ::sigtimedwait(&signals_, nullptr, &ts);
  if (signo == SIGCHLD) return 0;  // Reap() looks at every child
  return signo > 0 ? signo : 0;
}

std::string ClusterUp::Describe(Clock::time_point t0) const {
  std::string line =
      "mpim cluster up [" + std::to_string(static_cast<int>(Seconds(Clock::now() - t0))) + " s]";
  for (size_t i = 0; i < engines_.size(); ++i) {
    line += std::string(" ") + engines_[i]->name() + (engine_ready_[i] ? " ready," : " starting,");
  }
  int ready = 0;
  for (const NodeProc& n : nodes_) ready += n.ready ? 1 : 0;
  line += " nodes " + std::to_string(ready) + "/" + std::to_string(nodes_.size()) + " ready";
  return line;
}

bool ClusterUp::StartAll(bool* stopped) {
  const auto t0 = Clock::now();
  const auto deadline = t0 + options_.timeout;
  *stopped = false;
  redis_ = std::make_unique<LocalRedis>(dir_, Port("redis"));
  mariadb_ = std::make_unique<LocalMariaDb>(dir_, Port("mysql"),
                                            state_["mysql_password"].as_string().c_str());
  etcd_ = std::make_unique<LocalEtcd>(dir_, Port("etcd"), Port("etcd_peer"));
  SaveState();
  engines_ = {redis_.get(), mariadb_.get(), etcd_.get()};
  engine_ready_.assign(engines_.size(), false);
  for (LocalEngine* e : engines_) {
    if (absl::Status s = e->Start(); !s.ok()) {
      status_.Clear();
      std::fprintf(stderr, "mpim cluster up: %s did not start: %s\n", e->name(),
                   std::string(s.message()).c_str());
      return false;
    }
  }
  bool nodes_spawned = false;
  for (;;) {
    status_.Show(Describe(t0));
    bool all = true;
    for (size_t i = 0; i < engines_.size(); ++i) {
      LocalEngine* e = engines_[i];
      if (engine_ready_[i]) continue;
      if (e->pid() <= 0 || core::WaitForExit(e->pid(), std::chrono::milliseconds(0))) {
        status_.Clear();
        std::fprintf(stderr, "mpim cluster up: %s exited while starting; its log (%s):\n%s\n",
                     e->name(), e->log().c_str(), FileTail(e->log(), 3000).c_str());
        e->Forget();
        return false;
      }
      engine_ready_[i] = e->Probe().ok();
      all = all && engine_ready_[i];
    }
    if (all && !nodes_spawned) {
      nodes_spawned = true;
      for (NodeProc& n : nodes_) {
        if (!SpawnNode(n)) return false;
      }
    }
    if (nodes_spawned) {
      for (NodeProc& n : nodes_) {
        if (n.ready) continue;
        if (auto code = core::WaitForExit(n.pid, std::chrono::milliseconds(0))) {
          n.pid = -1;
          const std::string log = FileTail(n.log, 3000);
          if (log.find("cannot listen") != std::string::npos && n.attempts < kPortAttempts) {
            json::object& ports = state_["ports"].as_object();
            ports.erase(n.name + ".http");
            ports.erase(n.name + ".rpc");
            if (!SpawnNode(n)) return false;
            continue;
          }
          status_.Clear();
          std::fprintf(stderr, "mpim cluster up: %s %s while starting; its log (%s):\n%s\n",
                       n.name.c_str(), core::DescribeExit(*code).c_str(), n.log.c_str(),
                       log.c_str());
          return false;
        }
        HttpAnswer answer;
        n.ready = HttpGet(n.http_address(), "/readyz", &answer).ok() && answer.status == 200;
        all = all && n.ready;
      }
      if (all) {
        status_.Clear();
        std::fprintf(stderr, "mpim cluster up: %zu nodes ready in %.1f s; logs in %s\n",
                     nodes_.size(), Seconds(Clock::now() - t0), (dir_ / "logs").c_str());
        return true;
      }
    }
    if (Clock::now() > deadline) {
      status_.Clear();
      std::fprintf(stderr, "mpim cluster up: not ready within %lld s: %s\n",
                   static_cast<long long>(options_.timeout.count()), Describe(t0).c_str());
      return false;
    }
    if (int signo = WaitForSignal(std::chrono::milliseconds(100)); signo != 0) {
      *stopped = true;
      return false;
    }
  }
}

std::string ClusterUp::ReadyLine() const {
  json::array gateways;
  json::array edges;
  json::array nodes;
  for (const NodeProc& n : nodes_) {
    if (n.role == "gateway") gateways.emplace_back(n.http_address());
    if (n.role == "edge") edges.emplace_back(n.http_address());
  }
  // Client-facing nodes first, as clients meet them: gateways, edges; then
  // logic and task nodes.
  std::vector<const NodeProc*> order;
  for (const char* role : {"gateway", "edge"}) {
    for (const NodeProc& n : nodes_) {
      if (n.role == role) order.push_back(&n);
    }
  }
  for (const NodeProc& n : nodes_) {
    if (n.role != "gateway" && n.role != "edge") order.push_back(&n);
  }
  for (const NodeProc* n : order) {
    json::array argv;
    for (const std::string& a : n->argv) argv.emplace_back(a);
    nodes.emplace_back(json::object{{"name", n->name},
                                    {"role", n->role},
                                    {"pid", n->pid},
                                    {"http", n->http_address()},
                                    {"argv", std::move(argv)}});
  }
  json::object line{
      {"gateways", std::move(gateways)},
      {"edges", std::move(edges)},
      {"engines", json::object{{"redis", redis_->address()},
                               {"mysql", mariadb_->address()},
                               {"etcd", etcd_->address()}}},
      {"nodes", std::move(nodes)},
  };
  return json::serialize(line);
}

void ClusterUp::Reap() {
  // One waitpid(-1) loop, each reaped pid matched to its node or engine: a
  // scan per node could miss a child that exits between its check and a
  // catch-all reap, and that node's exit would go unreported.
  int status = 0;
  pid_t pid = 0;
  while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
    int code = 0;
    if (WIFEXITED(status)) {
      code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      code = -WTERMSIG(status);
    } else {
      continue;  // stopped or continued: not an exit
    }
    bool known = false;
    for (NodeProc& n : nodes_) {
      if (n.pid != pid) continue;
      std::fprintf(stderr,
                   "mpim cluster up: %s (pid %d) %s; not restarted (restart it with its argv)\n",
                   n.name.c_str(), n.pid, core::DescribeExit(code).c_str());
      n.pid = -1;
      known = true;
    }
    for (LocalEngine* e : engines_) {
      if (known || e->pid() != pid) continue;
      std::fprintf(stderr, "mpim cluster up: %s (pid %d) %s; its log: %s\n", e->name(), e->pid(),
                   core::DescribeExit(code).c_str(), e->log().c_str());
      e->Forget();
      known = true;
    }
    // Anything else (a process a node left behind) is reaped quietly.
  }
}

void ClusterUp::StopAll() {
  // Edges first (nothing new reaches the gateways through them), then the
  // gateways drain (their clients get 1012 and go elsewhere), then the task
  // nodes, then the logic nodes (which finish the calls in flight), then
  // the engines.
  for (const char* role : {"edge", "gateway", "task", "logic"}) {
    for (NodeProc& n : nodes_) {
      if (n.role == role && n.pid > 0) ::kill(n.pid, SIGTERM);
    }
    for (NodeProc& n : nodes_) {
      if (n.role != role || n.pid <= 0) continue;
      auto code = core::WaitForExit(n.pid, kNodeGrace);
      if (!code) core::Terminate(n.pid, std::chrono::milliseconds(0));
      n.pid = -1;
    }
  }
  for (auto it = engines_.rbegin(); it != engines_.rend(); ++it) (*it)->Stop(kEngineGrace);
}

int ClusterUp::Run() {
  if (options_.gateways < 1 || options_.logic < 1 || options_.task < 0 || options_.edge < 0 ||
      options_.gateways + options_.logic + options_.task + options_.edge > 200) {
    std::fprintf(stderr,
                 "mpim cluster up: at least 1 gateway and 1 logic node, at most 200 nodes\n");
    return 2;
  }
  if (std::string missing = MissingEngineProgram(); !missing.empty()) {
    std::fprintf(stderr, "mpim cluster up: %s is not on PATH\n", missing.c_str());
    return 2;
  }
  std::error_code ec;
  fs::create_directories(options_.dir / "logs", ec);
  dir_ = fs::canonical(options_.dir, ec);
  if (ec) {
    std::fprintf(stderr, "mpim cluster up: cannot use %s: %s\n", options_.dir.c_str(),
                 ec.message().c_str());
    return 2;
  }
  self_ = fs::read_symlink("/proc/self/exe", ec).string();
  if (ec || sodium_init() < 0) {
    std::fprintf(stderr, "mpim cluster up: cannot find its own binary\n");
    return 1;
  }
  if (!Lock()) return 2;

  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGCHLD);
  ::pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  LoadState();
  PlanNodes();
  bool stopped = false;
  if (!StartAll(&stopped)) {
    status_.Clear();
    if (stopped) std::fprintf(stderr, "mpim cluster up: stopping\n");
    StopAll();
    return stopped ? 0 : 1;
  }
  std::printf("%s\n", ReadyLine().c_str());
  std::fflush(stdout);

  int signo = 0;
  while (signo == 0) {
    signo = WaitForSignal(std::chrono::milliseconds(1000));
    Reap();
  }
  std::fprintf(stderr, "mpim cluster up: %s: draining the nodes, then stopping the engines\n",
               signo == SIGTERM ? "SIGTERM" : "SIGINT");
  const auto t0 = Clock::now();
  StopAll();
  std::fprintf(stderr, "mpim cluster up: stopped in %.1f s; the data stays in %s\n",
               Seconds(Clock::now() - t0), dir_.c_str());
  return 0;
}

}  // namespace

int RunClusterUp(const ClusterUpOptions& options) { return ClusterUp(options).Run(); }

}  // namespace mpim::app
