// End to end: the failures of a cluster under load (issue 19; cluster.md
// "What each failure costs a client", design/cluster.md section 4: killing
// any one node loses no acknowledged message and duplicates none after
// client dedup; clients of a dead gateway reconnect to another and catch up;
// an engine that goes away fails calls with `unavailable`, never a false
// `ok`, and the node recovers by itself).
//
// Three `mpim serve` nodes on one MariaDB (SharedMariaDb) and one Redis of
// their own (support/node_cluster.h), with chat and group load spread over
// them (support/chat_load.h, ChatLoadRun::Start with the nodes' ports): six
// pairs whose two users sit on two different nodes, a group fanned out in
// the send path and one by the fan-out job, each with members on every
// node. The AckChecker (support/ack_checker.h) checks at the end that every
// acknowledged message is stored once, in order, and reached every
// receiver, in order, once after dedup.
//
//   - Node kills: three cycles, each SIGKILLs another node under load. Its
//     clients go on to the next live node (as behind a load balancer),
//     catch up there through hello + sync and resend what was unanswered;
//     sends keep being acknowledged while it is down; it restarts on its
//     data dir and its clients go home. Afterwards every node is ready and
//     delivers live to another.
//   - Redis killed and restarted empty: sends keep being acknowledged
//     (MariaDB holds them) while deliveries drop (the route table cannot
//     answer); once Redis is back, a message from a user on node 1 reaches a
//     user on node 2 live, on sockets opened before Redis died, within a
//     bound; /readyz is 200 on every node; the load's clients get what they
//     missed (gaps filled from the store, or hello + sync) and the checker
//     passes.
//
// route.node_ttl_ms is 3000. Every wait is on a
// condition with a deadline; the only sleeps are the load's pacing before a
// fault.
#include <gtest/gtest.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/chat_load.h"
#include "support/group_helpers.h"
#include "support/node_cluster.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

namespace json = boost::json;
using testing::Account;
using testing::ApiClient;
using testing::ChatLoadClient;
using testing::ChatLoadPlan;
using testing::Int;
using testing::IsSendResult;
using testing::Ms;
using testing::MsgOf;
using testing::TextSend;
using testing::WsConn;

using Clock = std::chrono::steady_clock;

constexpr int kNodes = 3;
constexpr int64_t kNodeTtlMs = 3000;  // route.node_ttl_ms
constexpr int kFanoutThreshold = 5;   // groups above this use the fan-out job
// Six pairs; a group fanned out in the send path (5 members) and one by the
// job (7), two senders each; with 3 nodes every group has members on each.
const ChatLoadPlan kPlan{.pairs = 6, .groups = {{5, 2}, {7, 2}}};
// Each node killed twice, in turn; in cycles 2 and 5 the node stays down
// until Redis no longer has it (its key expired after route.node_ttl_ms and
// the live nodes swept its routes), the others restart it at once (its new
// incarnation hides its old routes).
constexpr int kKillCycles = 6;
constexpr bool StaysDown(int cycle) { return cycle % 3 == 2; }
constexpr int64_t kMinAcksPerPhase = 200;
constexpr int64_t kMinAcksPerSenderAfterRedis = 5;
constexpr Ms kWait{30000};  // deadline of every wait on the clients
// How soon live delivery across nodes must resume once redis-server answers
// again: the nodes' Redis clients back off up to 2 s, then register their
// routes again (docs/routes.md), with room for a loaded box.
constexpr Ms kLiveWithin{10000};
constexpr Ms kReadyWithin{10000};
// How soon connected receivers must have what they missed once the sends
// stop (gap fills from the store; generous for a loaded box).
constexpr Ms kCatchUpWithin{5000};

// Lines a crashed or aborting process leaves in its log.
constexpr std::array<const char*, 8> kCrashMarks = {
    "terminate called", "Assertion", "AddressSanitizer",   "runtime error:", "Segmentation",
    "core dumped",      "FATAL",     "\"level\":\"fatal\""};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Two users, each with one socket on a node of their own, opened once and
