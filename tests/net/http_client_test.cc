// net::HttpClient against a real local HTTP/1.1 server (net/http_test_server.h):
// keep-alive reuse and the per-origin cap with its FIFO, deadlines, refused
// connections, a server that closes idle or reused connections, TLS with a
// self-signed certificate, the response body cap and shutdown.
#include "net/http_client.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/ports.h"
#include "net/http_test_server.h"

namespace mpim::net {
namespace {

using testing::HttpTestAnswer;
using testing::HttpTestRequest;
using testing::HttpTestServer;
using Result = core::StatusOr<HttpClientResponse>;

constexpr std::chrono::seconds kWait{10};

// Results of requests sent at once, by index, and a wait for all of them.
// The callbacks share the state, so that one coming after a failed test
// returned writes nowhere harmful.
class Results {
 public:
  explicit Results(size_t n) : state_(std::make_shared<State>()) { state_->results.resize(n); }

  HttpClientCallback At(size_t i) {
    return [state = state_, i](Result result) {
      std::lock_guard lock(state->mu);
      state->results[i] = std::move(result);
      ++state->count;
      state->changed.notify_all();
    };
  }
  bool WaitAll() {
    std::unique_lock lock(state_->mu);
    return state_->changed.wait_for(lock, kWait,
                                    [&] { return state_->count == state_->results.size(); });
  }
  const Result& operator[](size_t i) const {
    std::lock_guard lock(state_->mu);
    return *state_->results[i];
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable changed;
    std::vector<std::optional<Result>> results;
    size_t count = 0;
  };
  std::shared_ptr<State> state_;
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    client_.reset();
    work_.reset();
    thread_.join();
  }

  HttpClient& Client(HttpClientOptions options = {}) {
    auto made = HttpClient::Make(io_, std::move(options));
    EXPECT_TRUE(made.ok()) << made.status();
    client_ = std::move(*made);
    return *client_;
  }

  // One request, waited for.
  Result Fetch(const std::string& url, const std::string& method = "GET", std::string body = "",
               int64_t timeout_ms = 5000, Headers headers = {}) {
    auto promise = std::make_shared<std::promise<Result>>();
    auto future = promise->get_future();
    client_->Request(method, url, std::move(headers), std::move(body), timeout_ms,
                     [promise](Result result) { promise->set_value(std::move(result)); });
    if (future.wait_for(kWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("no callback");
    }
    return future.get();
  }

  boost::asio::io_context io_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
  std::unique_ptr<HttpClient> client_;
  HttpTestServer server_;  // cleartext; the TLS tests make their own
};

TEST_F(HttpClientTest, PostsAndReadsTheAnswer) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest&) {
    return HttpTestAnswer{.status = 201, .headers = {{"X-Answer", "yes"}}, .body = "created"};
  });
  Client();
  auto result = Fetch(server_.url() + "/hooks/a?b=c", "POST", "{\"k\":1}", 5000,
                      {{"Content-Type", "application/json"}, {"X-Custom", "v"}});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->status, 201);
  EXPECT_EQ(result->body, "created");
  EXPECT_EQ(result->Header("x-answer"), "yes");
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].target, "/hooks/a?b=c");
  EXPECT_EQ(requests[0].body, "{\"k\":1}");
  EXPECT_EQ(requests[0].Header("content-type"), "application/json");
  EXPECT_EQ(requests[0].Header("content-length"), "7");
  EXPECT_EQ(requests[0].Header("x-custom"), "v");
  EXPECT_EQ(requests[0].Header("host"), "127.0.0.1:" + std::to_string(server_.port()));
}

TEST_F(HttpClientTest, SequentialRequestsShareOneConnection) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Client();
  for (int i = 0; i < 10; ++i) {
    auto result = Fetch(server_.url() + "/" + std::to_string(i));
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->status, 200);
  }
  EXPECT_EQ(server_.connections_accepted(), 1);
  EXPECT_EQ(client_->connections_opened(), 1);
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 10u);
  EXPECT_EQ(requests[9].index, 9);
}

