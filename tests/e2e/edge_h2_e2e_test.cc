// End to end: HTTP/2 and gRPC through the edge (issue 23; docs/edge.md
// "HTTP/2 and gRPC"): the real `mpim serve --role edge` with clients
// speaking HTTP/2 in cleartext with prior knowledge and over TLS with ALPN
// h2 (nghttp2, the project's own HTTP/2 client), to HTTP/1.1 upstreams
// (real HTTP servers, support/http_backend.h) and to real gRPC servers
// (tests/rpc/echo_server.h, gRPC C++ with its health service) called by
// real gRPC clients: unary calls, statuses and messages in trailers, a
// bidirectional stream of large messages (flow control end to end),
// deadlines, health checks taking a NOT_SERVING upstream out, a stopped one
// routed around; and hostile HTTP/2 clients.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e/edge_fixture.h"
#include "net/http_test_server.h"
#include "rpc/echo_server.h"
#include "service/push/h2_client.h"
#include "support/eventually.h"
#include "support/h2_test_server.h"
#include "support/metrics_text.h"
#include "support/raw_conn.h"
#include "testing/echo.grpc.pb.h"

namespace mpim {
namespace {

using service::push::H2Client;
using service::push::H2Request;
using service::push::H2Response;
using testing::EchoServer;
using testing::Eventually;
using testing::HttpBackend;
using testing::Loopback;
using testing::RoutesTo;
using testing::Upstream;

// An HTTP/2 client (one connection, many streams) on an io thread of its own.
class H2Caller {
 public:
  explicit H2Caller(const std::string& url, const std::string& ca_file = "") {
    auto client = H2Client::Make({.url = url, .tls_ca_file = ca_file, .timeout_ms = 10000}, io_);
    EXPECT_TRUE(client.ok()) << client.status();
    if (client.ok()) client_ = std::move(*client);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~H2Caller() {
    client_.reset();  // off the io thread, with it running
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::future<H2Response> Start(H2Request r) {
    auto done = std::make_shared<std::promise<H2Response>>();
    auto f = done->get_future();
    client_->Submit(std::move(r), [done](H2Response resp) { done->set_value(std::move(resp)); });
    return f;
  }
  H2Response Call(H2Request r) { return Start(std::move(r)).get(); }
  H2Response Get(const std::string& path) { return Call({.method = "GET", .path = path}); }

 private:
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::unique_ptr<H2Client> client_;
  std::thread thread_;
};

std::string Body(const H2Response& r) { return r.body; }
std::string Code(const H2Response& r) {
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("error")) return "(no error body)";
  return std::string(v.at("error").at("code").as_string());
}
std::string WhoAnswered(const H2Response& r) {
  if (r.status != 200) return std::to_string(r.status) + " " + r.error + " " + r.body;
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object() || !v.as_object().contains("upstream")) return r.body;
  return std::string(v.at("upstream").as_string());
}

class EdgeH2E2eTest : public testing::EdgeFixture {
 protected:
  std::string H2cUrl() const { return "http://127.0.0.1:" + std::to_string(edge_->port()); }

  // Routes /mpim.testing.Echo/ to `servers` over HTTP/2 (gRPC), round robin.
  static std::string EchoRoutes(const std::vector<const EchoServer*>& servers) {
    std::vector<std::string> addresses;
    for (const EchoServer* s : servers) addresses.push_back(s->address());
    return Upstream("echo", addresses, "protocol = \"h2\"\nbalancer = \"round_robin\"\n") +
           "[[routes]]\nname = \"grpc\"\npath_prefix = \"/mpim.testing.Echo/\"\n"
           "upstream = \"echo\"\n";
  }

  std::unique_ptr<testing::Echo::Stub> EchoStub() {
    return testing::Echo::NewStub(
        grpc::CreateChannel(Loopback(edge_->port()), grpc::InsecureChannelCredentials()));
  }

  static grpc::Status Echo(testing::Echo::Stub& stub, const std::string& payload,
                           testing::EchoReply* reply, int64_t deadline_ms = 5000) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(deadline_ms));
    testing::EchoRequest req;
    req.set_payload(payload);
    return stub.Echo(&ctx, req, reply);
  }

