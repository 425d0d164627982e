// End to end: role edge (issue 23) in front of a cluster from `mpim cluster
// up --edge 1` (two gateways), clients talking only to the edge: its own
// operational endpoints, REST and WebSocket chat through it, a user's
// connections placed on one gateway (edge.balancer ring_hash, hash key
// user), clients of a killed gateway back through the edge on the other
// one, and hostile requests answered with the protocol's errors while the
// edge goes on. The protocol suites also run through an edge
// (MPIM_E2E_TARGET=edge: tests/e2e/CMakeLists.txt).
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "support/api_client.h"
#include "support/cluster_up_process.h"
#include "support/eventually.h"
#include "support/raw_conn.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ClusterUpProcess;
using testing::Ms;
using testing::WsConn;

using testing::Eventually;

class EdgeE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new ClusterUpProcess(ClusterUpProcess::Options{
        .args = {"--edge", "1", "--logic", "1", "--set", "edge.balancer=ring_hash", "--set",
                 "edge.health_interval_ms=200"},
        .env = testing::FastAuthEnv()});
    if (!cluster_->Start()) start_error_ = cluster_->error();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(start_error_.empty()) << start_error_; }
  void TearDown() override {
    if (HasFailure()) {
      std::printf("cluster up stderr:\n%s\n", cluster_->Stderr().c_str());
      std::printf("edge log:\n%s\n", cluster_->NodeLog("edge-1", 4000).c_str());
    }
  }

  static uint16_t edge() { return cluster_->edge_ports().at(0); }
  static std::vector<uint16_t> gateways() { return cluster_->gateway_ports(); }

  // Authenticated WebSockets on each gateway now.
  static std::vector<double> SessionsPerGateway() {
    std::vector<double> out;
    for (uint16_t port : gateways()) out.push_back(ApiClient(port).Metric("mpim_ws_sessions"));
    return out;
  }

  static ClusterUpProcess* cluster_;
  static std::string start_error_;
};

ClusterUpProcess* EdgeE2eTest::cluster_ = nullptr;
std::string EdgeE2eTest::start_error_;

TEST_F(EdgeE2eTest, AnswersItsOwnOperationalEndpoints) {
  ASSERT_EQ(cluster_->edge_ports().size(), 1u);
  ApiClient api(edge());
  EXPECT_EQ(api.Call("GET", "/healthz").status, 200);
  EXPECT_EQ(api.Call("GET", "/readyz").status, 200);
  for (uint16_t port : gateways()) {
    const std::string series =
        "mpim_edge_upstream_healthy{cluster=\"gateways\",upstream=\"127.0.0.1:" +
        std::to_string(port) + "\"}";
    // Checked every 200 ms; a gateway still starting when the edge began
    // passes on a later check.
    EXPECT_TRUE(Eventually([&] { return api.Metric(series) == 1; })) << series;
  }
  // Gateways have no mpim_edge_ series: the edge's /metrics is its own.
  EXPECT_EQ(ApiClient(gateways().at(0))
                .Metric("mpim_edge_requests_total{route=\"default\",class=\"2xx\"}"),
            0);
}

TEST_F(EdgeE2eTest, RestAndChatThroughTheEdge) {
  ApiClient api(edge());
  auto a = api.NewAccount(testing::UniqueName("edge_a"));
  auto b = api.NewAccount(testing::UniqueName("edge_b"));
  ASSERT_FALSE(a.token().empty());
  ASSERT_FALSE(b.token().empty());
  auto me = api.Get("/users/me", a.token());
  EXPECT_EQ(me.status, 200) << me.body;
  auto bad = api.Get("/users/me", "not-a-token");
  EXPECT_EQ(bad.status, 401) << bad.body;
  EXPECT_NE(bad.body.find("\"unauthenticated\""), std::string::npos) << bad.body;

  WsConn wa(edge()), wb(edge());
  ASSERT_TRUE(wa.Open(a.token(), testing::WsAuth::kHeader));
  ASSERT_TRUE(wb.Open(b.token(), testing::WsAuth::kQuery));
  const std::string conv = testing::PrivateConvId(a.id(), b.id());
  for (int i = 1; i <= 20; ++i) {
    auto reply = wa.Request(testing::TextSend(b.id(), "e" + std::to_string(i),
                                              "through the edge " + std::to_string(i)));
    ASSERT_TRUE(reply && testing::Int(*reply, "seq") == i) << wa.last_error();
  }
  for (int i = 1; i <= 20; ++i) {
    auto m = wb.NextMsg(conv);
    ASSERT_TRUE(m) << wb.last_error();
    EXPECT_EQ(testing::Int(testing::MsgOf(*m), "seq"), i);
  }
  // A large body both ways (history of long messages) passes whole.
  const std::string big(60000, 'x');
  auto reply = wa.Request(testing::TextSend(b.id(), "big", big));
  ASSERT_TRUE(reply) << wa.last_error();
  auto m = wb.NextMsg(conv);
  ASSERT_TRUE(m) << wb.last_error();
  EXPECT_EQ(testing::Str(*testing::Obj(testing::MsgOf(*m), "body"), "text"), big);
  EXPECT_GT(api.Metric("mpim_edge_connections{kind=\"tunnel\"}"), 1);
  EXPECT_GT(api.Metric("mpim_edge_requests_total{route=\"default\",class=\"2xx\"}"), 0);
}

