// End to end: failover of a cluster with the roles apart, checked message by
// message (issue 21; design/cluster.md section 4: killing any one node loses
// no acknowledged message and duplicates none after client dedup; clients
// of a dead gateway reconnect to another and catch up; an engine that goes
// away fails calls with `unavailable`, never a false `ok`, and the nodes
// recover by themselves).
//
// Chat and group load (support/chat_load.h) spread over the gateways: six
// pairs whose two users sit on the two gateways, a group fanned out in the
// send path (5 members) and one by the task node's fan-out job (7), two
// senders each. The AckChecker checks at the end that every acknowledged
// message is stored once, in order, and reached every receiver, in order,
// once after dedup.
//
// On `mpim cluster up` (2 gateways, 2 logic nodes, a task node; its
// defaults but for the send limits and the fan-out threshold), driven as an
// operator would (support/cluster_up_process.h):
//   - each role killed in turn (kill -9), 12 cycles (each gateway, each
//     logic node, the task node, twice over), each node restarted with its
//     argv: a dead gateway's clients reconnect to the other with back-off
//     and catch up; sends fail over to the live logic node; group fan-out
//     resumes when the task node is back. The times are printed.
//   - SIGTERM of each node under load: a gateway closes its sessions with
//     1012 and exits 0, a logic node finishes the calls in flight, the task
//     node its job; nothing acknowledged is lost.
// On a NodeCluster of the same roles whose engines the test controls
// (support/node_cluster.h):
//   - redis-server killed and restarted empty;
//   - mariadbd killed and restarted: while it is down every send fails
//     with `unavailable` (an `ok` for a send made during the outage is a
//     test failure), then the load goes on. The cluster's database is on
//     the test process's shared MariaDB (SharedMariaDb), killed here.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/chat_load.h"
#include "support/cluster_up_process.h"
#include "support/group_helpers.h"
#include "support/mariadb_server.h"
#include "support/node_cluster.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ChatLoadClient;
using testing::ChatLoadPlan;
using testing::ClusterUpProcess;
using testing::Ms;
using testing::WsConn;
using Clock = std::chrono::steady_clock;

constexpr int kFanoutThreshold = 5;  // the 7-member group goes through the task node
const ChatLoadPlan kPlan{.pairs = 6, .groups = {{5, 2}, {7, 2}}};
const std::vector<std::string> kSettings = {
    "limits.send_per_sec=100000", "limits.send_burst=100000",
    "groups.fanout_threshold=" + std::to_string(kFanoutThreshold), "groups.fanout_batch=4"};
// Each gateway, each logic node and the task node, twice over.
const std::array<const char*, 12> kVictims = {"gateway-1", "logic-1",   "task-1",    "gateway-2",
                                              "logic-2",   "task-1",    "gateway-1", "logic-2",
                                              "task-1",    "gateway-2", "logic-1",   "task-1"};
constexpr int64_t kMinAcksPerPhase = 200;
constexpr int64_t kAcksPerSender = 3;  // "acknowledged again" after a fault
constexpr Ms kWait{40000};
constexpr std::array<const char*, 7> kCrashMarks = {
    "terminate called", "Assertion",   "AddressSanitizer",   "runtime error:",
    "Segmentation",     "core dumped", "\"level\":\"fatal\""};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string Worst(const std::vector<double>& v) {
  double w = 0;
  for (double x : v) w = std::max(w, x);
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", w);
  return text;
}

// Waits until every sending client has kAcksPerSender more acknowledged
// sends than now; the time it took.
std::optional<Clock::duration> WaitEverySenderAcked(testing::ChatLoadRun& run) {
  return run.WaitEverySenderAcked(kAcksPerSender, kWait);
}

void ExpectNoCrash(const std::string& name, const std::string& log) {
  for (const char* mark : kCrashMarks) {
    EXPECT_EQ(log.find(mark), std::string::npos) << name << ": its log has \"" << mark << "\"";
  }
}

