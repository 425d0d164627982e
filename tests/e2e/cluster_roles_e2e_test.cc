// End to end: the roles apart under faults (issue 20; cluster.md section
// 4). Two gateways, two logic nodes and a task node on one MariaDB, one
// Redis and one etcd of their own (support/node_cluster.h, discovery etcd
// with 2 s leases), with chat and group load on the gateways
// (support/chat_load.h). The AckChecker checks at the end that every
// acknowledged message is stored once, in order, and reached every
// receiver once after dedup.
//
//   - Logic nodes killed in turn under load (kill -9, restarted with the
//     same settings): the gateways' RPC clients move every call to the
//     live logic node (sends are retried there: idempotent by
//     client_msg_id), so every sender is acknowledged again soon after the
//     kill; how soon is printed (the issue's target: 2 s).
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
constexpr int kLogicKills = 4;
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
      for (int i = 0; i < cluster_->size(); ++i) {
        std::printf("%s node %d log (last 3000 bytes):\n%s\n", cluster_->role(i).c_str(), i + 1,
                    cluster_->node(i).LogTail(3000).c_str());
      }
    }
  }

  std::vector<uint16_t> GatewayPorts() {
    std::vector<uint16_t> ports;
    for (int k = 0; k < cluster_->clients(); ++k)
      ports.push_back(cluster_->port(cluster_->client(k)));
    return ports;
  }

  // Waits until every sending client has kAcksPerSender more acknowledged
  // sends than now; the time it took.
  std::optional<Clock::duration> WaitEverySenderAcked() {
    std::map<const ChatLoadClient*, int64_t> acked;
    for (const auto& c : run_.clients()) acked[c.get()] = c->acked();
    const auto t0 = Clock::now();
    const auto again = [&](const ChatLoadClient& c) {
      return !c.sends() || c.acked() >= acked[&c] + kAcksPerSender;
    };
    if (!run_.WaitAll(again, kWait)) {
      ADD_FAILURE() << "senders not acknowledged again" << run_.Laggards(again);
      return std::nullopt;
    }
    return Clock::now() - t0;
  }

  // Sends node i served, from its /metrics.
  double CallsServed(int i) {
    return ApiClient(cluster_->port(i))
        .Metric(R"(mpim_rpc_server_calls_total{method="/mpim.logic.Messages/Send",code="ok"})");
  }

  std::unique_ptr<testing::NodeCluster> cluster_;
  testing::ChatLoadRun run_;
};

TEST_F(ClusterRolesE2eTest, LogicNodesKilledInTurnUnderLoadFailOverAndLoseNothing) {
  ASSERT_TRUE(run_.Start(GatewayPorts(), "lk", kPlan)) << "load not set up";
  std::vector<double> failover_s;
  for (int cycle = 1; cycle <= kLogicKills; ++cycle) {
    const int victim = cluster_->Nth("logic", (cycle - 1) % 2);
    SCOPED_TRACE("cycle " + std::to_string(cycle) + ", node " + std::to_string(victim + 1));
    ASSERT_TRUE(run_.WaitConnected(kWait));
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
    run_.load.Pause(Ms(100 + 100 * cycle));  // pacing: the node dies mid-load
    const auto t_kill = Clock::now();
    cluster_->Kill(victim);
    auto took = WaitEverySenderAcked();
    ASSERT_TRUE(took.has_value()) << "with logic node " << victim + 1 << " down";
    failover_s.push_back(Seconds(*took));
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait))
        << "while logic node " << victim + 1 << " is down";
    const auto t_restart = Clock::now();
    ASSERT_TRUE(cluster_->Restart(victim)) << cluster_->error();
    std::printf(
        "cycle %d: logic node %d killed; every sender acknowledged again %.2f s later; down "
        "%.1f s; restarted in %.1f s\n",
        cycle, victim + 1, failover_s.back(), Seconds(t_restart - t_kill),
        Seconds(Clock::now() - t_restart));
  }
  // Both logic nodes serve again: each gets calls.
  const int l1 = cluster_->Nth("logic", 0), l2 = cluster_->Nth("logic", 1);
  const double before1 = CallsServed(l1), before2 = CallsServed(l2);
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "after the last restart";
  EXPECT_TRUE(testing::PollUntil(
      [&] { return CallsServed(l1) > before1 && CallsServed(l2) > before2; }, kWait))
      << "a restarted logic node gets no calls";
  testing::ChatLoadSummary s = run_.Finish(cluster_->port(cluster_->client(0)), kWait);
  double worst = 0;
  for (double f : failover_s) worst = std::max(worst, f);
  std::printf(
      "logic kills: %d cycles; %lld sends acknowledged; worst time until every sender "
      "was acknowledged again: %.2f s\n",
      kLogicKills, static_cast<long long>(s.totals.acked_messages), worst);
  RecordProperty("worst_failover_ms", std::to_string(static_cast<int64_t>(worst * 1000)));
}

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