// kept: "a message sent on node X reaches node Y live" without reconnecting.
// The test's thread only.
class LiveProbe {
 public:
  // Registers the two users and opens their sockets; a failure when any of
  // it fails.
  ::testing::AssertionResult Open(testing::NodeCluster& cluster, int from, int to,
                                  const std::string& prefix) {
    ApiClient api(cluster.port(from));
    a_ = api.NewAccount(testing::UniqueName(prefix + "a"));
    b_ = api.NewAccount(testing::UniqueName(prefix + "b"));
    conv_ = testing::PrivateConvId(a_.id(), b_.id());
    wa_ = std::make_unique<WsConn>(cluster.port(from));
    wb_ = std::make_unique<WsConn>(cluster.port(to));
    if (auto ok = wa_->Open(a_.token()); !ok) return ok << " (sender, node " << from + 1 << ")";
    if (auto ok = wb_->Open(b_.token()); !ok) return ok << " (receiver, node " << to + 1 << ")";
    from_ = from;
    to_ = to;
    return ::testing::AssertionSuccess();
  }

  // One fresh message from the sender; its seq, or nullopt (with a failure
  // recorded) when the send was not answered `ok`.
  std::optional<int64_t> Send() {
    const std::string cmid = "probe-" + std::to_string(++sends_);
    auto reply = wa_->Request(TextSend(b_.id(), cmid, cmid), Ms(5000));
    if (!IsSendResult(reply)) {
      ADD_FAILURE() << "probe send " << cmid << " on node " << from_ + 1 << ": "
                    << (reply ? json::serialize(*reply) : "no reply: " + wa_->last_error());
      return std::nullopt;
    }
    return Int(*reply, "seq");
  }

