// End to end: the roles apart under faults (issue 20; cluster.md section
// 4). Two gateways, two logic nodes and a task node on one MariaDB, one
// Redis and one etcd of their own (support/node_cluster.h, discovery etcd
// with 2 s leases), with chat and group load on the gateways
// (support/chat_load.h). The AckChecker checks at the end that every
// acknowledged message is stored once, in order, and reached every
// receiver once after dedup.
//
//   (Logic nodes killed under load: cluster_failover_e2e_test.cc, with the
//   other roles.)
//   - A logic node added under load registers in etcd and the gateways
//     send it calls.
//   - etcd killed under load: the nodes keep their last list and the load
//     goes on; once etcd is back they register again, and a gateway started
//     after that finds the logic nodes through it.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/chat_load.h"
#include "support/group_helpers.h"
#include "support/node_cluster.h"

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ChatLoadClient;
using testing::ChatLoadPlan;
using testing::Ms;
using Clock = std::chrono::steady_clock;

const ChatLoadPlan kPlan{.pairs = 6, .groups = {{5, 2}, {7, 2}}};
constexpr int kFanoutThreshold = 5;  // the 7-member group goes through the task node
constexpr int64_t kMinAcksPerPhase = 200;
constexpr int64_t kAcksPerSender = 3;  // "acknowledged again" after a fault
constexpr Ms kWait{30000};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

class ClusterRolesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<testing::NodeCluster>(testing::NodeClusterOptions{
        .roles = {"gateway", "gateway", "logic", "logic", "task"},
        .discovery = "etcd",
        .bus_engine = "redis-streams",
        .settings = {"limits.send_per_sec=100000", "limits.send_burst=100000",
                     "groups.fanout_threshold=" + std::to_string(kFanoutThreshold),
                     "groups.fanout_batch=4"}});
    const auto t0 = Clock::now();
    ASSERT_TRUE(cluster_->Start()) << cluster_->error();
    std::printf("cluster of %d nodes up in %.1f s\n", cluster_->size(), Seconds(Clock::now() - t0));
  }

  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && cluster_) {
      std::printf("%s", cluster_->LogTails(3000).c_str());
    }
  }

  std::vector<uint16_t> GatewayPorts() {
    std::vector<uint16_t> ports;
    for (int k = 0; k < cluster_->clients(); ++k)
      ports.push_back(cluster_->port(cluster_->client(k)));
    return ports;
  }

  std::optional<Clock::duration> WaitEverySenderAcked() {
    return run_.WaitEverySenderAcked(kAcksPerSender, kWait);
  }

  // Send and ack calls node i served (coalesced or one each), from its
  // /metrics. Sends are keyed by conversation (8 here) and acks by user
  // (about 16 receivers): counting both, the chance that the ring gives the
  // new node none of the keys is about (2/3)^24, where sends alone left it
  // (2/3)^8, about 4% (seen once in CI).
  double CallsServed(int i) {
    ApiClient api(cluster_->port(i));
    double calls = 0;
    for (const char* method :
         {"Messages/SendMany", "Messages/Send", "Conversations/AckMany", "Conversations/Ack"}) {
      calls += api.Metric(std::string(R"(mpim_rpc_server_calls_total{method="/mpim.logic.)") +
                          method + R"(",code="ok"})");
    }
    return calls;
  }

  std::unique_ptr<testing::NodeCluster> cluster_;
  testing::ChatLoadRun run_;
};

TEST_F(ClusterRolesE2eTest, ALogicNodeAddedUnderLoadGetsCalls) {
  ASSERT_TRUE(run_.Start(GatewayPorts(), "la", kPlan)) << "load not set up";
  ASSERT_TRUE(run_.WaitConnected(kWait));
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  const int added = cluster_->AddNode("logic");
  ASSERT_GE(added, 0) << cluster_->error();
  EXPECT_TRUE(testing::PollUntil([&] { return CallsServed(added) > 0; }, kWait))
      << "the gateways never called the new logic node";
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  run_.Finish(cluster_->port(cluster_->client(0)), kWait);
}

TEST_F(ClusterRolesE2eTest, EtcdKilledUnderLoadTheClusterGoesOnAndRegistersAgain) {
  ASSERT_TRUE(run_.Start(GatewayPorts(), "le", kPlan)) << "load not set up";
  ASSERT_TRUE(run_.WaitConnected(kWait));
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  cluster_->etcd()->Kill();
  // Discovery down: every node keeps the list it had.
  ASSERT_TRUE(WaitEverySenderAcked().has_value()) << "with etcd down";
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "with etcd down";
  ASSERT_TRUE(cluster_->etcd()->Restart()) << cluster_->etcd()->error();
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "after etcd came back";
  // A gateway started now finds the logic nodes through etcd alone.
  const int gateway = cluster_->AddNode("gateway");
  ASSERT_GE(gateway, 0) << cluster_->error();
  ApiClient api(cluster_->port(gateway));
  auto account = api.NewAccount(testing::UniqueName("le_new"));
  EXPECT_FALSE(account.token().empty()) << "no account through the new gateway";
  run_.Finish(cluster_->port(cluster_->client(0)), kWait);
}

}  // namespace
}  // namespace mpim
