// End to end: the edge's routes and TLS (issue 23; docs/edge.md "Routes",
// "TLS"): the real `mpim serve --role edge` with an edge.routes_file, in
// front of upstreams this test runs (real HTTP servers on loopback, each
// answering with its name: support/http_backend.h), one found through DNS
// SRV (dnsmasq), and a real gateway for WebSockets over TLS. Routing by
// host, path prefix and header; 404 when no route fits; sticky cookies;
// circuit breakers; retry budgets; the access log; the routes file reloaded
// on change and on SIGHUP under load with no failed request, a bad file
// keeping the routes in force; a bad file at start refused. GeoIP zones
// with a database the test writes. TLS and
// cleartext on one port with ALPN; the certificate reloaded under load
// without dropping a connection; a key others may read refused; stalled
// handshakes, unfinished requests and garbage over TLS.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/edge_fixture.h"
#include "net/http_client.h"
#include "net/http_test_server.h"
#include "net/io_pool.h"
#include "support/api_client.h"
#include "support/dns_server.h"
#include "support/eventually.h"
#include "support/http_backend.h"
#include "support/mmdb_writer.h"
#include "support/raw_conn.h"
#include "support/server_process.h"

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ApiResponse;
using testing::Eventually;
using testing::HttpBackend;
using testing::Loopback;
using testing::RoutesTo;
using testing::Upstream;
using testing::Who;
using Ms = std::chrono::milliseconds;

class EdgeRoutesE2eTest : public testing::EdgeFixture {};

TEST_F(EdgeRoutesE2eTest, RoutesByHostPathAndHeaderAndSaysWhenNoneFits) {
  HttpBackend a("a"), b("b"), c("c"), d("d");
  ASSERT_TRUE(StartEdge(Upstream("a", {a.address()}) + Upstream("b", {b.address()}) +
                        Upstream("c", {c.address()}) + Upstream("d", {d.address()}) + R"(
[[routes]]
name = "chat-host"
host = "*.chat.test"
upstream = "d"
[[routes]]
name = "search"
path_prefix = "/search"
upstream = "b"
[[routes]]
name = "canary"
path_prefix = "/api"
headers = { "X-Canary" = "1" }
upstream = "c"
[[routes]]
name = "api"
path_prefix = "/api"
upstream = "a"
)")) << start_error_;
  EXPECT_EQ(Who(Get("/search")), "b");
  EXPECT_EQ(Who(Get("/search/q?x=1")), "b");
  EXPECT_EQ(Who(Get("/api/v1/users/me")), "a");
  EXPECT_EQ(Who(Get("/api/v1/users/me", {{"X-Canary", "1"}})), "c");
  EXPECT_EQ(Who(Get("/api/v1/users/me", {{"X-Canary", "2"}})), "a");
  EXPECT_EQ(Who(Get("/search", {{"Host", "eu.chat.test:8080"}})), "d");
  // No route: the protocol's error, and the connection goes on.
  ApiClient api(edge_->port());
  ApiResponse none = api.Call("GET", "/searchx");
  EXPECT_EQ(none.status, 404) << none.Describe();
  EXPECT_EQ(none.ErrorCode(), "not_found");
  EXPECT_EQ(Who(api.Call("GET", "/search")), "b");
  // The edge's own endpoints are not routed.
  EXPECT_EQ(Get("/readyz").status, 200);
  EXPECT_EQ(a.hits() + b.hits() + c.hits() + d.hits(), 7);
  EXPECT_GE(api.Metric("mpim_edge_requests_total{route=\"search\",class=\"2xx\"}"), 3);
  EXPECT_EQ(api.Metric("mpim_edge_requests_total{route=\"none\",class=\"4xx\"}"), 1);
  EXPECT_EQ(api.Metric("mpim_edge_requests_total{route=\"canary\",class=\"2xx\"}"), 1);
}

TEST_F(EdgeRoutesE2eTest, AnUpstreamFromDnsSrvIsFollowed) {
  HttpBackend b("b");
  testing::DnsServer dns;
  ASSERT_TRUE(
      dns.Start({{"_http._tcp.api.test", "b.test", b.port(), 1}}, {{"b.test", "127.0.0.1"}}))
      << dns.error();
  ASSERT_TRUE(StartEdge(R"(
[upstreams.k8s]
dns_srv = "_http._tcp.api.test"
[[routes]]
upstream = "k8s"
)",
                        {"--set", "discovery.dns_servers=" + dns.Endpoint(), "--set",
                         "discovery.dns_refresh_ms=200"}))
      << start_error_;
  EXPECT_EQ(Who(Get("/x")), "b");
}