  // Sends fresh messages, one each `each`, until one reaches the receiver's
  // socket live within `each` of its send; the time from the first send to
  // that arrival, or nullopt at `deadline` (or when a send failed, or the
  // receiver's socket closed).
  std::optional<Ms> Live(Ms deadline, Ms each = Ms(1000)) {
    const auto t0 = Clock::now();
    while (Clock::now() - t0 < deadline) {
      std::optional<int64_t> seq = Send();
      if (!seq) return std::nullopt;
      const auto until = Clock::now() + each;
      while (Clock::now() < until) {
        auto m = wb_->NextMsg(conv_, std::chrono::duration_cast<Ms>(until - Clock::now()));
        if (!m) break;
        // Earlier probes may come first (live, or filling a gap): skip them.
        if (Int(MsgOf(*m), "seq") >= *seq) {
          return std::chrono::duration_cast<Ms>(Clock::now() - t0);
        }
      }
      if (wb_->closed()) {
        ADD_FAILURE() << "the probe's receiver on node " << to_ + 1
                      << " lost its socket: " << wb_->last_error();
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  WsConn& sender() { return *wa_; }
  WsConn& receiver() { return *wb_; }

 private:
  Account a_, b_;
  std::string conv_;
  std::unique_ptr<WsConn> wa_, wb_;
  int from_ = 0, to_ = 0;
  int sends_ = 0;
};

// The bus engine is the parameter (redis-pubsub, redis-streams); each test
// has a cluster of its own (it kills its parts).
class MultiNodeFaultsE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<testing::NodeCluster>(testing::NodeClusterOptions{
        .nodes = kNodes,
        .bus_engine = GetParam(),
        .node_ttl_ms = kNodeTtlMs,
        .settings = {"limits.send_per_sec=100000", "limits.send_burst=100000",
                     "groups.fanout_threshold=" + std::to_string(kFanoutThreshold),
                     "groups.fanout_batch=4"}});
    const auto t0 = Clock::now();
    ASSERT_TRUE(cluster_->Start()) << cluster_->error();
    std::printf("cluster of %d nodes up in %.1f s\n", kNodes, Seconds(Clock::now() - t0));
  }

  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && cluster_) {
      std::printf("%s", cluster_->LogTails(3000).c_str());
    }
  }

  std::vector<uint16_t> Ports() {
    std::vector<uint16_t> ports;
    for (int i = 0; i < cluster_->size(); ++i) ports.push_back(cluster_->port(i));
    return ports;
  }

  // Every node runs, answers /readyz 200 and its log shows no crash.
  void ExpectEveryNodeReady() {
    for (int i = 0; i < cluster_->size(); ++i) {
      int last = 0;
      EXPECT_EQ(cluster_->node(i).Wait(Ms(0)), std::nullopt) << "node " << i + 1 << " exited";
      EXPECT_TRUE(testing::WaitForReadyz(cluster_->port(i), 200, kReadyWithin, &last))
          << "node " << i + 1 << ": /readyz answers " << last;
      const std::string logs = cluster_->node(i).Logs();
      for (const char* mark : kCrashMarks) {
        EXPECT_EQ(logs.find(mark), std::string::npos)
            << "node " << i + 1 << ": its log has \"" << mark << "\"";
      }
    }
  }

  // Every node delivers live to the next one: a message from a fresh user
  // on node i reaches a fresh user on node i+1.
  void ExpectEveryNodeDeliversLive() {
    for (int i = 0; i < cluster_->size(); ++i) {
      const int to = (i + 1) % cluster_->size();
      LiveProbe probe;
      ASSERT_TRUE(probe.Open(*cluster_, i, to, "mfl" + std::to_string(i)));
      EXPECT_TRUE(probe.Live(Ms(5000)).has_value())
          << "node " << i + 1 << " -> node " << to + 1 << ": no live delivery";
    }
  }

  // The sum over the nodes of one /metrics series.
  double MetricSum(std::string_view series) {
    double sum = 0;
    for (int i = 0; i < cluster_->size(); ++i) sum += ApiClient(cluster_->port(i)).Metric(series);
    return sum;
  }

  void Report(const char* what, Clock::time_point started, const testing::ChatLoadSummary& s) {
    std::printf(
        "%s in %.1f s: %lld sends acknowledged (%lld ok replies; %lld resent after a reconnect, "
        "%lld of them already stored); %lld messages stored in %zu conversations; %lld receipts "
        "(%lld duplicates) for %lld receivers over %lld connections, %lld of them to a node other "
        "than the client's home; Finish: sends done after %.1f s, read back after %.1f s, "
        "receivers caught up after %.1f s\n",
        what, Seconds(Clock::now() - started), static_cast<long long>(s.totals.acked_messages),
        static_cast<long long>(s.totals.acks), static_cast<long long>(s.resent),
        static_cast<long long>(s.resends_found_stored),
        static_cast<long long>(s.totals.stored_messages), s.conversations,
        static_cast<long long>(s.totals.receipts),
        static_cast<long long>(s.totals.duplicate_receipts),
        static_cast<long long>(s.totals.receivers), static_cast<long long>(s.connections),
        static_cast<long long>(s.failovers), Seconds(s.sends_finished), Seconds(s.read_back),
        Seconds(s.caught_up));
    RecordProperty("acked_messages", std::to_string(s.totals.acked_messages));
    RecordProperty("failovers", std::to_string(s.failovers));
  }

  std::unique_ptr<testing::NodeCluster> cluster_;
  testing::ChatLoadRun run_;
};