class ClusterFailoverE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<std::string> args;
    for (const std::string& s : kSettings) {
      args.push_back("--set");
      args.push_back(s);
    }
    cluster_ = std::make_unique<ClusterUpProcess>(
        ClusterUpProcess::Options{.args = args, .env = testing::FastAuthEnv()});
    const auto t0 = Clock::now();
    ASSERT_TRUE(cluster_->Start()) << cluster_->error();
    std::printf("mpim cluster up ready in %.1f s\n", Seconds(Clock::now() - t0));
  }

  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && cluster_) {
      std::printf("cluster up stderr:\n%s\n", cluster_->Stderr().c_str());
      for (auto& n : cluster_->nodes()) {
        std::printf("%s log:\n%s\n", n.name.c_str(), cluster_->NodeLog(n.name, 3000).c_str());
      }
    }
  }

  void ExpectEveryNodeReadyAndSound() {
    for (auto& n : cluster_->nodes()) {
      int last = 0;
      EXPECT_TRUE(testing::WaitForReadyz(n.port, 200, kWait, &last))
          << n.name << ": /readyz answers " << last;
      ExpectNoCrash(n.name, cluster_->NodeLog(n.name, 1 << 24));
    }
  }

  std::unique_ptr<ClusterUpProcess> cluster_;
  testing::ChatLoadRun run_;
};

TEST_F(ClusterFailoverE2eTest, EachRoleKilledInTurnAndRestartedWithItsArgvLosesNothing) {
  const std::vector<uint16_t> gateways = cluster_->gateway_ports();
  ASSERT_TRUE(run_.Start(gateways, "fk", kPlan)) << "load not set up";
  testing::ChatLoad& load = run_.load;
  std::vector<double> back_and_synced_s, sends_failed_s;
  int64_t moved = 0;
  for (size_t cycle = 1; cycle <= kVictims.size(); ++cycle) {
    const std::string victim = kVictims[cycle - 1];
    const std::string role = cluster_->node(victim).role;
    SCOPED_TRACE("cycle " + std::to_string(cycle) + ", " + victim);
    ASSERT_TRUE(run_.WaitConnected(kWait));
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
    load.Pause(Ms(100 + 50 * static_cast<int>(cycle % 5)));  // pacing: it dies mid-load
    const uint16_t port = cluster_->node(victim).port;
    std::map<const ChatLoadClient*, int> on_victim;  // -> its connections then
    if (role == "gateway") {
      for (const auto& c : run_.clients()) {
        if (c->connected_port() == port) on_victim[c.get()] = c->connections();
      }
      ASSERT_FALSE(on_victim.empty()) << "no client on " << victim;
    }
    const auto t_kill = Clock::now();
    ASSERT_TRUE(cluster_->Kill(victim)) << victim << " did not die";
    std::string figure;
    if (role == "gateway") {
      // Its clients go on to the other gateway, catch up there (hello +
      // sync) and are acknowledged again.
      const auto moved_off = [&](const ChatLoadClient& c) {
        auto it = on_victim.find(&c);
        return it == on_victim.end() || (c.connections() > it->second && c.connected_port() != 0 &&
                                         c.connected_port() != port);
      };
      ASSERT_TRUE(run_.WaitAll(moved_off, kWait))
          << "the clients of " << victim << " did not reconnect to the other gateway"
          << run_.Laggards(moved_off);
      const double moved_s = Seconds(Clock::now() - t_kill);
      ASSERT_TRUE(WaitEverySenderAcked(run_).has_value()) << "with " << victim << " down";
      back_and_synced_s.push_back(Seconds(Clock::now() - t_kill));
      moved += static_cast<int64_t>(on_victim.size());
      char text[160];
      std::snprintf(text, sizeof text,
                    "its %zu clients on the other gateway %.2f s later, every sender "
                    "acknowledged again %.2f s after the kill",
                    on_victim.size(), moved_s, back_and_synced_s.back());
      figure = text;
    } else {
      // logic: calls move to the live logic node; task: the sends go on
      // (the fan-out jobs wait in the store for the task node).
      auto took = WaitEverySenderAcked(run_);
      ASSERT_TRUE(took.has_value()) << "with " << victim << " down";
      if (role == "logic") sends_failed_s.push_back(Seconds(*took));
      char text[120];
      std::snprintf(text, sizeof text, "every sender acknowledged again %.2f s after the kill",
                    Seconds(*took));
      figure = text;
    }
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "while " << victim << " is down";
    const auto t_restart = Clock::now();
    ASSERT_TRUE(cluster_->Restart(victim)) << cluster_->error();
    const auto t_restarted = Clock::now();
    if (role == "gateway") load.PublishNodes(gateways);  // its clients go home
    ASSERT_TRUE(run_.WaitConnected(kWait)) << "after " << victim << " restarted";
    std::printf("cycle %zu: %s killed; %s; down %.1f s; restarted in %.1f s\n", cycle,
                victim.c_str(), figure.c_str(), Seconds(t_restart - t_kill),
                Seconds(t_restarted - t_restart));
  }
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "after the last restart";
  testing::ChatLoadSummary s = run_.Finish(gateways[0], kWait);
  EXPECT_GE(s.failovers, moved) << "every client of a killed gateway went to the other";
  ExpectEveryNodeReadyAndSound();
  std::printf(
      "role kills: %zu cycles; %lld sends acknowledged, %lld resent after a reconnect (%lld "
      "already stored), %lld receipts (%lld duplicates, dropped by the clients), %lld "
      "failovers; worst: gateway clients back and acknowledged %s s after the kill, sends "
      "acknowledged again %s s after a logic node's kill\n",
      kVictims.size(), static_cast<long long>(s.totals.acked_messages),
      static_cast<long long>(s.resent), static_cast<long long>(s.resends_found_stored),
      static_cast<long long>(s.totals.receipts),
      static_cast<long long>(s.totals.duplicate_receipts), static_cast<long long>(s.failovers),
      Worst(back_and_synced_s).c_str(), Worst(sends_failed_s).c_str());
  RecordProperty("worst_gateway_failover_s", Worst(back_and_synced_s));
  RecordProperty("worst_logic_failover_s", Worst(sends_failed_s));
}