// Which backend answered a GET from the loopback address `source` (a new
// connection each time: the client's address is looked up once per
// connection).
std::string WhoFrom(uint16_t port, const std::string& source) {
  testing::RawConn c(port, source);
  if (!c.connected()) return "not connected from " + source;
  c.Send("GET /geo HTTP/1.1\r\nHost: edge.test\r\nConnection: close\r\n\r\n");
  std::string out;
  c.ReadUntilClosed(Ms(5000), &out);
  const std::string mark = R"("upstream":")";
  const size_t at = out.find(mark);
  if (at == std::string::npos) return out.substr(0, 200);
  const size_t from = at + mark.size();
  return out.substr(from, out.find('"', from) - from);
}

// GeoIP (docs/edge.md "GeoIP"): a database this test writes places
// 127.0.0.2 in Germany and 127.0.0.3 in the US; clients from there go to
// their zone's upstream, others to any; a zone whose upstream is gone
// passes its clients on; a new database is read on change.
TEST_F(EdgeRoutesE2eTest, ClientsGoToTheirZoneAndOnWhenItsUpstreamIsGone) {
  auto eu = std::make_unique<HttpBackend>("eu");
  HttpBackend us("us");
  const std::string geo = (dir_ / "geo.mmdb").string();
  testing::WriteMmdb(geo, {{.prefix = "127.0.0.2/32",
                            .country = "DE",
                            .continent = "EU",
                            .latitude = 52.5,
                            .longitude = 13.4},
                           {.prefix = "127.0.0.3/32",
                            .country = "US",
                            .continent = "NA",
                            .latitude = 40.7,
                            .longitude = -74.0}});
  ASSERT_TRUE(
      StartEdge("[upstreams.geo]\nbalancer = \"round_robin\"\n"
                "[upstreams.geo.zones.eu]\naddresses = [\"" +
                    eu->address() +
                    "\"]\ncontinents = [\"EU\"]\n"
                    "[upstreams.geo.zones.us]\naddresses = [\"" +
                    us.address() +
                    "\"]\ncountries = [\"US\"]\n"
                    "[[routes]]\nupstream = \"geo\"\n",
                {"--set", "edge.geoip_database=" + geo}))
      << start_error_;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(WhoFrom(edge_->port(), "127.0.0.2"), "eu");
    EXPECT_EQ(WhoFrom(edge_->port(), "127.0.0.3"), "us");
  }
  std::set<std::string> elsewhere;  // not in the database: round robin over both
  for (int i = 0; i < 4; ++i) elsewhere.insert(WhoFrom(edge_->port(), "127.0.0.1"));
  EXPECT_EQ(elsewhere, (std::set<std::string>{"eu", "us"}));

  // The German zone's only upstream goes away: its clients go to the US.
  eu.reset();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(WhoFrom(edge_->port(), "127.0.0.2"), "us");

  // A new database, read on change: 127.0.0.3 moves to Germany (whose zone
  // has no upstream now: so still the US), 127.0.0.4 appears in the US.
  testing::WriteMmdb(geo, {{.prefix = "127.0.0.4/32", .country = "US", .continent = "NA"}});
  ApiClient api(edge_->port());
  EXPECT_TRUE(Eventually([&] {
    return api.Metric("mpim_edge_geoip_reloads_total{result=\"ok\"}") >= 1;
  })) << "the new database was not read";
  EXPECT_EQ(WhoFrom(edge_->port(), "127.0.0.4"), "us");
  // Picks, retries included: the first request after eu went picked it,
  // failed to connect and was retried in the US.
  EXPECT_EQ(api.Metric("mpim_edge_zone_picks_total{cluster=\"geo\",zone=\"eu\"}"), 4 + 1);
  EXPECT_EQ(api.Metric("mpim_edge_zone_picks_total{cluster=\"geo\",zone=\"us\"}"), 4 + 3 + 1);
  EXPECT_GE(api.Metric("mpim_edge_zone_picks_total{cluster=\"geo\",zone=\"any\"}"), 4);
  EXPECT_GE(api.Metric("mpim_edge_geoip_lookups_total{result=\"found\"}"), 12);
}