TEST_F(EdgeE2eTest, AUsersConnectionsLandOnOneGateway) {
  ApiClient api(edge());
  // Users until each gateway got at least one (ring_hash over two).
  std::vector<std::unique_ptr<WsConn>> conns;
  bool seen[2] = {false, false};
  bool both = false;
  for (int u = 0; u < 24 && !both; ++u) {
    auto account = api.NewAccount(testing::UniqueName("sticky"));
    const std::vector<double> before = SessionsPerGateway();
    for (int k = 0; k < 3; ++k) {
      conns.push_back(std::make_unique<WsConn>(edge()));
      ASSERT_TRUE(conns.back()->Open(
          account.token(), k % 2 == 0 ? testing::WsAuth::kHeader : testing::WsAuth::kQuery));
    }
    std::vector<double> after;
    ASSERT_TRUE(Eventually([&] {
      after = SessionsPerGateway();
      return after[0] + after[1] == before[0] + before[1] + 3;
    }));
    const double on0 = after[0] - before[0];
    EXPECT_TRUE(on0 == 0 || on0 == 3) << "a user's 3 connections split " << on0 << "/" << (3 - on0);
    seen[on0 == 3 ? 0 : 1] = true;
    both = seen[0] && seen[1];
  }
  EXPECT_TRUE(both) << "24 users all on one gateway";
}

TEST_F(EdgeE2eTest, HostileRequestsGetTheProtocolsErrorsAndTheEdgeGoesOn) {
  {
    testing::RawConn raw(edge());
    ASSERT_TRUE(raw.connected());
    raw.Send("NOT HTTP AT ALL\r\n\r\n");
    std::string out;
    raw.ReadUntilClosed(Ms(5000), &out);
    EXPECT_NE(out.find("HTTP/1.1 400"), std::string::npos) << out;
    EXPECT_NE(out.find("\"invalid_argument\""), std::string::npos) << out;
  }
  {
    testing::RawConn raw(edge());
    raw.Send("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(40000, 'a') +
             "\r\n\r\n");
    std::string out;
    raw.ReadUntilClosed(Ms(5000), &out);
    EXPECT_NE(out.find("HTTP/1.1 431"), std::string::npos) << out.substr(0, 200);
  }
  {
    testing::RawConn raw(edge());
    raw.Send("POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n");
    std::string out;
    raw.ReadUntilClosed(Ms(5000), &out);
    EXPECT_NE(out.find("HTTP/1.1 413"), std::string::npos) << out.substr(0, 200);
  }
  {
    // Hop-by-hop headers stay at the edge; the request still works.
    ApiClient api(edge());
    auto r = api.Call("GET", "/healthz", "", "",
                      {{"Connection", "keep-alive, X-Secret"}, {"X-Secret", "1"}});
    EXPECT_EQ(r.status, 200);
  }
  EXPECT_EQ(ApiClient(edge()).Call("GET", "/readyz").status, 200);
}