TEST_F(ClusterFailoverE2eTest, EachNodeStoppedWithSigtermDrainsAndLosesNothing) {
  const std::vector<uint16_t> gateways = cluster_->gateway_ports();
  ASSERT_TRUE(run_.Start(gateways, "fs", kPlan)) << "load not set up";
  for (const char* name : {"gateway-1", "logic-1", "task-1", "gateway-2", "logic-2"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(run_.WaitConnected(kWait));
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
    auto& n = cluster_->node(name);
    const bool gateway = n.role == "gateway";
    const bool restarted = n.restarted;
    const pid_t pid = n.pid;
    // A session of its own on a gateway: the drain closes it with 1012.
    std::unique_ptr<WsConn> watcher;
    if (gateway) {
      ApiClient api(n.port);
      testing::Account a = api.NewAccount(testing::UniqueName("fs_w"));
      watcher = std::make_unique<WsConn>(n.port);
      ASSERT_TRUE(watcher->Open(a.token()));
    }
    auto code = cluster_->Terminate(name, kWait);
    ASSERT_TRUE(code.has_value()) << name << " did not exit on SIGTERM";
    if (restarted) {
      EXPECT_EQ(*code, 0) << name;
    } else {
      const std::string said =
          name + std::string(" (pid ") + std::to_string(pid) + ") exited with code 0";
      EXPECT_TRUE(testing::PollUntil(
          [&] { return cluster_->Stderr().find(said) != std::string::npos; }, kWait))
          << "cluster up did not report \"" << said << "\":\n"
          << cluster_->Stderr();
    }
    if (watcher) {
      EXPECT_EQ(watcher->CloseCode(kWait), std::optional<int>(1012));
    }
    ASSERT_TRUE(WaitEverySenderAcked(run_).has_value()) << "with " << name << " stopped";
    ASSERT_TRUE(cluster_->Restart(name)) << cluster_->error();
    if (gateway) run_.load.PublishNodes(gateways);
  }
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "after the last restart";
  testing::ChatLoadSummary s = run_.Finish(gateways[1], kWait);
  ExpectEveryNodeReadyAndSound();
  std::printf("SIGTERM of each node: %lld sends acknowledged, %lld resent after a reconnect\n",
              static_cast<long long>(s.totals.acked_messages), static_cast<long long>(s.resent));
}

// The engines: a NodeCluster of the same roles, whose Redis and MariaDB the
// test kills and restarts.
class ClusterEnginesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<testing::NodeCluster>(
        testing::NodeClusterOptions{.roles = {"gateway", "gateway", "logic", "logic", "task"},
                                    .discovery = "etcd",
                                    .bus_engine = "redis-streams",
                                    .settings = kSettings});
    ASSERT_TRUE(cluster_->Start()) << cluster_->error();
    for (int k = 0; k < cluster_->clients(); ++k) {
      gateways_.push_back(cluster_->port(cluster_->client(k)));
    }
  }

  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && cluster_) {
      std::printf("%s", cluster_->LogTails(3000).c_str());
    }
  }

  void ExpectEveryNodeReadyAndSound() {
    for (int i = 0; i < cluster_->size(); ++i) {
      int last = 0;
      EXPECT_TRUE(testing::WaitForReadyz(cluster_->port(i), 200, kWait, &last))
          << "node " << i + 1 << ": /readyz answers " << last;
      ExpectNoCrash("node " + std::to_string(i + 1), cluster_->node(i).Logs());
    }
  }

  std::unique_ptr<testing::NodeCluster> cluster_;
  std::vector<uint16_t> gateways_;
  testing::ChatLoadRun run_;
};