TEST_F(EdgeRoutesE2eTest, AGeoIpDatabaseThatCannotBeReadIsAConfigurationError) {
  HttpBackend a("a");
  const std::string geo = (dir_ / "junk.mmdb").string();
  std::ofstream(geo) << "no database";
  EXPECT_FALSE(StartEdge(Upstream("a", {a.address()}) + "[[routes]]\nupstream = \"a\"\n",
                         {"--set", "edge.geoip_database=" + geo}));
  EXPECT_NE(edge_->Logs().find("configuration error"), std::string::npos) << edge_->Logs();
  EXPECT_NE(edge_->Logs().find("junk.mmdb"), std::string::npos);
  EXPECT_EQ(edge_->Wait(Ms(5000)), 2);
}

TEST_F(EdgeRoutesE2eTest, AStickyCookiePinsAClientToItsUpstreamUntilThatOneGoes) {
  std::map<std::string, std::unique_ptr<HttpBackend>> backends;
  backends["a"] = std::make_unique<HttpBackend>("a");
  backends["b"] = std::make_unique<HttpBackend>("b");
  ASSERT_TRUE(StartEdge(Upstream("pair", {backends["a"]->address(), backends["b"]->address()},
                                 "balancer = \"round_robin\"\nsticky_cookie = \"mpim_edge\"") +
                        R"(
[[routes]]
upstream = "pair"
)")) << start_error_;
  // Without the cookie, round robin; each answer sets it.
  ApiResponse first = Get("/x");
  const std::string pinned = Who(first);
  ASSERT_TRUE(backends.contains(pinned)) << pinned;
  const std::string cookie = first.Header("set-cookie");
  ASSERT_EQ(cookie.rfind("mpim_edge=", 0), 0u) << cookie;
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  const std::string value = cookie.substr(0, cookie.find(';'));  // mpim_edge=<id>
  std::set<std::string> without;
  for (int i = 0; i < 4; ++i) without.insert(Who(Get("/x")));
  EXPECT_EQ(without, (std::set<std::string>{"a", "b"}));
  // With it, always the same one, and no new cookie.
  for (int i = 0; i < 10; ++i) {
    ApiResponse r = Get("/x", {{"Cookie", "theme=dark; " + value}});
    EXPECT_EQ(Who(r), pinned);
    EXPECT_EQ(r.Header("set-cookie"), "");
  }
  // Its upstream goes: the client lands on the other and is pinned there.
  const std::string other = pinned == "a" ? "b" : "a";
  backends.erase(pinned);
  ApiResponse moved;
  ASSERT_TRUE(Eventually([&] {
    moved = Get("/x", {{"Cookie", value}});
    return Who(moved) == other;
  }));
  const std::string repinned = moved.Header("set-cookie");
  EXPECT_EQ(repinned.rfind("mpim_edge=", 0), 0u) << repinned;
  EXPECT_NE(repinned.substr(0, repinned.find(';')), value);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Who(Get("/x", {{"Cookie", repinned.substr(0, repinned.find(';'))}})), other);
  }
}

TEST_F(EdgeRoutesE2eTest, AFailingUpstreamTripsItsBreakerAndTheOtherTakesItsRequests) {
  HttpBackend a("a"), b("b");
  a.set_status(503);
  ASSERT_TRUE(StartEdge(Upstream("pair", {a.address(), b.address()}, R"(balancer = "round_robin"
retries = 0
breaker = { min_calls = 4, error_rate = 0.5, open_ms = 60000, max_open_ms = 60000 })") +
                        R"(
[[routes]]
upstream = "pair"
)")) << start_error_;
  int unavailable = 0;
  for (int i = 0; i < 12; ++i) unavailable += Get("/x").status == 503 ? 1 : 0;
  EXPECT_GE(unavailable, 1);
  const int hits_when_open = a.hits();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Who(Get("/x")), "b");
  EXPECT_EQ(a.hits(), hits_when_open) << "the open breaker let requests through";
  ApiClient api(edge_->port());
  EXPECT_EQ(api.Metric("mpim_edge_upstream_breaker_state{cluster=\"pair\",upstream=\"" +
                       a.address() + "\"}"),
            1);
  EXPECT_EQ(api.Metric("mpim_edge_upstream_breaker_state{cluster=\"pair\",upstream=\"" +
                       b.address() + "\"}"),
            0);
  // Every breaker open: 503 unavailable from the edge itself.
  b.set_status(503);
  ApiResponse r;
  ASSERT_TRUE(Eventually([&] {
    r = Get("/x");
    return r.ErrorCode() == "unavailable" && r.body.find("circuit breaker") != std::string::npos;
  }));
  EXPECT_EQ(r.status, 503);
}

