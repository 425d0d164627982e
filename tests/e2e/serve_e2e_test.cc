// End-to-end: the built `mpim` binary, started on a free port with a temp
// data dir, driven over real HTTP connections.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "client/http_client.h"
#include "support/raw_conn.h"
#include "support/server_process.h"

namespace mpim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::RawConn;
using testing::RunCommand;
using testing::ServedConnection;
using testing::ServerProcess;

TEST(ServeE2eTest, HealthReadyMetricsAndErrors) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  client::HttpClient http("127.0.0.1", server.port());

  auto health = http.Get("/healthz");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(boost::json::parse(health->body).at("status").as_string(), "ok");

  auto ready = http.Get("/readyz");
  ASSERT_TRUE(ready.ok());
  EXPECT_EQ(ready->status, 200);

  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->Header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  for (const char* name :
       {"# TYPE process_resident_memory_bytes gauge", "# TYPE process_open_fds gauge",
        "# TYPE process_cpu_seconds_total counter", "process_start_time_seconds ",
        R"(mpim_http_requests_total{method="GET",route="/healthz",code="200"} 1)",
        R"(mpim_build_info{version=")"}) {
    EXPECT_NE(metrics->body.find(name), std::string::npos) << name << "\n" << metrics->body;
  }

  auto missing = http.Get("/api/v1/no/such/thing");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  EXPECT_EQ(boost::json::parse(missing->body).at("error").at("code").as_string(), "not_found");

  auto wrong_method = http.Request("DELETE", "/healthz");
  ASSERT_TRUE(wrong_method.ok());
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_EQ(wrong_method->Header("allow"), "GET");

  // Client-chosen methods must not mint metric series.
  auto invented = http.Request("BREWCOFFEE", "/healthz");
  ASSERT_TRUE(invented.ok());
  EXPECT_EQ(invented->status, 405);
  auto after = http.Get("/metrics");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->body.find("BREWCOFFEE"), std::string::npos);
  EXPECT_NE(after->body.find(
                R"(mpim_http_requests_total{method="other",route="unmatched",code="405"} 1)"),
            std::string::npos)
      << after->body;
}

TEST(ServeE2eTest, OversizedBodyIs413AndOversizedHeadersAre431) {
  ServerProcess server({.extra_args = {"--set", "server.max_body_bytes=4096"}});
  ASSERT_TRUE(server.Start()) << server.error();
  client::HttpClient http("127.0.0.1", server.port());

  auto big = http.Post("/healthz", std::string(8192, 'x'));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->status, 413);
  auto body = boost::json::parse(big->body);
  EXPECT_EQ(body.at("error").at("code").as_string(), "payload_too_large");

  auto small = http.Post("/healthz", std::string(100, 'x'));  // fits: routed, then 405
  ASSERT_TRUE(small.ok());
  EXPECT_EQ(small->status, 405);

  auto headers = http.Request("GET", "/healthz", "", {{"X-Big", std::string(20000, 'h')}});
  ASSERT_TRUE(headers.ok());
  EXPECT_EQ(headers->status, 431);

  // The server keeps serving after both.
  auto after = http.Get("/healthz");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->status, 200);
}

TEST(ServeE2eTest, MalformedRequestIs400AndTrickledRequestTimesOut) {
  ServerProcess server({.extra_args = {"--set", "server.request_timeout_ms=300"}});
  ASSERT_TRUE(server.Start()) << server.error();

  RawConn garbage(server.port());
  ASSERT_TRUE(garbage.connected());
  garbage.Send("NOT HTTP AT ALL\r\n\r\n");
  std::string reply;
  EXPECT_TRUE(garbage.ReadUntilClosed(seconds(5), &reply));
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;

  // Headers that never finish: closed once request_timeout_ms has passed.
  RawConn slow(server.port());
  ASSERT_TRUE(slow.connected());
  slow.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
  EXPECT_TRUE(slow.ReadUntilClosed(seconds(5)));

  client::HttpClient http("127.0.0.1", server.port());
  auto ok = http.Get("/healthz");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->status, 200);
}

TEST(ServeE2eTest, ConnectionsPerAddressAreCapped) {
  ServerProcess server({.env = {{"MPIM_LIMITS_CONNECTIONS_PER_ADDRESS", "2"}}});
  ASSERT_TRUE(server.Start()) << server.error();
  auto a = ServedConnection(server.port(), seconds(5));
  auto b = ServedConnection(server.port(), seconds(5));
  ASSERT_TRUE(a && b);
  // Two are open and served: the third is closed without an answer.
  RawConn c(server.port());
  c.Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply;
  EXPECT_TRUE(c.ReadUntilClosed(seconds(5), &reply));
  EXPECT_EQ(reply, "");
  // Closing one makes room again.
  a.reset();
  EXPECT_TRUE(ServedConnection(server.port(), seconds(5)) != nullptr);
}

