// End-to-end: the listener's and the gateway's caps (docs/configuration.md
// server.max_pending_requests, gateway.max_unauthenticated,
// limits.requests_per_sec_address / requests_burst_address;
// docs/protocol.md section 3 "Limits on connecting"), each set small with --set. The per-address
// connection cap is in serve_e2e_test.cc, per-user sends in
// ws_messaging_e2e_test.cc. Each test runs its own server: `mpim serve`, or
// with MPIM_E2E_TARGET=cluster a `mpim cluster up` whose every node has the
// setting (the caps are each gateway's; the test talks to the first).
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "client/http_client.h"
#include "support/api_client.h"
#include "support/raw_conn.h"
#include "support/restart_target.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::IsErrorReply;
using testing::Ms;
using testing::RawConn;
using testing::RestartTarget;
using testing::WsAuth;
using testing::WsConn;

namespace json = boost::json;

// GET /metrics from a fresh connection.
std::string Metrics(uint16_t port) {
  client::HttpClient http("127.0.0.1", port);
  auto r = http.Get("/metrics");
  return r.ok() ? r->body : "";
}

// A socket without a token is open and waiting for its auth frame: a ping
// gets `unauthenticated` (not a close).
::testing::AssertionResult WaitsForAuth(WsConn& ws) {
  auto r = ws.Request(json::object{{"op", "ping"}});
  if (!IsErrorReply(r, "unauthenticated")) {
    return ::testing::AssertionFailure() << "not waiting for auth: " << ws.last_error();
  }
  return ::testing::AssertionSuccess();
}

TEST(LimitsE2eTest, SocketsWaitingForAuthAreCappedServerWide) {
  RestartTarget server(testing::WsEnv({}), {"gateway.max_unauthenticated=2"});
  ASSERT_TRUE(server.Start()) << server.error();
  testing::ApiClient api(server.port());
  testing::Account a = api.NewAccount(testing::UniqueName("cap"));

  WsConn w1(server.port());
  auto w2 = std::make_unique<WsConn>(server.port());
  ASSERT_TRUE(w1.Connect().ok()) << w1.last_error();
  ASSERT_TRUE(w2->Connect().ok()) << w2->last_error();
  ASSERT_TRUE(WaitsForAuth(w1));
  ASSERT_TRUE(WaitsForAuth(*w2));
  // A third: the handshake completes, then 1013 (try again later).
  WsConn over(server.port());
  ASSERT_TRUE(over.Connect().ok()) << over.last_error();
  EXPECT_EQ(over.CloseCode(), 1013) << over.last_error();
  // A token on the upgrade takes no slot.
  WsConn with_token(server.port());
  ASSERT_TRUE(with_token.Open(a.token(), WsAuth::kQuery));
  EXPECT_TRUE(testing::Pings(with_token));
  // Authenticating gives the slot back.
  ASSERT_TRUE(testing::IsOkReply(w1.Request(json::object{{"op", "auth"}, {"token", a.token()}})));
  WsConn w3(server.port());
  ASSERT_TRUE(w3.Connect().ok()) << w3.last_error();
  EXPECT_TRUE(WaitsForAuth(w3));
  // So does closing: once the server has seen w2 go, a new one fits.
  w2.reset();
  bool admitted = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       !admitted && std::chrono::steady_clock::now() < until;) {
    WsConn next(server.port());
    ASSERT_TRUE(next.Connect().ok()) << next.last_error();
    admitted = WaitsForAuth(next);
  }
  EXPECT_TRUE(admitted);
  EXPECT_NE(Metrics(server.port()).find(R"(mpim_ws_closes_total{code="1013"})"), std::string::npos);
}

TEST(LimitsE2eTest, RequestsWhoseHeadersAreStillArrivingAreCappedAtAccept) {
  RestartTarget server({}, {"server.max_pending_requests=2"});
  ASSERT_TRUE(server.Start()) << server.error();
  // One connection halfway through its headers, one that said nothing.
  RawConn half(server.port()), silent(server.port());
  ASSERT_TRUE(half.connected() && silent.connected());
  half.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  // A third is closed without an answer.
  RawConn over(server.port());
  over.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply;
  EXPECT_TRUE(over.ReadUntilClosed(Ms(5000), &reply));
  EXPECT_EQ(reply, "");
  // Finishing the headers frees the place.
  half.Send("\r\n");
  EXPECT_TRUE(half.ReadUntil("{\"status\":\"ok\"}", Ms(5000)));
  auto served = testing::ServedConnection(server.port(), Ms(5000));
  ASSERT_TRUE(served);
  EXPECT_NE(Metrics(server.port())
                .find(R"(mpim_http_connections_refused_total{reason="pending_requests"} 1)"),
            std::string::npos);
}