TEST_F(EdgeRoutesE2eTest, RetriesStayWithinTheirBudget) {
  HttpBackend b("b");
  const uint16_t dead1 = testing::FreePort(), dead2 = testing::FreePort();
  ASSERT_TRUE(StartEdge(Upstream("stingy", {Loopback(dead1), b.address()},
                                 R"(balancer = "round_robin"
health_path = ""
retry_budget = { ratio = 0.0, min_retries_per_sec = 0.0 })") +
                        Upstream("normal", {Loopback(dead2), b.address()},
                                 "balancer = \"round_robin\"\nhealth_path = \"\"") +
                        R"(
[[routes]]
path_prefix = "/stingy"
upstream = "stingy"
[[routes]]
path_prefix = "/normal"
upstream = "normal"
)")) << start_error_;
  // One of two requests meets the dead upstream first.
  std::vector<int> stingy = {Get("/stingy").status, Get("/stingy").status};
  std::sort(stingy.begin(), stingy.end());
  EXPECT_EQ(stingy, (std::vector<int>{200, 502})) << "no budget: no retry";
  EXPECT_EQ(Get("/normal").status, 200);
  EXPECT_EQ(Get("/normal").status, 200);
  ApiClient api(edge_->port());
  EXPECT_EQ(api.Metric("mpim_edge_retries_refused_total{cluster=\"stingy\"}"), 1);
  EXPECT_EQ(api.Metric("mpim_edge_retries_total{cluster=\"normal\"}"), 1);
}

// Pooled connections to an upstream: one the upstream closed just before it
// was taken costs a retry on a fresh connection, unseen by the client (any
// method: nothing was sent yet); one that stays idle is watched, and the
// upstream closing it takes it out of the pool before anyone takes it.
TEST_F(EdgeRoutesE2eTest, AnUpstreamClosingPooledConnectionsFailsNoRequest) {
  HttpBackend a("a");
  // One io thread: each has a pool of its own.
  ASSERT_TRUE(StartEdge(
      Upstream("one", {a.address()}, "health_path = \"\"") + "[[routes]]\nupstream = \"one\"\n",
      {"--set", "server.io_threads=1"}))
      << start_error_;
  ApiClient api(edge_->port());
  const std::string retries = "mpim_edge_retries_total{cluster=\"one\"}";
  ASSERT_EQ(Who(Get("/x")), "a");
  ASSERT_TRUE(a.server().WaitForIdleConnections(1, Ms(5000)));
  EXPECT_EQ(a.server().connections_accepted(), 1);

  // Closed at once, taken at once: a fresh connection, one retry.
  a.server().CloseIdle();
  ASSERT_TRUE(a.server().WaitForOpenConnections(0, Ms(5000)));
  auto post = ApiClient(edge_->port()).Call("POST", "/x", "", R"({"n":1})");
  EXPECT_EQ(Who(post), "a");
  EXPECT_EQ(a.server().connections_accepted(), 2);
  EXPECT_EQ(api.Metric(retries), 1);

  // Idle for a while (watched after one to two seconds), then closed: gone
  // from the pool before the next request, which needs no retry.
  ASSERT_TRUE(a.server().WaitForIdleConnections(1, Ms(5000)));
  std::this_thread::sleep_for(Ms(3000));
  a.server().CloseIdle();
  ASSERT_TRUE(a.server().WaitForOpenConnections(0, Ms(5000)));
  std::this_thread::sleep_for(Ms(300));  // the edge sees the close
  EXPECT_EQ(Who(Get("/x")), "a");
  EXPECT_EQ(a.server().connections_accepted(), 3);
  EXPECT_EQ(api.Metric(retries), 1) << "no retry: the closed connection had left the pool";
}

TEST_F(EdgeRoutesE2eTest, TheAccessLogNamesRouteAndUpstreamButNeverTheQuery) {
  HttpBackend a("a");
  ASSERT_TRUE(StartEdge(Upstream("a", {a.address()}) + R"(
[[routes]]
name = "everything"
upstream = "a"
)")) << start_error_;
  EXPECT_EQ(Who(Get("/ws?token=very-secret-token")), "a");
  ASSERT_TRUE(Eventually(
      [&] { return edge_->Logs().find(R"("route":"everything")") != std::string::npos; }));
  const std::string logs = edge_->Logs();
  EXPECT_NE(logs.find(R"("path":"/ws")"), std::string::npos) << logs;
  EXPECT_NE(logs.find(R"("upstream":")" + a.address() + "\""), std::string::npos) << logs;
  EXPECT_NE(logs.find(R"("status":200)"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("very-secret-token"), std::string::npos) << "a token reached the log";
}

// Requests from `threads` clients in a loop until stopped; every answer
// that is not a backend's 200 is counted as failed.
class Load {
 public:
  Load(uint16_t port, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, port] {
        ApiClient api(port);
        while (!stop_.load()) {
          ApiResponse r = api.Call("GET", "/x");
          total_.fetch_add(1);
          const std::string who = Who(r);
          if (who != "a" && who != "b") {
            failed_.fetch_add(1);
            std::lock_guard lock(mu_);
            if (first_failure_.empty()) first_failure_ = who;
          }
        }
      });
    }
  }
  ~Load() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int total() const { return total_.load(); }
  int failed() const { return failed_.load(); }
  std::string first_failure() {
    std::lock_guard lock(mu_);
    return first_failure_;
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int> total_{0}, failed_{0};
  std::mutex mu_;
  std::string first_failure_;
  std::vector<std::thread> threads_;
};