TEST_F(HttpClientTest, ConcurrentRequestsBeyondTheCapWaitInOrder) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kHold));
  Client({.max_connections_per_origin = 4});
  constexpr size_t kRequests = 12;
  Results results(kRequests);
  for (size_t i = 0; i < kRequests; ++i) {
    client_->Request("GET", server_.url() + "/" + std::to_string(i), {}, "", 10000, results.At(i));
  }
  for (size_t round = 0; round < kRequests / 4; ++round) {
    ASSERT_TRUE(server_.WaitForRequests(4 * (round + 1), kWait));
    ASSERT_TRUE(server_.WaitForHeld(4, kWait));
    // The other requests wait in the client, not on more connections.
    EXPECT_EQ(server_.request_count(), 4 * (round + 1));
    EXPECT_EQ(server_.connections_accepted(), 4);
    auto requests = server_.requests();
    std::set<std::string> targets;
    for (size_t i = 4 * round; i < 4 * (round + 1); ++i) targets.insert(requests[i].target);
    std::set<std::string> expected;
    for (size_t i = 4 * round; i < 4 * (round + 1); ++i) expected.insert("/" + std::to_string(i));
    EXPECT_EQ(targets, expected) << "round " << round;
    server_.ReleaseHeld();
  }
  ASSERT_TRUE(results.WaitAll());
  for (size_t i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
  }
  EXPECT_EQ(server_.connections_accepted(), 4);
  EXPECT_EQ(server_.max_open_connections(), 4);
  EXPECT_EQ(client_->connections_opened(), 4);
}

TEST_F(HttpClientTest, ATimeoutClosesTheConnectionAndTheNextRequestGetsAFreshOne) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest& request) {
    if (request.target == "/slow") return HttpTestAnswer{.action = HttpTestAnswer::Action::kHold};
    return HttpTestAnswer{};
  });
  Client();
  auto slow = Fetch(server_.url() + "/slow", "GET", "", 300);
  ASSERT_FALSE(slow.ok());
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(slow.status().message(), "timeout after 300 ms");
  server_.ReleaseHeld();
  auto next = Fetch(server_.url() + "/fast");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(server_.connections_accepted(), 2);
}

TEST_F(HttpClientTest, TheDeadlineCoversTheWaitForAConnection) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kHold));
  Client({.max_connections_per_origin = 1});
  Results first(1);
  client_->Request("GET", server_.url() + "/first", {}, "", 10000, first.At(0));
  ASSERT_TRUE(server_.WaitForHeld(1, kWait));
  auto queued = Fetch(server_.url() + "/queued", "GET", "", 200);
  ASSERT_FALSE(queued.ok());
  EXPECT_EQ(queued.status().message(), "timeout after 200 ms");
  EXPECT_EQ(server_.request_count(), 1u);  // never sent
  server_.ReleaseHeld();
  ASSERT_TRUE(first.WaitAll());
  EXPECT_TRUE(first[0].ok()) << first[0].status();
}

TEST_F(HttpClientTest, RefusedConnectionSaysWhere) {
  uint16_t port = core::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  Client();
  auto result = Fetch("http://127.0.0.1:" + std::to_string(port) + "/");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message(),
            "connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_F(HttpClientTest, AnIdleConnectionTheServerClosedIsReplaced) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Client();
  ASSERT_TRUE(Fetch(server_.url() + "/1").ok());
  ASSERT_TRUE(server_.WaitForIdleConnections(1, kWait));
  server_.CloseIdle();
  ASSERT_TRUE(server_.WaitForOpenConnections(0, kWait));
  auto second = Fetch(server_.url() + "/2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(server_.connections_accepted(), 2);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(HttpClientTest, AReusedConnectionClosedBeforeTheAnswerIsRetriedOnceOnAFreshOne) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest& request) {
    // The stale keep-alive race: the request reached a connection the server
    // was closing.
    if (request.connection == 1 && request.index == 1) {
      return HttpTestAnswer{.action = HttpTestAnswer::Action::kClose};
    }
    return HttpTestAnswer{.body = "ok"};
  });
  Client();
  ASSERT_TRUE(Fetch(server_.url() + "/1").ok());
  auto second = Fetch(server_.url() + "/2");
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->body, "ok");
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[2].target, "/2");
  EXPECT_EQ(requests[2].connection, 2);
}

TEST_F(HttpClientTest, AFreshConnectionClosedBeforeTheAnswerIsNotRetried) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kClose));
  Client();
  auto result = Fetch(server_.url() + "/");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(result.status().message(), "connection closed before the response");
  EXPECT_EQ(server_.request_count(), 1u);
}

TEST_F(HttpClientTest, AConnectionBrokenWithinTheAnswerIsNotRetried) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest& request) {
    if (request.index == 1) {
      return HttpTestAnswer{.body = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                            .action = HttpTestAnswer::Action::kRaw};
    }
    return HttpTestAnswer{};
  });
  Client();
  ASSERT_TRUE(Fetch(server_.url() + "/1").ok());
  auto second = Fetch(server_.url() + "/2");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(server_.request_count(), 2u);
}