TEST_P(MultiNodeFaultsE2eTest, EachNodeKilledInTurnUnderLoadLosesAndDuplicatesNothing) {
  const auto started = Clock::now();
  ASSERT_TRUE(run_.Start(Ports(), "mk", kPlan)) << "load not set up";
  testing::ChatLoad& load = run_.load;

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> extra_load_ms(100, 400);
  int64_t moved = 0;
  for (int cycle = 1; cycle <= kKillCycles; ++cycle) {
    const int victim = (cycle - 1) % kNodes;
    SCOPED_TRACE("cycle " + std::to_string(cycle) + ", node " + std::to_string(victim + 1));
    ASSERT_TRUE(run_.WaitConnected(kWait));
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
    // Load runs on for a moment (pacing, not a wait for an event), then the
    // node dies wherever it is.
    load.Pause(Ms(extra_load_ms(rng)));
    const uint16_t dead_port = cluster_->port(victim);
    std::map<const ChatLoadClient*, int> on_victim;  // -> its connections then
    for (const auto& c : run_.clients()) {
      if (c->connected_port() == dead_port) on_victim[c.get()] = c->connections();
    }
    ASSERT_FALSE(on_victim.empty()) << "no client on node " << victim + 1;
    const auto t_kill = Clock::now();
    cluster_->Kill(victim);

    // Its clients go on to a live node and catch up there; sends go on
    // being acknowledged while it is down.
    const auto moved_off = [&](const ChatLoadClient& c) {
      auto it = on_victim.find(&c);
      return it == on_victim.end() || (c.connections() > it->second && c.connected_port() != 0 &&
                                       c.connected_port() != dead_port);
    };
    ASSERT_TRUE(run_.WaitAll(moved_off, kWait))
        << "the clients of node " << victim + 1 << " did not reconnect to another node"
        << run_.Laggards(moved_off);
    const auto t_moved = Clock::now();
    moved += static_cast<int64_t>(on_victim.size());
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait))
        << "while node " << victim + 1 << " is down";
    if (StaysDown(cycle)) {
      // Down until Redis forgets it: its key expired, its incarnation and
      // routes swept by the live nodes.
      const std::string id = std::to_string(victim + 1);
      ASSERT_TRUE(testing::PollUntil(
          [&] {
            if (cluster_->redis().Command({"EXISTS", "mpim:node:" + id}) != "0") return false;
            const std::string nodes = cluster_->redis().Command({"SMEMBERS", "mpim:nodes"});
            return ("\n" + nodes).find("\n" + id + ":") == std::string::npos;
          },
          Ms(5 * kNodeTtlMs)))
          << "node " << victim + 1
          << " still in Redis: " << cluster_->redis().Command({"SMEMBERS", "mpim:nodes"});
      ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait))
          << "after node " << victim + 1 << " was swept";
    }

    const auto t_restart = Clock::now();
    ASSERT_TRUE(cluster_->Restart(victim)) << cluster_->error();
    const auto t_restarted = Clock::now();
    load.PublishNodes(Ports());  // its clients go home
    ASSERT_TRUE(run_.WaitConnected(kWait)) << "after node " << victim + 1 << " restarted";
    std::printf(
        "cycle %d: node %d killed; its %zu clients on other nodes %.2f s later; down %.1f s; "
        "restarted in %.1f s; every client connected again %.2f s after that\n",
        cycle, victim + 1, on_victim.size(), Seconds(t_moved - t_kill), Seconds(t_restart - t_kill),
        Seconds(t_restarted - t_restart), Seconds(Clock::now() - t_restarted));
  }
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait)) << "after the last restart";

  // Finish() also fails when a client got a message of a conversation it
  // is not in: a restarted node must never hand its new sessions what other
  // nodes' stale routes (its previous process's connections) still send it.
  // That failed in every run until connection ids stopped restarting at 1
  // and envelopes named each connection's user.
  testing::ChatLoadSummary s = run_.Finish(cluster_->port(0), kWait);
  EXPECT_GE(s.failovers, moved) << "every client of a killed node went to another node";
  ExpectEveryNodeReady();
  ExpectEveryNodeDeliversLive();
  Report("node kills: 6 kill -9 cycles", started, s);
}