// One request on a connection of its own from `source`; the whole response.
std::string RequestFrom(uint16_t port, const std::string& source, const std::string& request) {
  RawConn conn(port, source);
  if (!conn.connected()) return "";
  conn.Send(request);
  std::string response;
  conn.ReadUntilClosed(Ms(5000), &response);
  return response;
}

std::string Get(const std::string& path) {
  return "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

TEST(LimitsE2eTest, RequestsPerAddressAreRateLimitedWith429AndRetryAfter) {
  RestartTarget server({},
                       {"limits.requests_per_sec_address=1", "limits.requests_burst_address=3"});
  ASSERT_TRUE(server.Start()) << server.error();
  // From addresses of their own (Start() polled /readyz from 127.0.0.1).
  const std::string limited = "127.0.0.2";
  const uint16_t port = server.port();
  for (int i = 0; i < 3; ++i) {  // the burst
    std::string r = RequestFrom(port, limited, Get("/healthz"));
    ASSERT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << i << ": " << r;
  }
  // At one request a second, one of the next ones is refused (any that
  // finds a token again only uses it up).
  std::string refused;
  for (int i = 0; i < 20 && refused.empty(); ++i) {
    std::string r = RequestFrom(port, limited, Get("/healthz"));
    if (r.rfind("HTTP/1.1 429", 0) == 0) refused = r;
  }
  ASSERT_FALSE(refused.empty());
  EXPECT_NE(refused.find("\r\nRetry-After: "), std::string::npos) << refused;
  auto body = json::parse(refused.substr(refused.find("\r\n\r\n") + 4));
  const json::object& error = body.at("error").as_object();
  EXPECT_EQ(error.at("code").as_string(), "rate_limited");
  EXPECT_GT(error.at("retry_after_ms").to_number<int64_t>(), 0);
  // WebSocket upgrades count too.
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  bool upgrade_refused = false;
  for (int i = 0; i < 20 && !upgrade_refused; ++i) {
    upgrade_refused = RequestFrom(port, limited, upgrade).rfind("HTTP/1.1 429", 0) == 0;
  }
  EXPECT_TRUE(upgrade_refused);
  // Another address has a bucket of its own.
  std::string other = RequestFrom(port, "127.0.0.3", Get("/healthz"));
  EXPECT_EQ(other.rfind("HTTP/1.1 200", 0), 0u) << other;
  // A refused request takes no token: after the wait, the address is served.
  bool served = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
       !served && std::chrono::steady_clock::now() < until;) {
    served = RequestFrom(port, limited, Get("/healthz")).rfind("HTTP/1.1 200", 0) == 0;
    if (!served) std::this_thread::sleep_for(Ms(200));  // poll interval, not a sync
  }
  EXPECT_TRUE(served);
}

// Behind a proxy (server.trusted_proxies), a request counts against the
// client that X-Forwarded-For names, not against the proxy.
TEST(LimitsE2eTest, RequestsFromATrustedProxyCountAgainstTheForwardedClient) {
  RestartTarget server({}, {"limits.requests_per_sec_address=1", "limits.requests_burst_address=3",
                            "server.trusted_proxies=127.0.0.4"});
  ASSERT_TRUE(server.Start()) << server.error();
  const uint16_t port = server.port();
  auto from = [](const std::string& forwarded_for) {
    return "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: " + forwarded_for +
           "\r\nConnection: close\r\n\r\n";
  };
  std::string refused;
  for (int i = 0; i < 20 && refused.empty(); ++i) {
    std::string r = RequestFrom(port, "127.0.0.4", from("198.51.100.1"));
    if (r.rfind("HTTP/1.1 429", 0) == 0) refused = r;
  }
  ASSERT_FALSE(refused.empty()) << "the forwarded client was never limited";
  // Another client through the same proxy has its own bucket.
  std::string other = RequestFrom(port, "127.0.0.4", from("198.51.100.2"));
  EXPECT_EQ(other.rfind("HTTP/1.1 200", 0), 0u) << other;
  // Entries left of the last untrusted one may be forged: the limited
  // client cannot hide behind one.
  std::string forged = RequestFrom(port, "127.0.0.4", from("198.51.100.9, 198.51.100.1"));
  EXPECT_EQ(forged.rfind("HTTP/1.1 429", 0), 0u) << forged;
  // An untrusted peer's X-Forwarded-For is ignored: it counts as itself.
  for (int i = 0; i < 3; ++i) {
    std::string r = RequestFrom(port, "127.0.0.5", from("198.51.100.1"));
    EXPECT_EQ(r.rfind("HTTP/1.1 200", 0), 0u) << i << ": " << r;
  }
}

}  // namespace
}  // namespace mpim