TEST_F(EdgeRoutesE2eTest, RoutesReloadUnderLoadWithoutAFailedRequest) {
  HttpBackend a("a"), b("b");
  ASSERT_TRUE(StartEdge(RoutesTo(a))) << start_error_;
  Load load(edge_->port(), 4);
  ApiClient api(edge_->port());
  for (int round = 0; round < 3; ++round) {
    WriteRoutes(RoutesTo(b));
    ASSERT_TRUE(Eventually([&] { return Who(api.Call("GET", "/x")) == "b"; })) << round;
    WriteRoutes(RoutesTo(a));
    ASSERT_TRUE(Eventually([&] { return Who(api.Call("GET", "/x")) == "a"; })) << round;
  }
  // A broken file: logged and counted, the routes in force stay.
  WriteRoutes("[upstreams.one]\naddresses = [\"nowhere\"]\n[[routes]]\nupstream = \"one\"\n");
  ASSERT_TRUE(Eventually(
      [&] { return api.Metric("mpim_edge_route_reloads_total{result=\"error\"}") >= 1; }));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Who(api.Call("GET", "/x")), "a");
  std::this_thread::sleep_for(Ms(200));
  load.Stop();
  EXPECT_EQ(load.failed(), 0) << "first failure: " << load.first_failure();
  EXPECT_GT(load.total(), 100);
  EXPECT_GT(b.hits(), 0);
  EXPECT_GE(api.Metric("mpim_edge_route_reloads_total{result=\"ok\"}"), 6);
  EXPECT_NE(edge_->Logs().find("routes not reloaded"), std::string::npos);
}

TEST_F(EdgeRoutesE2eTest, SighupReadsTheRoutesAgain) {
  HttpBackend a("a"), b("b");
  ASSERT_TRUE(StartEdge(RoutesTo(a), {"--set", "edge.routes_reload_ms=0"})) << start_error_;
  WriteRoutes(RoutesTo(b));
  std::this_thread::sleep_for(Ms(300));
  EXPECT_EQ(Who(Get("/x")), "a") << "read again with no SIGHUP and no polling";
  edge_->Signal(SIGHUP);
  EXPECT_TRUE(Eventually([&] { return Who(Get("/x")) == "b"; }));
  EXPECT_EQ(edge_->Wait(Ms(0)), std::nullopt) << "SIGHUP stopped the edge";
}

TEST_F(EdgeRoutesE2eTest, ABadRoutesFileAtStartIsAConfigurationError) {
  EXPECT_FALSE(
      StartEdge("[upstreams.one]\nrole = \"gateway\"\nbalancer = \"best\"\n"
                "[[routes]]\nupstream = \"one\"\n"));
  EXPECT_NE(edge_->Logs().find("configuration error"), std::string::npos) << edge_->Logs();
  EXPECT_NE(edge_->Logs().find("upstreams.one.balancer: unknown balancer"), std::string::npos);
  EXPECT_EQ(edge_->Wait(Ms(5000)), 2);
}

// TLS on the edge's one port (docs/edge.md "TLS"): a self-signed
// certificate for localhost, real TLS clients (net::HttpClient, Beast's
// WebSocket over OpenSSL, `openssl s_client`).
class EdgeTlsE2eTest : public EdgeRoutesE2eTest {};