  // Which servers answered `n` calls in a row (a failed call: "fail").
  static std::multiset<std::string> Answering(testing::Echo::Stub& stub, int n) {
    std::multiset<std::string> who;
    for (int i = 0; i < n; ++i) {
      testing::EchoReply reply;
      grpc::Status s = Echo(stub, "hi", &reply);
      who.insert(s.ok() ? reply.server() : "fail");
    }
    return who;
  }
};

TEST_F(EdgeH2E2eTest, PriorKnowledgeStreamsGoToHttp11UpstreamsAtOnce) {
  HttpBackend a("a");
  ASSERT_TRUE(StartEdge(Upstream("one", {a.address()}) +
                            "[[routes]]\nname = \"api\"\npath_prefix = \"/api\"\n"
                            "upstream = \"one\"\n",
                        {"--set", "server.max_body_bytes=4096"}))
      << start_error_;
  H2Caller h2(H2cUrl());
  // Many streams at once on the one connection, each its own exchange.
  std::vector<std::future<H2Response>> calls;
  for (int i = 0; i < 40; ++i) {
    calls.push_back(h2.Start({.method = "GET", .path = "/api/x?i=" + std::to_string(i)}));
  }
  for (auto& f : calls) EXPECT_EQ(WhoAnswered(f.get()), "a");

  H2Response posted = h2.Call({.method = "POST",
                               .path = "/api/post",
                               .headers = {{"content-type", "text/plain"}, {"x-trace", "t1"}},
                               .body = "hello over h2"});
  EXPECT_EQ(WhoAnswered(posted), "a");
  bool seen = false;
  for (const auto& r : a.requests()) {
    if (r.target != "/api/post") continue;
    seen = true;
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.body, "hello over h2");
    EXPECT_EQ(r.Header("content-type"), "text/plain");
    EXPECT_EQ(r.Header("x-trace"), "t1");
    EXPECT_EQ(r.Header("x-forwarded-proto"), "http");
    EXPECT_EQ(r.Header("x-forwarded-for"), "127.0.0.1");
    EXPECT_EQ(r.Header("host"), "127.0.0.1:" + std::to_string(edge_->port()));
  }
  EXPECT_TRUE(seen);

  // The edge's own answers and refusals, as over HTTP/1.1.
  EXPECT_EQ(h2.Get("/readyz").status, 200);
  H2Response none = h2.Get("/elsewhere");
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(Code(none), "not_found");
  H2Response big = h2.Call({.method = "POST", .path = "/api/big", .body = std::string(5000, 'x')});
  EXPECT_EQ(big.status, 413) << Body(big);
  EXPECT_EQ(Code(big), "payload_too_large");
  // The connection goes on after a refusal.
  EXPECT_EQ(WhoAnswered(h2.Get("/api/after")), "a");

  const std::string metrics = Get("/metrics").body;
  EXPECT_NE(metrics.find("mpim_edge_connections{kind=\"h2c\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("mpim_edge_requests_total{route=\"api\",class=\"2xx\"} 42"),
            std::string::npos);
}

TEST_F(EdgeH2E2eTest, TlsOffersH2ByAlpnAndItsStreamsAreServed) {
  HttpBackend a("a");
  ASSERT_TRUE(StartTlsEdge(RoutesTo(a))) << start_error_;
  EXPECT_NE(SClient("h2").find("ALPN protocol: h2"), std::string::npos);
  H2Caller h2("https://localhost:" + std::to_string(edge_->port()), (dir_ / "ca.pem").string());
  std::vector<std::future<H2Response>> calls;
  for (int i = 0; i < 10; ++i) calls.push_back(h2.Start({.method = "GET", .path = "/tls"}));
  for (auto& f : calls) EXPECT_EQ(WhoAnswered(f.get()), "a");
  for (const auto& r : a.requests()) {
    if (r.target == "/tls") {
      EXPECT_EQ(r.Header("x-forwarded-proto"), "https");
    }
  }
  const std::string metrics = Get("/metrics").body;
  EXPECT_NE(metrics.find("mpim_edge_connections{kind=\"h2\"} 1"), std::string::npos);
}

