#include "support/node_cluster.h"

#include <csignal>
#include <random>

#include "support/api_client.h"
#include "support/mariadb_server.h"

namespace mpim::testing {

NodeCluster::NodeCluster(NodeClusterOptions options) : options_(std::move(options)) {}

NodeCluster::~NodeCluster() {
  nodes_.clear();  // SIGKILLs what still runs
  redis_.Kill();
  etcd_.reset();
  if (!db_name_.empty()) SharedMariaDb().DropDatabase(db_name_);
  std::error_code ec;
  for (const auto& dir : dirs_) std::filesystem::remove_all(dir, ec);
}

ServerProcess::Options NodeCluster::NodeOptions(int i) const {
  ServerProcess::Options o;
  o.env = FastAuthEnv();
  o.env.insert(o.env.end(), options_.env.begin(), options_.env.end());
  o.data_dir = dirs_.at(static_cast<size_t>(i));
  const std::string redis = redis_.Url();
  // One signing key for every node: a token from one is good on all.
  const std::string key = Base64UrlEncode(std::string(32, 'k'));
  std::vector<std::string> settings = {
      "server.node_id=" + std::to_string(i + 1),
      "store.engine=mysql",
      "store.mysql_url=" + mysql_url_,
      "cache.engine=redis",
      "cache.redis_url=" + redis,
      "route.engine=redis",
      "route.redis_url=" + redis,
      "route.node_ttl_ms=" + std::to_string(options_.node_ttl_ms),
      "bus.engine=" + options_.bus_engine,
      "bus.redis_url=" + redis,
      "auth.token_key=" + key,
      "auth.token_key_id=cluster",
  };
  const std::string& role = roles_.at(static_cast<size_t>(i));
  settings.push_back("server.role=" + role);
  if (role == "logic") {
    settings.push_back("rpc.listen=127.0.0.1:" +
                       std::to_string(rpc_ports_.at(static_cast<size_t>(i))));
  }
  if (options_.discovery == "etcd") {
    settings.push_back("discovery.engine=etcd");
    settings.push_back("discovery.etcd_endpoints=" + etcd_->Endpoint());
    settings.push_back("discovery.lease_ttl_s=2");
  } else {
    std::string logic;
    for (size_t j = 0; j < roles_.size(); ++j) {
      if (roles_[j] != "logic") continue;
      if (!logic.empty()) logic += ",";
      logic += "logic=127.0.0.1:" + std::to_string(rpc_ports_[j]);
    }
    if (!logic.empty()) settings.push_back("discovery.static_nodes=" + logic);
  }
  settings.insert(settings.end(), options_.settings.begin(), options_.settings.end());
  for (const std::string& s : settings) {
    o.extra_args.push_back("--set");
    o.extra_args.push_back(s);
  }
  return o;
}

bool NodeCluster::Start() {
  if (!redis_.Start()) {
    error_ = "redis-server did not start: " + redis_.error();
    return false;
  }
  std::random_device rd;
  db_name_ = "nodes" + std::to_string(rd() % 1000000000);
  mysql_url_ = SharedMariaDb().CreateDatabase(db_name_);
  if (mysql_url_.empty()) {
    error_ = "no database on the shared MariaDB";
    return false;
  }
  if (options_.discovery == "etcd") {
    etcd_ = std::make_unique<EtcdServer>();
    if (!etcd_->Start()) {
      error_ = "etcd did not start: " + etcd_->error();
      return false;
    }
  }
  roles_ = options_.roles;
  if (roles_.empty()) roles_.assign(static_cast<size_t>(options_.nodes), "all");
  for (const std::string& role : roles_) rpc_ports_.push_back(role == "logic" ? FreePort() : 0);
  // Logic nodes first: a gateway is ready once it reaches one.
  std::vector<int> order;
  for (int i = 0; i < size(); ++i) {
    if (roles_[static_cast<size_t>(i)] == "logic") order.push_back(i);
  }
  for (int i = 0; i < size(); ++i) {
    if (roles_[static_cast<size_t>(i)] != "logic") order.push_back(i);
  }
  dirs_.resize(roles_.size());
  nodes_.resize(roles_.size());
  for (int i : order) {
    if (!StartNode(i)) return false;
  }
  return true;
}

int NodeCluster::size() const { return static_cast<int>(roles_.size()); }

std::string NodeCluster::LogTails(size_t bytes) const {
  std::string out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (!nodes_[i]) continue;
    out += roles_[i] + " node " + std::to_string(i + 1) + " log (last " + std::to_string(bytes) +
           " bytes):\n" + nodes_[i]->LogTail(bytes) + "\n";
  }
  return out;
}

bool NodeCluster::StartNode(int i) {
  auto index = static_cast<size_t>(i);
  dirs_[index] = FreshTempDir("mpim-" + roles_[index] + std::to_string(i + 1) + "-");
  // A logic node's gRPC port is chosen here (FreePort) and may be taken by
  // another process before the node binds it: then it gets another one.
  for (int attempt = 0; attempt < 3; ++attempt) {
    nodes_[index] = std::make_unique<ServerProcess>(NodeOptions(i));
    if (nodes_[index]->Start(std::chrono::seconds(60))) return true;
    const bool port_taken = roles_[index] == "logic" &&
                            nodes_[index]->Logs().find("cannot listen on") != std::string::npos;
    if (!port_taken) break;
    rpc_ports_[index] = FreePort();
  }
  error_ = roles_[index] + " node " + std::to_string(i + 1) +
           " did not start: " + nodes_[index]->error();
  return false;
}

std::unique_ptr<ServerProcess> NodeCluster::Twin(int i) const {
  ServerProcess::Options options = NodeOptions(i);
  options.data_dir.clear();  // a temp dir of its own
  return std::make_unique<ServerProcess>(std::move(options));
}

int NodeCluster::AddNode(const std::string& role) {
  roles_.push_back(role);
  rpc_ports_.push_back(role == "logic" ? FreePort() : 0);
  dirs_.emplace_back();
  nodes_.emplace_back();
  int i = size() - 1;
  return StartNode(i) ? i : -1;
}

int NodeCluster::clients() const {
  int n = 0;
  for (const std::string& r : roles_) n += (r == "all" || r == "gateway") ? 1 : 0;
  return n;
}

int NodeCluster::client(int k) const {
  for (int i = 0; i < size(); ++i) {
    const std::string& r = roles_[static_cast<size_t>(i)];
    if ((r == "all" || r == "gateway") && k-- == 0) return i;
  }
  return -1;
}

int NodeCluster::Nth(const std::string& role, int k) const {
  for (int i = 0; i < size(); ++i) {
    if (roles_[static_cast<size_t>(i)] == role && k-- == 0) return i;
  }
  return -1;
}

void NodeCluster::Kill(int i) {
  node(i).Signal(SIGKILL);
  (void)node(i).Wait(std::chrono::seconds(10));
}

bool NodeCluster::Restart(int i) {
  auto& slot = nodes_.at(static_cast<size_t>(i));
  slot = std::make_unique<ServerProcess>(NodeOptions(i));
  if (!slot->Start(std::chrono::seconds(60))) {
    error_ = "node " + std::to_string(i + 1) + " did not restart: " + slot->error();
    return false;
  }
  return true;
}

}  // namespace mpim::testing