// An HTTPS client of the edge (trusting dir/ca.pem), on a pool of its own.
class HttpsClient {
 public:
  explicit HttpsClient(const std::filesystem::path& ca, int connections = 1) {
    net::HttpClientOptions o;
    o.tls_ca_file = ca.string();
    o.max_connections_per_origin = connections;
    client_ = std::move(*net::HttpClient::Make(pool_.At(0), o));
    pool_.Start();
  }
  ~HttpsClient() {
    client_->Shutdown();
    pool_.Stop();
  }
  // Status and body of GET `url`; status 0 and the error when it failed.
  std::pair<int, std::string> Get(const std::string& url) {
    std::promise<std::pair<int, std::string>> done;
    auto answer = done.get_future();
    client_->Request("GET", url, {}, {}, 10000, [&done](core::StatusOr<net::HttpClientResponse> r) {
      done.set_value(r.ok() ? std::make_pair(r->status, r->body)
                            : std::make_pair(0, std::string(r.status().message())));
    });
    return answer.get();
  }
  int64_t connections_opened() const { return client_->connections_opened(); }

 private:
  net::IoPool pool_{1};
  std::unique_ptr<net::HttpClient> client_;
};

std::string WhoBody(const std::pair<int, std::string>& r) {
  boost::system::error_code ec;
  boost::json::value json = boost::json::parse(r.second, ec);
  return Who(r.first, ec ? boost::json::value() : json, std::to_string(r.first) + " " + r.second);
}

TEST_F(EdgeTlsE2eTest, TlsAndCleartextShareThePortWithAlpn) {
  HttpBackend a("a");
  ASSERT_TRUE(StartTlsEdge(RoutesTo(a))) << start_error_;
  const std::string base = "https://localhost:" + std::to_string(edge_->port());
  HttpsClient https(dir_ / "ca.pem");
  EXPECT_EQ(WhoBody(https.Get(base + "/x")), "a");
  EXPECT_EQ(WhoBody(https.Get(base + "/x")), "a");
  EXPECT_EQ(https.connections_opened(), 1) << "keep-alive over TLS";
  EXPECT_EQ(Who(Get("/x")), "a") << "cleartext on the same port";
  // The upstream hears which the client used.
  std::vector<std::string> protos;
  for (const auto& r : a.requests()) {
    if (r.target == "/x") protos.emplace_back(r.Header("x-forwarded-proto"));
  }
  EXPECT_EQ(protos, (std::vector<std::string>{"https", "https", "http"}));
  EXPECT_NE(SClient("h2,http/1.1").find("ALPN protocol: h2"), std::string::npos);
  EXPECT_NE(SClient("http/1.1").find("ALPN protocol: http/1.1"), std::string::npos);
  EXPECT_NE(SClient("spdy/3").find("No ALPN negotiated"), std::string::npos);
  // Garbage after a ClientHello's first byte is a failed handshake, and the
  // edge goes on.
  {
    testing::RawConn raw(edge_->port());
    raw.Send(std::string("\x16\x03\x01\x00\x05garbage", 12));
    EXPECT_TRUE(raw.ReadUntilClosed(Ms(5000)));
  }
  EXPECT_EQ(WhoBody(https.Get(base + "/x")), "a");
  ApiClient api(edge_->port());
  EXPECT_GE(api.Metric("mpim_edge_tls_handshakes_total{result=\"ok\"}"), 3);
  EXPECT_GT(api.Metric("mpim_edge_tls_certificate_expiry_timestamp_seconds"),
            static_cast<double>(std::time(nullptr)));
}

namespace asio = boost::asio;
namespace beast = boost::beast;

// A TLS client that does what browsers do not: its handshake, then what
// the test sends; reads with a deadline.
class RawTls {
 public:
  explicit RawTls(uint16_t port) : ctx_(asio::ssl::context::tls_client), stream_(io_, ctx_) {
    boost::system::error_code ec;
    beast::get_lowest_layer(stream_).connect(
        asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) stream_.handshake(asio::ssl::stream_base::client, ec);  // no verification
    ok_ = !ec;
  }
  bool ok() const { return ok_; }
  void Send(const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(stream_, asio::buffer(bytes), ec);
  }
  // Reads until the edge closes (true) or `deadline` passes (false).
  bool ReadUntilClosed(Ms deadline, std::string* out) {
    bool closed = false;
    asio::async_read(stream_, asio::dynamic_buffer(*out),
                     [&](boost::system::error_code, size_t) { closed = true; });
    io_.restart();
    io_.run_for(deadline);
    return closed;
  }

 private:
  asio::io_context io_;
  asio::ssl::context ctx_;
  asio::ssl::stream<asio::ip::tcp::socket> stream_;
  bool ok_ = false;
};

