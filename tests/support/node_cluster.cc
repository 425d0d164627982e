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
  if (!db_name_.empty()) SharedMariaDb().DropDatabase(db_name_);
  std::error_code ec;
  for (const auto& dir : dirs_) std::filesystem::remove_all(dir, ec);
}

ServerProcess::Options NodeCluster::NodeOptions(int i) const {
  ServerProcess::Options o;
  o.env = FastAuthEnv();
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
  for (int i = 0; i < options_.nodes; ++i) {
    dirs_.push_back(FreshTempDir("mpim-node" + std::to_string(i + 1) + "-"));
    nodes_.push_back(std::make_unique<ServerProcess>(NodeOptions(i)));
    if (!nodes_.back()->Start(std::chrono::seconds(60))) {
      error_ = "node " + std::to_string(i + 1) + " did not start: " + nodes_.back()->error();
      return false;
    }
  }
  return true;
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