TEST_F(HttpClientTest, HttpsWithATrustedSelfSignedCertificate) {
  HttpTestServer server(HttpTestServer::Mode::kTls);
  ASSERT_TRUE(server.ok()) << server.error();
  server.SetHandler([](const HttpTestRequest&) { return HttpTestAnswer{.body = "secret"}; });
  Client({.tls_ca_file = server.ca_file()});
  for (int i = 0; i < 3; ++i) {
    auto result = Fetch(server.url() + "/");
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->body, "secret");
  }
  // By name too (SNI and the name check), on its own origin.
  auto by_name = Fetch("https://localhost:" + std::to_string(server.port()) + "/");
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(server.connections_accepted(), 2);
}

TEST_F(HttpClientTest, HttpsRefusesACertificateItDoesNotTrust) {
  HttpTestServer server(HttpTestServer::Mode::kTls);
  ASSERT_TRUE(server.ok()) << server.error();
  Client();  // the system's CAs
  auto result = Fetch(server.url() + "/");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(result.status().message().find("tls handshake 127.0.0.1:"), std::string::npos)
      << result.status();
  EXPECT_NE(result.status().message().find("certificate verify failed"), std::string::npos)
      << result.status();
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(HttpClientTest, HttpsRefusesACertificateForAnotherHost) {
  HttpTestServer server(testing::MakeSelfSignedCertificate({"other.example"}, {}));
  ASSERT_TRUE(server.ok()) << server.error();
  Client({.tls_ca_file = server.ca_file()});
  auto result = Fetch(server.url() + "/");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("tls handshake"), std::string::npos) << result.status();
  EXPECT_EQ(server.request_count(), 0u);
}

TEST_F(HttpClientTest, AnUnreadableCaFileIsInvalid) {
  auto made = HttpClient::Make(io_, {.tls_ca_file = "/nonexistent/ca.pem"});
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(HttpClientTest, TheBodyIsCapped) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest& request) {
    return HttpTestAnswer{.body =
                              std::string(request.target == "/big" ? (2 << 20) : (1 << 20), 'x')};
  });
  Client();  // the default cap, 1 MiB
  auto big = Fetch(server_.url() + "/big");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(big.status().message(), "response body over 1048576 bytes");
  auto fits = Fetch(server_.url() + "/fits");
  ASSERT_TRUE(fits.ok()) << fits.status();
  EXPECT_EQ(fits->body.size(), size_t{1} << 20);
}

TEST_F(HttpClientTest, ShutdownAnswersWhatIsInFlight) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler([](const HttpTestRequest& request) {
    if (request.target == "/held") return HttpTestAnswer{.action = HttpTestAnswer::Action::kHold};
    return HttpTestAnswer{};
  });
  Client({.max_connections_per_origin = 1});
  Results results(2);
  client_->Request("GET", server_.url() + "/held", {}, "", 10000, results.At(0));
  ASSERT_TRUE(server_.WaitForHeld(1, kWait));
  client_->Request("GET", server_.url() + "/queued", {}, "", 10000, results.At(1));
  client_.reset();  // from this thread, while the io thread runs
  ASSERT_TRUE(results.WaitAll());
  for (size_t i = 0; i < 2; ++i) {
    ASSERT_FALSE(results[i].ok());
    EXPECT_EQ(results[i].status().message(), "client shut down");
  }
  server_.ReleaseHeld();
}

TEST_F(HttpClientTest, ARequestAfterShutdownIsAnsweredAtOnce) {
  Client();
  client_->Shutdown();
  std::optional<Result> result;
  client_->Request("GET", "http://127.0.0.1:1/", {}, "", 1000,
                   [&](Result answer) { result = std::move(answer); });
  ASSERT_TRUE(result.has_value());  // on this thread, before Request returned
  EXPECT_EQ(result->status().message(), "client shut down");
}

TEST_F(HttpClientTest, ABadUrlIsInvalid) {
  Client();
  auto result = Fetch("ftp://example.com/");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ParseHttpUrl("not a url").ok());
  auto url = ParseHttpUrl("https://[::1]:8443/v1/x?y=1");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_TRUE(url->tls);
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->target, "/v1/x?y=1");
  EXPECT_EQ(ParseHttpUrl("http://example.com")->target, "/");
  EXPECT_EQ(ParseHttpUrl("http://example.com")->port, 80);
}

TEST(RetryAfterTest, ParsesSeconds) {
  EXPECT_EQ(RetryAfterMs("120"), 120000);
  EXPECT_EQ(RetryAfterMs(" 3 "), 3000);
  EXPECT_EQ(RetryAfterMs(""), 0);
  EXPECT_EQ(RetryAfterMs("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
  EXPECT_EQ(RetryAfterMs("-1"), 0);
}

}  // namespace
}  // namespace mpim::net