// Slow and broken clients over TLS: handshakes that stall and requests
// that never finish are cut off at server.request_timeout_ms while other
// clients are served; bytes that are not HTTP after a good handshake get
// 400 over TLS.
TEST_F(EdgeTlsE2eTest, HostileClientsOverTlsAreCutOffAndOthersServed) {
  HttpBackend a("a");
  ASSERT_TRUE(StartTlsEdge(RoutesTo(a), {"--set", "server.request_timeout_ms=1000"}))
      << start_error_;
  // Ten handshakes that stop after the record header of a ClientHello.
  std::vector<std::unique_ptr<testing::RawConn>> stalled;
  for (int i = 0; i < 10; ++i) {
    stalled.push_back(std::make_unique<testing::RawConn>(edge_->port()));
    stalled.back()->Send(std::string("\x16\x03\x01\x02\x00\x01", 6));
  }
  // Ten good handshakes whose request never ends.
  std::vector<std::unique_ptr<RawTls>> slow;
  for (int i = 0; i < 10; ++i) {
    slow.push_back(std::make_unique<RawTls>(edge_->port()));
    ASSERT_TRUE(slow.back()->ok());
    slow.back()->Send("GET /x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ");
  }
  // Meanwhile others are served, over TLS and in cleartext.
  const std::string base = "https://localhost:" + std::to_string(edge_->port());
  HttpsClient https(dir_ / "ca.pem");
  EXPECT_EQ(WhoBody(https.Get(base + "/x")), "a");
  EXPECT_EQ(Who(Get("/x")), "a");
  const auto start = std::chrono::steady_clock::now();
  for (auto& c : stalled) EXPECT_TRUE(c->ReadUntilClosed(Ms(5000))) << "a stalled handshake";
  for (auto& c : slow) {
    std::string got;
    EXPECT_TRUE(c->ReadUntilClosed(Ms(5000), &got)) << "a request that never ended";
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, Ms(4500));
  // Not HTTP, after a good handshake: the protocol's 400, over TLS.
  RawTls garbage(edge_->port());
  ASSERT_TRUE(garbage.ok());
  garbage.Send("\x01\x02 this is no request\r\n\r\n");
  std::string answer;
  EXPECT_TRUE(garbage.ReadUntilClosed(Ms(5000), &answer));
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer.substr(0, 200);
  EXPECT_NE(answer.find("invalid_argument"), std::string::npos) << answer.substr(0, 400);
  EXPECT_EQ(WhoBody(https.Get(base + "/x")), "a") << "the edge goes on";
  EXPECT_EQ(a.hits(), 3);
}

TEST_F(EdgeTlsE2eTest, ACertificateReloadsUnderLoadWithoutDroppingAConnection) {
  HttpBackend a("a");
  ASSERT_TRUE(StartTlsEdge(RoutesTo(a))) << start_error_;
  const std::string url = "https://localhost:" + std::to_string(edge_->port()) + "/x";
  ASSERT_EQ(ServedFingerprint(), Fingerprint(first_.cert_pem));

  HttpsClient kept(dir_ / "ca.pem");
  ASSERT_EQ(WhoBody(kept.Get(url)), "a");
  // Load over TLS while the certificate changes; a new connection may be
  // served either, so the load trusts both.
  const testing::TestCertificate next = NewCertificate();
  std::ofstream(dir_ / "both.pem") << first_.cert_pem << next.cert_pem;
  std::atomic<bool> stop{false};
  std::atomic<int> total{0}, failed{0};
  std::thread load([&] {
    HttpsClient c(dir_ / "both.pem", 2);
    while (!stop.load()) {
      auto r = c.Get(url);
      total.fetch_add(1);
      if (WhoBody(r) != "a") failed.fetch_add(1);
    }
  });
  std::this_thread::sleep_for(Ms(300));
  Install(next);
  ApiClient api(edge_->port());
  ASSERT_TRUE(Eventually([&] { return ServedFingerprint() == Fingerprint(next.cert_pem); }))
      << "the new certificate is not served";
  EXPECT_GE(api.Metric("mpim_edge_tls_reloads_total{result=\"ok\"}"), 1);
  std::this_thread::sleep_for(Ms(300));
  stop.store(true);
  load.join();
  EXPECT_EQ(failed.load(), 0) << "of " << total.load();
  EXPECT_GT(total.load(), 10);
  // The connection opened before the reload is still up and still served.
  EXPECT_EQ(WhoBody(kept.Get(url)), "a");
  EXPECT_EQ(kept.connections_opened(), 1);
  // A key others may read is refused at reload: the pair in force stays.
  Install(NewCertificate(), std::filesystem::perms::owner_read |
                                std::filesystem::perms::owner_write |
                                std::filesystem::perms::others_read);
  ASSERT_TRUE(
      Eventually([&] { return api.Metric("mpim_edge_tls_reloads_total{result=\"error\"}") >= 1; }));
  EXPECT_EQ(ServedFingerprint(), Fingerprint(next.cert_pem));
  EXPECT_NE(edge_->Logs().find("chmod 600"), std::string::npos);
}