TEST(ServeE2eTest, SigtermDrainsAndExitsZero) {
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  // An idle keep-alive connection must not hold the drain up.
  client::HttpClient http("127.0.0.1", server.port());
  ASSERT_TRUE(http.Get("/healthz").ok());
  RawConn idle(server.port());
  ASSERT_TRUE(idle.connected());

  server.Signal(SIGTERM);
  auto code = server.Wait(seconds(8));  // well under the 10 s drain timeout
  ASSERT_TRUE(code.has_value()) << "server did not exit; logs:\n" << server.Logs();
  EXPECT_EQ(*code, 0) << server.Logs();
  EXPECT_TRUE(idle.ReadUntilClosed(seconds(1)));
  EXPECT_NE(server.Logs().find("draining"), std::string::npos);
}

TEST(ServeE2eTest, ServesTheWebClientFromWebRoot) {
  auto root = std::filesystem::temp_directory_path() / ("mpim-web-" + std::to_string(getpid()));
  std::filesystem::create_directories(root / "js");
  std::ofstream(root / "index.html") << "<!doctype html><title>mpim</title>";
  std::ofstream(root / "js" / "app.js") << "console.log(1)";
  ServerProcess server({.extra_args = {"--set", "web.root=" + root.string()}});
  ASSERT_TRUE(server.Start()) << server.error();
  client::HttpClient http("127.0.0.1", server.port());

  auto index = http.Get("/");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->Header("content-type"), "text/html; charset=utf-8");
  EXPECT_EQ(index->body, "<!doctype html><title>mpim</title>");
  EXPECT_NE(index->Header("content-security-policy"), "");
  auto js = http.Get("/js/app.js");
  ASSERT_TRUE(js.ok());
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->Header("content-type"), "text/javascript; charset=utf-8");
  // Client-side routes get the page; missing files and escapes do not.
  auto route = http.Get("/chat/p:1:2");
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->body, index->body);
  auto api_typo = http.Get("/api/v1/nope");
  ASSERT_TRUE(api_typo.ok());
  EXPECT_EQ(api_typo->status, 404);
  EXPECT_EQ(api_typo->Header("content-type"), "application/json");
  auto missing = http.Get("/nope.js");
  ASSERT_TRUE(missing.ok());
  EXPECT_EQ(missing->status, 404);
  auto escape = http.Get("/js/%2e%2e/%2e%2e/etc/passwd");
  ASSERT_TRUE(escape.ok());
  EXPECT_NE(escape->status, 200);
  // The API is not shadowed by the files.
  auto health = http.Get("/healthz");
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(health->body, R"({"status":"ok"})");
  std::filesystem::remove_all(root);
}

TEST(ServeE2eTest, BadConfigurationStopsStartupNamingTheKey) {
  int code = 0;
  std::string out =
      RunCommand(testing::MpimBinary() + " serve --set server.io_threads=abc 2>&1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("server.io_threads: expected an integer"), std::string::npos) << out;

  out = RunCommand("MPIM_SERVER_LISTN=1 " + testing::MpimBinary() + " config show 2>&1", &code);
  EXPECT_EQ(code, 2);
  EXPECT_NE(out.find("server.listn: unknown key"), std::string::npos) << out;
  // Engines are chosen by name (cluster.md section 2): an unknown one stops
  // start-up naming its key, whichever part it is.
  for (const char* key : {"store.engine", "cache.engine", "route.engine", "bus.engine"}) {
    out = RunCommand(testing::MpimBinary() + " serve --set " + key + "=nosuch 2>&1", &code);
    EXPECT_EQ(code, 2) << key;
    EXPECT_NE(out.find(key), std::string::npos) << out;
  }
  // An engine without its URL stops start-up naming the URL's key.
  for (auto [engine, url_key] : {std::pair{"store.engine=mysql", "store.mysql_url"},
                                 std::pair{"cache.engine=redis", "cache.redis_url"},
                                 std::pair{"route.engine=redis", "route.redis_url"},
                                 std::pair{"bus.engine=redis-pubsub", "bus.redis_url"},
                                 std::pair{"bus.engine=redis-streams", "bus.redis_url"}}) {
    out = RunCommand(testing::MpimBinary() + " serve --set " + engine + " 2>&1", &code);
    EXPECT_EQ(code, 2) << engine;
    EXPECT_NE(out.find(url_key), std::string::npos) << out;
  }
}

TEST(ServeE2eTest, VersionAndConfigCommands) {
  int code = 0;
  std::string out = RunCommand(testing::MpimBinary() + " version", &code);
  EXPECT_EQ(code, 0);
  EXPECT_EQ(out.rfind("mpim ", 0), 0u) << out;

  out = RunCommand(
      "MPIM_LIMITS_PAGE_MAX=77 " + testing::MpimBinary() + " config show --listen 127.0.0.1:9999",
      &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("listen = \"127.0.0.1:9999\""), std::string::npos) << out;
  EXPECT_NE(out.find("page_max = 77"), std::string::npos) << out;

  out = RunCommand(testing::MpimBinary() + " config example", &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("[limits]"), std::string::npos);

  out = RunCommand(testing::MpimBinary() + " --help", &code);
  EXPECT_EQ(code, 0);
  EXPECT_NE(out.find("serve"), std::string::npos);
}

}  // namespace
}  // namespace mpim
