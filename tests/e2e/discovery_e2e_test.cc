// `mpim serve` with discovery.engine = etcd (a real etcd started here):
// nodes take distinct snowflake node ids from etcd, register, and leave
// etcd's list at once on SIGTERM, or within their lease after kill -9; an
// unreachable etcd stops start-up with a message.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include "support/etcd_server.h"
#include "support/server_process.h"

namespace mpim::testing {
namespace {

using std::chrono::milliseconds;

// The keys under `prefix` in etcd, one per line (etcdctl, Debian's etcd-client).
std::string EtcdKeys(const EtcdServer& etcd, const std::string& prefix) {
  int code = 0;
  return RunCommand("ETCDCTL_API=3 etcdctl --endpoints=" + etcd.Endpoint() + " get --prefix " +
                        prefix + " --keys-only 2>&1",
                    &code);
}

int CountLines(const std::string& text, const std::string& containing) {
  int n = 0;
  size_t at = 0;
  while ((at = text.find(containing, at)) != std::string::npos) {
    ++n;
    at += containing.size();
  }
  return n;
}

// The node id a server logged when it joined.
int64_t LoggedNodeId(const ServerProcess& server) {
  std::smatch m;
  const std::string logs = server.Logs();
  static const std::regex id(R"("msg":"registered in etcd".*?"node_id":(\d+))");
  if (!std::regex_search(logs, m, id)) return -1;
  return std::stoll(m[1].str());
}

bool WaitUntil(const std::function<bool()>& pred, milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(50));  // poll interval, not a sync
  }
  return false;
}

ServerProcess::Options EtcdNode(const EtcdServer& etcd) {
  ServerProcess::Options options;
  options.extra_args = {"--set", "discovery.engine=etcd",
                        "--set", "discovery.etcd_endpoints=" + etcd.Endpoint(),
                        "--set", "discovery.etcd_prefix=/e2e/",
                        "--set", "discovery.lease_ttl_s=2",
                        "--set", "log.format=json"};
  return options;
}

TEST(DiscoveryE2eTest, NodesTakeDistinctIdsAndLeaveEtcdWhenTheyStop) {
  EtcdServer etcd;
  ASSERT_TRUE(etcd.Start()) << etcd.error();
  std::vector<std::unique_ptr<ServerProcess>> nodes;
  std::set<int64_t> ids;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<ServerProcess>(EtcdNode(etcd)));
    ASSERT_TRUE(nodes.back()->Start()) << nodes.back()->error();
    const int64_t id = LoggedNodeId(*nodes.back());
    ASSERT_GE(id, 0) << nodes.back()->LogTail(2000);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 3u) << "every node has its own node id";
  std::string keys = EtcdKeys(etcd, "/e2e/");
  EXPECT_EQ(CountLines(keys, "/e2e/nodes/all@"), 3) << keys;
  EXPECT_EQ(CountLines(keys, "/e2e/node-ids/"), 3) << keys;

  // SIGTERM: out of etcd at once (the lease is revoked), before it exits.
  nodes[0]->Signal(SIGTERM);
  ASSERT_EQ(nodes[0]->Wait(std::chrono::seconds(20)), 0);
  keys = EtcdKeys(etcd, "/e2e/");
  EXPECT_EQ(CountLines(keys, "/e2e/nodes/all@"), 2) << keys;

  // kill -9: gone once its lease (2 s) expires.
  nodes[1]->Signal(SIGKILL);
  nodes[1]->Wait(std::chrono::seconds(20));
  EXPECT_TRUE(WaitUntil([&] { return CountLines(EtcdKeys(etcd, "/e2e/"), "/e2e/nodes/all@") == 1; },
                        milliseconds(8000)))
      << EtcdKeys(etcd, "/e2e/");
  // Its node id is free again: a new node may take it.
  EXPECT_EQ(CountLines(EtcdKeys(etcd, "/e2e/"), "/e2e/node-ids/"), 1);
}

TEST(DiscoveryE2eTest, AnUnreachableEtcdStopsStartUpWithAMessage) {
  ServerProcess::Options options;
  const std::string port = std::to_string(FreePort());
  options.extra_args = {"--set", "discovery.engine=etcd",
                        "--set", "discovery.etcd_endpoints=127.0.0.1:" + port,
                        "--set", "discovery.etcd_timeout_ms=300"};
  ServerProcess server(options);
  EXPECT_FALSE(server.Start(std::chrono::seconds(10)));
  EXPECT_NE(server.Logs().find("cannot join the cluster"), std::string::npos)
      << server.LogTail(2000);
}

}  // namespace
}  // namespace mpim::testing