// A WebSocket over TLS through the edge to a real gateway (`mpim serve`):
// the tunnel carries TLS on the client side and cleartext to the gateway.
TEST_F(EdgeTlsE2eTest, AWebSocketOverTlsReachesTheGateway) {
  testing::ServerProcess gateway(testing::ServerProcess::Options{.env = testing::FastAuthEnv()});
  ASSERT_TRUE(gateway.Start()) << gateway.error();
  ASSERT_TRUE(
      StartTlsEdge(Upstream("gw", {Loopback(gateway.port())}) + "[[routes]]\nupstream = \"gw\"\n"))
      << start_error_;
  ApiClient direct(gateway.port());
  const testing::Account alice = direct.NewAccount(testing::UniqueName("tls"));
  const testing::Account bob = direct.NewAccount(testing::UniqueName("tls"));

  asio::io_context io;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  ctx.load_verify_file((dir_ / "ca.pem").string());
  beast::websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws(io, ctx);
  beast::get_lowest_layer(ws).expires_after(std::chrono::seconds(10));
  beast::get_lowest_layer(ws).connect(
      asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), edge_->port()));
  ws.next_layer().set_verify_mode(asio::ssl::verify_peer);
  ws.next_layer().set_verify_callback(asio::ssl::host_name_verification("localhost"));
  SSL_set_tlsext_host_name(ws.next_layer().native_handle(), "localhost");
  ws.next_layer().handshake(asio::ssl::stream_base::client);
  ws.handshake("localhost", "/ws?token=" + alice.token());
  beast::flat_buffer buffer;
  ws.read(buffer);
  EXPECT_NE(beast::buffers_to_string(buffer.data()).find("\"op\":\"hello\""), std::string::npos);
  buffer.clear();
  // A message bigger than a TLS record each way: sent, then read back.
  auto call = [&](const std::string& frame) {
    ws.write(asio::buffer(frame));
    for (int i = 0; i < 5; ++i) {
      buffer.clear();
      ws.read(buffer);
      boost::json::value v = boost::json::parse(beast::buffers_to_string(buffer.data()));
      if (v.at("op") == "reply") return v;
    }
    return boost::json::value();
  };
  const std::string text(60000, 'x');
  boost::json::value sent = call(R"({"op":"send","rid":1,"to":{"user":")" + bob.id() +
                                 R"("},"client_msg_id":"c1","body":{"text":")" + text + R"("}})");
  ASSERT_TRUE(sent.is_object());
  ASSERT_EQ(sent.at("ok"), true) << boost::json::serialize(sent);
  boost::json::value page = call(R"({"op":"sync","rid":2,"conv_id":)" +
                                 boost::json::serialize(sent.at("conv_id")) + R"(,"after_seq":0})");
  ASSERT_TRUE(page.is_object());
  ASSERT_EQ(page.at("messages").as_array().size(), 1u) << boost::json::serialize(page);
  EXPECT_EQ(page.at("messages").at(0).at("body").at("text").as_string(), text);
  ws.close(beast::websocket::close_code::normal);
  EXPECT_EQ(
      ApiClient(edge_->port()).Metric("mpim_edge_requests_total{route=\"route1\",class=\"1xx\"}"),
      1);
}

TEST_F(EdgeTlsE2eTest, AKeyOthersMayReadIsRefusedAtStart) {
  HttpBackend a("a");
  Install(NewCertificate(), std::filesystem::perms::owner_read |
                                std::filesystem::perms::owner_write |
                                std::filesystem::perms::group_read);
  EXPECT_FALSE(
      StartEdge(RoutesTo(a), {"--set", "edge.tls_cert_file=" + (dir_ / "cert.pem").string(),
                              "--set", "edge.tls_key_file=" + (dir_ / "key.pem").string()}));
  EXPECT_NE(edge_->Logs().find("edge.tls_key_file"), std::string::npos) << edge_->Logs();
  EXPECT_EQ(edge_->Wait(Ms(5000)), 2);
}

}  // namespace
}  // namespace mpim