TEST_F(EdgeH2E2eTest, GrpcCallsStatusesAndStreamsGoThroughTheEdge) {
  EchoServer e1("e1"), e2("e2");
  ASSERT_TRUE(StartEdge(EchoRoutes({&e1, &e2}))) << start_error_;
  auto stub = EchoStub();

  // Unary calls, balanced over both.
  EXPECT_EQ(Answering(*stub, 20), (std::multiset<std::string>{
                                      "e1", "e1", "e1", "e1", "e1", "e1", "e1", "e1", "e1", "e1",
                                      "e2", "e2", "e2", "e2", "e2", "e2", "e2", "e2", "e2", "e2"}));

  // A status and its message travel in the trailers.
  e1.Fail(grpc::StatusCode::NOT_FOUND);
  e2.Fail(grpc::StatusCode::NOT_FOUND);
  testing::EchoReply reply;
  grpc::Status failed = Echo(*stub, "x", &reply);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(failed.error_message().find("injected by EchoServer"), std::string::npos)
      << failed.error_message();
  e1.Answer();
  e2.Answer();

  // A bidirectional stream of messages far larger than the windows (64
  // KiB a stream): each echoed in order, whole.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    auto stream = stub->Chat(&ctx);
    std::string server;
    for (int i = 0; i < 24; ++i) {
      testing::EchoRequest req;
      req.set_payload(std::string(300 * 1024 + i, static_cast<char>('a' + i % 26)));
      ASSERT_TRUE(stream->Write(req)) << "message " << i;
      testing::EchoReply got;
      ASSERT_TRUE(stream->Read(&got)) << "message " << i;
      EXPECT_EQ(got.payload(), req.payload()) << "message " << i;
      if (server.empty()) server = got.server();
      EXPECT_EQ(got.server(), server) << "one stream, one upstream";
    }
    stream->WritesDone();
    testing::EchoReply extra;
    EXPECT_FALSE(stream->Read(&extra));
    grpc::Status s = stream->Finish();
    EXPECT_TRUE(s.ok()) << s.error_message();
  }

  // The caller's deadline ends the call (its stream reset, and the
  // upstream's with it); the edge goes on.
  e1.Stall(5000);
  e2.Stall(5000);
  const auto began = std::chrono::steady_clock::now();
  grpc::Status late = Echo(*stub, "slow", &reply, 300);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
  e1.Answer();
  e2.Answer();
  EXPECT_TRUE(Echo(*stub, "after", &reply).ok());
  EXPECT_EQ(reply.payload(), "after");

  const std::string metrics = Get("/metrics").body;
  EXPECT_NE(metrics.find("mpim_edge_requests_total{route=\"grpc\",class=\"2xx\"}"),
            std::string::npos);

  // HTTP/1.1 cannot reach an HTTP/2-only cluster: refused, saying why.
  testing::ApiResponse h1 =
      testing::ApiClient(edge_->port()).Call("POST", "/mpim.testing.Echo/Echo", "", "{}");
  EXPECT_EQ(h1.status, 505);
  EXPECT_EQ(h1.ErrorCode(), "invalid_argument") << h1.Describe();
}

TEST_F(EdgeH2E2eTest, GrpcHealthTakesANotServingUpstreamOutAndAStoppedOneIsRoutedAround) {
  EchoServer e1("e1"), e2("e2");
  ASSERT_TRUE(StartEdge(EchoRoutes({&e1, &e2}))) << start_error_;
  auto stub = EchoStub();
  ASSERT_TRUE(Eventually([&] { return Get("/readyz").status == 200; }));
  EXPECT_EQ(Answering(*stub, 4).count("e1"), 2u);

  e1.SetServing(false);
  ASSERT_TRUE(Eventually([&] { return Answering(*stub, 10).count("e2") == 10; }))
      << "a NOT_SERVING upstream gets no calls";
  EXPECT_NE(Get("/metrics")
                .body.find("mpim_edge_upstream_healthy{cluster=\"echo\",upstream=\"" +
                           e1.address() + "\"} 0"),
            std::string::npos);
  e1.SetServing(true);
  ASSERT_TRUE(Eventually([&] { return Answering(*stub, 10).count("e1") > 0; }));

  e2.Stop();
  ASSERT_TRUE(Eventually([&] { return Answering(*stub, 10).count("e1") == 10; }))
      << "calls go around a stopped upstream";
}