TEST_F(ClusterEnginesE2eTest, RedisKilledAndRestartedEmptyLosesNothing) {
  // Two users on the two gateways whose sockets stay open throughout.
  ApiClient api1(gateways_[0]), api2(gateways_[1]);
  testing::Account a = api1.NewAccount(testing::UniqueName("fr_a"));
  testing::Account b = api2.NewAccount(testing::UniqueName("fr_b"));
  testing::Account c = api2.NewAccount(testing::UniqueName("fr_c"));
  WsConn wa(gateways_[0]), wb(gateways_[1]), wc(gateways_[1]);
  ASSERT_TRUE(wa.Open(a.token()));
  ASSERT_TRUE(wb.Open(b.token()));
  ASSERT_TRUE(wc.Open(c.token()));
  const std::string conv = testing::PrivateConvId(a.id(), b.id());
  const std::string conv_c = testing::PrivateConvId(a.id(), c.id());
  // b's socket knows its conversation with a before the outage; c's does
  // not know its own (its first message comes during the outage).
  auto before = wa.Request(testing::TextSend(b.id(), "before", "hi"));
  ASSERT_TRUE(testing::IsSendResult(before));
  ASSERT_TRUE(wb.NextMsg(conv, kWait)) << "no live delivery before the outage";
  ASSERT_TRUE(run_.Start(gateways_, "fr", kPlan)) << "load not set up";
  ASSERT_TRUE(run_.WaitConnected(kWait));
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  run_.load.Pause(Ms(200));  // pacing: the load runs on, then Redis dies
  const auto t_kill = Clock::now();
  cluster_->redis().Kill();
  // MariaDB holds every send: they keep being acknowledged.
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "sends stopped with Redis down";
  // Acknowledged while no push can reach b and c (the bus is down).
  int64_t outage_b = 0, outage_c = 0;
  for (int i = 0; i < 2; ++i) {
    auto r = wa.Request(testing::TextSend(b.id(), "outage-b-" + std::to_string(i), "o"));
    ASSERT_TRUE(testing::IsSendResult(r)) << "a send with Redis down";
    outage_b = testing::Int(*r, "seq");
  }
  auto rc = wa.Request(testing::TextSend(c.id(), "outage-c", "o"));
  ASSERT_TRUE(testing::IsSendResult(rc)) << "a send with Redis down";
  outage_c = testing::Int(*rc, "seq");
  const double down_s = Seconds(Clock::now() - t_kill);
  ASSERT_TRUE(cluster_->redis().Restart()) << cluster_->redis().error();
  const auto t_back = Clock::now();
  // The sockets open throughout get what was sent during the outage with
  // nothing more sent to them: their gateway resyncs its sessions once its
  // inbox and routes are back (a gap), not at the next message.
  const auto arrives = [&](WsConn& to, const std::string& in, int64_t seq) {
    return testing::PollUntil(
        [&] {
          auto m = to.NextMsg(in, Ms(300));
          return m && testing::Int(testing::MsgOf(*m), "seq") >= seq;
        },
        kWait);
  };
  EXPECT_TRUE(arrives(wb, conv, outage_b))
      << "b did not get what was sent during the outage before anything else was sent";
  EXPECT_TRUE(arrives(wc, conv_c, outage_c))
      << "c did not get its first message, sent during the outage";
  const double resync_s = Seconds(Clock::now() - t_back);
  // Live delivery across the gateways resumes by itself (routes registered
  // again, the inboxes read again), on the sockets opened before.
  int probes = 0;
  const auto live = [&](WsConn& from, WsConn& to, const std::string& to_user) {
    return testing::PollUntil(
        [&] {
          auto r =
              from.Request(testing::TextSend(to_user, "probe-" + std::to_string(++probes), "p"));
          if (!testing::IsSendResult(r)) return false;
          const int64_t seq = testing::Int(*r, "seq");
          for (;;) {
            auto m = to.NextMsg(conv, Ms(300));
            if (!m) return false;
            if (testing::Int(testing::MsgOf(*m), "seq") >= seq) return true;
          }
        },
        kWait);
  };
  ASSERT_TRUE(live(wa, wb, b.id())) << "no live delivery gateway 1 -> 2 after Redis came back";
  ASSERT_TRUE(live(wb, wa, a.id())) << "no live delivery gateway 2 -> 1 after Redis came back";
  const double live_s = Seconds(Clock::now() - t_back);
  // From here every conversation's next message is delivered live and
  // opens the gap its receivers fill from the store: every sender is
  // acknowledged a few times more before Finish() stops the sends.
  auto took = WaitEverySenderAcked(run_);
  ASSERT_TRUE(took.has_value()) << "after Redis came back";
  ASSERT_TRUE(run_.WaitConnected(kWait)) << "after Redis came back";
  testing::ChatLoadSummary s = run_.Finish(gateways_[0], kWait);
  ExpectEveryNodeReadyAndSound();
  std::printf(
      "redis killed for %.1f s, restarted empty; what was sent meanwhile reached the open "
      "sockets %.2f s after it answered; live delivery across the gateways again %.2f s "
      "after it answered; %lld sends acknowledged, receivers caught up %.1f s after the "
      "read-back\n",
      down_s, resync_s, live_s, static_cast<long long>(s.totals.acked_messages),
      Seconds(s.caught_up - s.read_back));
}