TEST_P(MultiNodeFaultsE2eTest,
       RedisKilledAndRestartedEmptyUnderLoadLosesNothingAndDeliveryResumes) {
  const auto started = Clock::now();
  // Opened before Redis dies and kept to the end: node 1 -> node 2.
  LiveProbe probe;
  ASSERT_TRUE(probe.Open(*cluster_, 0, 1, "mrp"));
  ASSERT_TRUE(probe.Live(Ms(5000)).has_value()) << "no live delivery across nodes to begin with";

  ASSERT_TRUE(run_.Start(Ports(), "mr", kPlan)) << "load not set up";
  testing::ChatLoad& load = run_.load;
  ASSERT_TRUE(run_.WaitConnected(kWait));
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerPhase, kWait));
  load.Pause(Ms(200));  // pacing: the load runs on, then Redis dies

  const double route_failures = MetricSum("mpim_delivery_route_failures_total");
  const auto t_kill = Clock::now();
  cluster_->redis().Kill();
  // MariaDB still holds every send: they keep being acknowledged, the
  // probe's too, while deliveries are dropped.
  ASSERT_TRUE(run_.WaitAcks(2 * kMinAcksPerPhase, kWait)) << "sends stopped with Redis down";
  ASSERT_TRUE(probe.Send().has_value()) << "a send with Redis down";
  EXPECT_TRUE(testing::PollUntil(
      [&] { return MetricSum("mpim_delivery_route_failures_total") > route_failures; }, kWait))
      << "no delivery failed for want of the route table";
  std::string readyz_down;
  for (int i = 0; i < kNodes; ++i) {
    readyz_down += (i ? ", " : "") +
                   std::to_string(ApiClient(cluster_->port(i)).Call("GET", "/readyz").status);
  }
  const auto t_down = Clock::now() - t_kill;

  ASSERT_TRUE(cluster_->redis().Restart()) << cluster_->redis().error();
  const auto t_back = Clock::now();
  // Live delivery across nodes resumes by itself, on the same sockets.
  std::optional<Ms> live = probe.Live(kLiveWithin);
  ASSERT_TRUE(live.has_value()) << "no live delivery node 1 -> node 2 within "
                                << kLiveWithin.count() << " ms of Redis coming back";
  EXPECT_FALSE(probe.sender().closed());
  ExpectEveryNodeReady();

  // The load goes on: every sender is acknowledged a few more times, so
  // that every conversation has messages from after Redis came back, and
  // every receiver gets what it missed (gaps filled from the store, or
  // hello + sync after a reconnect) before Finish() stops the sends.
  ASSERT_TRUE(run_.WaitConnected(kWait)) << "after Redis came back";
  std::map<const ChatLoadClient*, int64_t> acked;
  for (const auto& c : run_.clients()) acked[c.get()] = c->acked();
  const auto sent_more = [&](const ChatLoadClient& c) {
    return !c.sends() || c.acked() >= acked[&c] + kMinAcksPerSenderAfterRedis;
  };
  ASSERT_TRUE(run_.WaitAll(sent_more, kWait))
      << "senders not acknowledged after Redis came back" << run_.Laggards(sent_more);
  const auto t_sent_more = Clock::now();

  // Twice the usual deadline: the check below, not the checker, is the one
  // about how long the catch-up takes.
  testing::ChatLoadSummary s = run_.Finish(cluster_->port(1), 2 * kWait);
  const auto t_finished = Clock::now();
  // Once the sends stop, the receivers (connected throughout) have every
  // message within a bound: what the server holds ahead of a gap waits
  // gateway.gap_wait_ms (250 ms), then the gap is filled from the store.
  // Held messages that alternate with missing ones (a member's own sends,
  // one sender's pushes arriving while another's were dropped) are filled
  // in one read up to the last held one; filled one gap per gap_wait_ms,
  // some 400 messages took 15-31 s here.
  EXPECT_LE(s.caught_up - s.read_back, kCatchUpWithin)
      << "receivers took " << (s.caught_up - s.read_back).count()
      << " ms to get what they missed while Redis was away";
  ExpectEveryNodeReady();
  ExpectEveryNodeDeliversLive();
  std::printf(
      "redis: killed for %.1f s (/readyz meanwhile: %s; %.0f deliveries dropped for want of "
      "routes); live delivery node 1 -> node 2 again %lld ms after redis-server answered; every "
      "sender acknowledged %lld more times %.1f s after that; the load finished and checked in "
      "%.1f s\n",
      Seconds(t_down), readyz_down.c_str(),
      MetricSum("mpim_delivery_route_failures_total") - route_failures,
      static_cast<long long>(live->count()), static_cast<long long>(kMinAcksPerSenderAfterRedis),
      Seconds(t_sent_more - t_back) - Seconds(*live), Seconds(t_finished - t_sent_more));
  Report("redis kill + empty restart", started, s);
}

INSTANTIATE_TEST_SUITE_P(Bus, MultiNodeFaultsE2eTest,
                         ::testing::Values("redis-pubsub", "redis-streams"), [](const auto& info) {
                           return info.param == "redis-pubsub" ? std::string("pubsub")
                                                               : std::string("streams");
                         });

}  // namespace
}  // namespace mpim