TEST_F(EdgeH2E2eTest, GrpcOverTlsNegotiatesH2) {
  EchoServer e1("e1");
  ASSERT_TRUE(StartTlsEdge(EchoRoutes({&e1}))) << start_error_;
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = first_.cert_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto stub = testing::Echo::NewStub(
      grpc::CreateCustomChannel(Loopback(edge_->port()), grpc::SslCredentials(tls), args));
  testing::EchoReply reply;
  grpc::Status s = Echo(*stub, "secret", &reply);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(reply.payload(), "secret");
  EXPECT_EQ(reply.server(), "e1");
}

TEST_F(EdgeH2E2eTest, PlainHttp2UpstreamsAnswerAndTheirFailuresAreTheEdgesErrors) {
  testing::H2TestServer up(testing::H2TestServer::Mode::kCleartext);
  ASSERT_TRUE(up.ok()) << up.error();
  up.SetHandler([](const testing::H2TestRequest& r) {
    testing::H2TestAnswer a;
    if (r.path == "/reset") a.action = testing::H2TestAnswer::Action::kReset;
    if (r.path == "/close") a.action = testing::H2TestAnswer::Action::kCloseConnection;
    a.headers = {{"x-upstream", "plain"}};
    a.body = "body of " + r.path + " (" + r.body + ")";
    return a;
  });
  ASSERT_TRUE(StartEdge(Upstream("plain", {Loopback(up.port())},
                                 "protocol = \"h2\"\nhealth_path = \"\"\nretries = 0\n") +
                        "[[routes]]\nupstream = \"plain\"\n"))
      << start_error_;
  H2Caller h2(H2cUrl());
  // A body that ends with DATA (no trailers), and a request body passed on.
  H2Response r = h2.Call({.method = "POST", .path = "/hello", .body = "ping"});
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.body, "body of /hello (ping)");
  EXPECT_EQ(r.Header("x-upstream"), "plain");
  ASSERT_EQ(up.request_count(), 1u);
  EXPECT_EQ(up.requests()[0].Header("x-forwarded-for"), "127.0.0.1");
  // An upstream that resets the stream or drops the connection before
  // answering: 502 unavailable, and the client's connection goes on.
  H2Response reset = h2.Get("/reset");
  EXPECT_EQ(reset.status, 502) << reset.error;
  EXPECT_EQ(Code(reset), "unavailable");
  H2Response closed = h2.Get("/close");
  EXPECT_EQ(closed.status, 502) << closed.error;
  EXPECT_EQ(h2.Get("/again").status, 200);
}

TEST_F(EdgeH2E2eTest, OnSigtermAStreamInFlightFinishesAndTheEdgeExits) {
  EchoServer e1("e1");
  ASSERT_TRUE(StartEdge(EchoRoutes({&e1}))) << start_error_;
  auto stub = EchoStub();
  testing::EchoReply reply;
  ASSERT_TRUE(Echo(*stub, "first", &reply).ok());
  e1.Stall(1000);
  auto call = std::async(std::launch::async, [&] {
    testing::EchoReply r;
    grpc::Status st = Echo(*stub, "draining", &r, 10000);
    return st.ok() ? r.payload() : "failed: " + st.error_message();
  });
  ASSERT_TRUE(Eventually([&] { return e1.calls() == 2; }));
  edge_->Signal(SIGTERM);
  EXPECT_EQ(call.get(), "draining") << "the edge finishes what it took (GOAWAY, then closes)";
  EXPECT_EQ(edge_->Wait(std::chrono::seconds(15)), 0);
}