TEST_F(ClusterEnginesE2eTest, MariadbKilledSendsFailUnavailableThenEverythingResumes) {
  ASSERT_TRUE(run_.Start(gateways_, "fm", kPlan)) << "load not set up";
  testing::ChatLoad& load = run_.load;
  ASSERT_TRUE(run_.WaitConnected(kWait));
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  load.Pause(Ms(200));  // pacing
  const int64_t unavailable_before = load.unavailable.load();
  const auto t_kill = Clock::now();
  testing::SharedMariaDb().Kill();
  // From here until it is started again, nothing can commit: an `ok` to a
  // send transmitted in this window and received in it is a false `ok`
  // (ChatLoad fails the test for it).
  load.BeginOutage();
  EXPECT_TRUE(
      load.WaitFor([&] { return load.unavailable.load() > unavailable_before + 20; }, kWait))
      << "sends did not fail with unavailable while MariaDB was down";
  const double down_s = Seconds(Clock::now() - t_kill);
  load.EndOutage();
  ASSERT_TRUE(testing::SharedMariaDb().Start()) << testing::SharedMariaDb().error();
  const auto t_back = Clock::now();
  auto took = WaitEverySenderAcked(run_);
  ASSERT_TRUE(took.has_value()) << "after MariaDB came back";
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  testing::ChatLoadSummary s = run_.Finish(gateways_[0], kWait);
  ExpectEveryNodeReadyAndSound();
  std::printf(
      "mariadbd killed for %.1f s: %lld sends answered unavailable, none ok; every sender "
      "acknowledged again %.2f s after it was back; %lld sends acknowledged in all\n",
      down_s, static_cast<long long>(load.unavailable.load() - unavailable_before),
      Seconds(Clock::now() - t_back), static_cast<long long>(s.totals.acked_messages));
}

}  // namespace
}  // namespace mpim