// Last: it kills a gateway (and restarts it).
TEST_F(EdgeE2eTest, ClientsOfAKilledGatewayComeBackThroughTheEdge) {
  ApiClient api(edge());
  auto a = api.NewAccount(testing::UniqueName("kill_a"));
  auto b = api.NewAccount(testing::UniqueName("kill_b"));
  const std::string conv = testing::PrivateConvId(a.id(), b.id());
  // Which gateway holds A's connection: the one whose session count rose.
  const std::vector<double> before = SessionsPerGateway();
  auto wa = std::make_unique<WsConn>(edge());
  ASSERT_TRUE(wa->Open(a.token()));
  int holder = -1;
  ASSERT_TRUE(Eventually([&] {
    const std::vector<double> now = SessionsPerGateway();
    for (int i = 0; i < 2; ++i) {
      if (now[i] == before[i] + 1 && now[1 - i] == before[1 - i]) holder = i;
    }
    return holder >= 0;
  }));
  auto wb = std::make_unique<WsConn>(edge());
  ASSERT_TRUE(wb->Open(b.token()));
  ASSERT_TRUE(wa->Request(testing::TextSend(b.id(), "k1", "before")));
  ASSERT_TRUE(wb->NextMsg(conv));
  std::string victim;
  for (auto* n : cluster_->NodesOf("gateway")) {
    if (n->port == gateways().at(holder)) victim = n->name;
  }
  ASSERT_FALSE(victim.empty());
  const auto killed_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(cluster_->Kill(victim));

  // Every client of the killed gateway sees its connection end; all
  // reconnect through the edge, and chat goes on.
  for (auto* conn : {&wa, &wb}) {
    // A connection on the survivor stays open: probe it with a request.
    auto probe = (*conn)->Request(testing::TextSend(conn == &wa ? b.id() : a.id(),
                                                    "probe" + std::to_string(conn == &wa), "probe"),
                                  Ms(3000));
    if (probe) continue;
    *conn = std::make_unique<WsConn>(edge());
    ASSERT_TRUE((*conn)->Open(conn == &wa ? a.token() : b.token())) << (*conn)->last_error();
  }
  const double back_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  std::printf("clients of the killed gateway back through the edge after %.2f s\n", back_s);
  auto reply = wa->Request(testing::TextSend(b.id(), "k2", "after"));
  ASSERT_TRUE(reply) << wa->last_error();
  bool got = false;
  for (int i = 0; i < 3 && !got; ++i) {
    auto m = wb->NextMsg(conv);
    if (!m) break;
    got = testing::Str(testing::MsgOf(*m), "client_msg_id") == "k2";
  }
  EXPECT_TRUE(got);
  EXPECT_EQ(api.Call("GET", "/readyz").status, 200);  // one gateway left is enough
  EXPECT_TRUE(cluster_->Restart(victim)) << cluster_->error();
  // The restarted gateway passes its health check and gets clients again.
  const std::string series =
      "mpim_edge_upstream_healthy{cluster=\"gateways\",upstream=\"127.0.0.1:" +
      std::to_string(cluster_->node(victim).port) + "\"}";
  EXPECT_TRUE(Eventually([&] { return api.Metric(series) == 1; }, Ms(20000))) << series;
}

// An edge with static discovery in front of one `mpim serve`, with small
// per-address limits: connections over the cap are closed at accept,
// requests over the rate get 429 rate_limited, other addresses go on.
TEST(EdgeLimitsE2eTest, PerAddressConnectionsAndRequestRate) {
  testing::ServerProcess gateway(testing::ServerProcess::Options{.env = testing::FastAuthEnv()});
  ASSERT_TRUE(gateway.Start()) << gateway.error();
  testing::ServerProcess edge(testing::ServerProcess::Options{
      .extra_args = {"--set", "server.role=edge", "--set",
                     "discovery.static_nodes=gateway=127.0.0.1:" + std::to_string(gateway.port()),
                     "--set", "limits.connections_per_address=3", "--set",
                     "limits.requests_per_sec_address=1", "--set",
                     "limits.requests_burst_address=4"}});
  ASSERT_TRUE(edge.Start()) << edge.error();  // its /readyz from 127.0.0.1
  const uint16_t port = edge.port();

  // Three connections from 127.0.0.2 stay open; the fourth is closed at once.
  std::vector<std::unique_ptr<testing::RawConn>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<testing::RawConn>(port, "127.0.0.2"));
    ASSERT_TRUE(open.back()->connected());
  }
  {
    testing::RawConn fourth(port, "127.0.0.2");
    std::string out;
    EXPECT_TRUE(fourth.ReadUntilClosed(Ms(5000), &out)) << "the 4th connection stayed open";
    EXPECT_TRUE(out.empty()) << out;
  }
  // Another address is not counted with them; and once one closes there is room.
  EXPECT_EQ(ApiClient(port).Call("GET", "/healthz").status, 200);
  open.pop_back();
  EXPECT_TRUE(Eventually([&] {
    testing::RawConn again(port, "127.0.0.2");
    again.Send("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string out;
    again.ReadUntilClosed(Ms(2000), &out);
    return out.rfind("HTTP/1.1 200", 0) == 0;
  }));

  // From 127.0.0.3: the burst of 4, then (at 1 per second) a 429.
  std::string refused;
  for (int i = 0; i < 12 && refused.empty(); ++i) {
    testing::RawConn c(port, "127.0.0.3");
    c.Send("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    std::string out;
    c.ReadUntilClosed(Ms(5000), &out);
    if (out.rfind("HTTP/1.1 429", 0) == 0) refused = out;
  }
  ASSERT_FALSE(refused.empty()) << "never rate limited";
  EXPECT_NE(refused.find("Retry-After: "), std::string::npos) << refused;
  EXPECT_NE(refused.find("\"rate_limited\""), std::string::npos) << refused;
  // The gateway behind it still serves everyone else through the edge.
  EXPECT_EQ(ApiClient(port).Get("/users/me").status, 401);
}

}  // namespace
}  // namespace mpim