TEST_F(EdgeH2E2eTest, AnUpstreamThatDoesNotAnswerInTimeIs504OverBothProtocols) {
  testing::HttpTestServer slow;
  slow.SetHandler([](const testing::HttpTestRequest& r) {
    testing::HttpTestAnswer a;
    if (r.target == "/slow") a.action = testing::HttpTestAnswer::Action::kHold;
    a.body = R"({"upstream":"slow"})";
    return a;
  });
  ASSERT_TRUE(StartEdge(Upstream("one", {Loopback(slow.port())}, "health_path = \"\"\n") +
                            "[[routes]]\nupstream = \"one\"\n",
                        {"--set", "edge.upstream_timeout_ms=300"}))
      << start_error_;
  // HTTP/1.1: the deadline of the upstream's part passes, 504, and the
  // client's connection goes on.
  testing::ApiClient h1(edge_->port());
  const auto began = std::chrono::steady_clock::now();
  testing::ApiResponse late = h1.Call("GET", "/slow", "", "");
  EXPECT_EQ(late.status, 504) << late.Describe();
  EXPECT_EQ(late.ErrorCode(), "unavailable");
  EXPECT_LT(std::chrono::steady_clock::now() - began, std::chrono::seconds(3));
  EXPECT_EQ(testing::Who(h1.Call("GET", "/fast", "", "")), "slow");
  // HTTP/2: the same for a stream, the others unaffected.
  H2Caller h2(H2cUrl());
  auto held = h2.Start({.method = "GET", .path = "/slow"});
  EXPECT_EQ(WhoAnswered(h2.Get("/fast")), "slow");
  H2Response timed_out = held.get();
  EXPECT_EQ(timed_out.status, 504) << timed_out.error;
  slow.ReleaseHeld();
}

// Frames by hand: a 9-byte header, then the payload.
std::string Frame(uint8_t type, uint8_t flags, uint32_t stream, const std::string& payload) {
  std::string f;
  const size_t n = payload.size();
  f += static_cast<char>(n >> 16);
  f += static_cast<char>(n >> 8);
  f += static_cast<char>(n);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += static_cast<char>(stream >> 24);
  f += static_cast<char>(stream >> 16);
  f += static_cast<char>(stream >> 8);
  f += static_cast<char>(stream);
  return f + payload;
}

TEST_F(EdgeH2E2eTest, HostileHttp2ClientsAreCutOffAndOthersServed) {
  HttpBackend a("a");
  ASSERT_TRUE(StartEdge(RoutesTo(a), {"--set", "server.request_timeout_ms=1000"})) << start_error_;
  const std::string preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  const std::string settings = Frame(0x4, 0, 0, "");
  // Garbage after the preface: a connection error (GOAWAY), then closed.
  testing::RawConn garbage(edge_->port());
  garbage.Send(preface + std::string(64, '\xff'));
  EXPECT_TRUE(garbage.ReadUntilClosed(std::chrono::seconds(5)));

  // A request whose body never comes: reset (CANCEL) at the request
  // timeout, the connection kept.
  testing::RawConn slow(edge_->port());
  // HPACK: :method POST (static 3), :scheme http (6), :path / (4),
  // :authority "a" (literal, name index 1).
  const std::string headers = std::string(
      "\x83\x86\x84\x41\x01"
      "a",
      6);
  slow.Send(preface + settings + Frame(0x1, 0x4, 1, headers));
  const std::string rst_cancel = Frame(0x3, 0, 1, std::string("\0\0\0\x08", 4));
  EXPECT_TRUE(slow.ReadUntil(rst_cancel, std::chrono::seconds(5)));

  // A preface cut short and then silence: closed at the request timeout.
  testing::RawConn cut(edge_->port());
  cut.Send(preface.substr(0, 10));
  EXPECT_TRUE(cut.ReadUntilClosed(std::chrono::seconds(5)));

  // Others are served meanwhile and after.
  H2Caller h2(H2cUrl());
  EXPECT_EQ(WhoAnswered(h2.Get("/ok")), "a");
  EXPECT_EQ(testing::Who(Get("/ok")), "a");
}

}  // namespace
}  // namespace mpim
