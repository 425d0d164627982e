// The webhook provider against a real HTTP/1.1 server (net/http_test_server.h):
// the signed JSON POST and its headers, keep-alive, every outcome, timeouts,
// refused connections and shutdown.
#include "service/push/webhook_provider.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <cstdio>
#include <future>
#include <string>
#include <vector>

#include "core/ports.h"
#include "net/http_test_server.h"
#include "service/push/http_provider_fixture.h"
#include "service/push/notification.h"

namespace mpim::service::push {
namespace {

using mpim::testing::HttpTestAnswer;
using mpim::testing::HttpTestRequest;
using mpim::testing::HttpTestServer;

constexpr char kSecret[] = "webhook-secret-0123456789";

// What the receiver computes to check the signature: lowercase hex.
std::string ExpectedSignature(const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha256(), kSecret, static_cast<int>(sizeof kSecret - 1),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &size);
  std::string hex;
  char byte[3];
  for (unsigned int i = 0; i < size; ++i) {
    std::snprintf(byte, sizeof byte, "%02x", mac[i]);
    hex += byte;
  }
  return "sha256=" + hex;
}

class WebhookProviderTest : public HttpProviderTest {
 protected:
  void Make(const std::string& url, int64_t timeout_ms = 5000, int max_connections = 16) {
    auto made = MakeWebhookProvider({.url = url,
                                     .secret = kSecret,
                                     .timeout_ms = timeout_ms,
                                     .max_connections = max_connections},
                                    io_);
    ASSERT_TRUE(made.ok()) << made.status();
    provider = std::move(*made);
  }

  HttpTestServer server_;
};

TEST_F(WebhookProviderTest, PostsTheSignedJsonWithTheDeliveryId) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Make(server_.url() + "/hooks/push");
  EXPECT_EQ(provider->name(), "webhook");
  Push push = TestPush("delivery-1", "device-token-xyz", "webhook");
  Result result = SendOne(push);
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  EXPECT_EQ(result.detail, "HTTP 200");
  EXPECT_GT(result.seconds, 0);

  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const HttpTestRequest& request = requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.target, "/hooks/push");
  EXPECT_EQ(request.Header("content-type"), "application/json");
  EXPECT_EQ(request.Header("x-mpim-delivery"), "delivery-1");
  EXPECT_EQ(request.Header("x-mpim-signature"), ExpectedSignature(request.body));
  boost::json::value body = boost::json::parse(request.body);
  EXPECT_EQ(body.at("device"), boost::json::parse(R"({"device_id":"7","user_id":"1001",
      "platform":"webhook","token":"device-token-xyz"})"));
  EXPECT_EQ(body.at("notification"), boost::json::parse(NotificationJson(push.notification)));
  EXPECT_EQ(body.as_object().size(), 2u);
}

TEST_F(WebhookProviderTest, TheSignatureCoversTheBody) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Make(server_.url());
  ASSERT_EQ(SendOne(TestPush("a", "t1", "webhook")).outcome, Outcome::kDelivered);
  ASSERT_EQ(SendOne(TestPush("b", "t2", "webhook", std::nullopt)).outcome, Outcome::kDelivered);
  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_NE(requests[0].Header("x-mpim-signature"), requests[1].Header("x-mpim-signature"));
  for (const auto& request : requests) {
    EXPECT_EQ(request.Header("x-mpim-signature"), ExpectedSignature(request.body));
  }
  EXPECT_FALSE(
      boost::json::parse(requests[1].body).at("notification").as_object().contains("preview"));
}

TEST_F(WebhookProviderTest, ManyPushesGoOverFewConnections) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Make(server_.url(), 5000, /*max_connections=*/3);
  for (int round = 0; round < 3; ++round) {
    std::vector<Push> pushes;
    for (int i = 0; i < 30; ++i) {
      pushes.push_back(
          TestPush("d" + std::to_string(round) + "-" + std::to_string(i), "token", "webhook"));
    }
    auto results = SendAll(std::move(pushes));
    ASSERT_TRUE(results.ok()) << results.status();
    ASSERT_EQ(results->size(), 30u);
    for (const Result& result : *results) EXPECT_EQ(result.outcome, Outcome::kDelivered);
  }
  EXPECT_EQ(server_.request_count(), 90u);
  EXPECT_LE(server_.connections_accepted(), 3);
  EXPECT_LE(server_.max_open_connections(), 3);
}

TEST_F(WebhookProviderTest, EachStatusHasItsOutcome) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  // The delivery id says which status to answer.
  server_.SetHandler([](const HttpTestRequest& request) {
    int status = std::stoi(std::string(request.Header("x-mpim-delivery")));
    HttpTestAnswer answer{.status = status};
    if (status == 429 || status == 503) answer.headers = {{"Retry-After", "7"}};
    return answer;
  });
  Make(server_.url());
  struct Case {
    int status;
    Outcome outcome;
    int64_t retry_after_ms;
  };
  const std::vector<Case> cases = {
      {200, Outcome::kDelivered, 0}, {202, Outcome::kDelivered, 0}, {204, Outcome::kDelivered, 0},
      {410, Outcome::kTokenGone, 0}, {429, Outcome::kRetry, 7000},  {500, Outcome::kRetry, 0},
      {502, Outcome::kRetry, 0},     {503, Outcome::kRetry, 7000},  {400, Outcome::kRejected, 0},
      {401, Outcome::kRejected, 0},  {403, Outcome::kRejected, 0},  {404, Outcome::kRejected, 0},
      {413, Outcome::kRejected, 0},
  };
  std::vector<Push> pushes;
  for (const Case& c : cases)
    pushes.push_back(TestPush(std::to_string(c.status), "tok", "webhook"));
  auto results = SendAll(std::move(pushes));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Result& result = (*results)[i];
    EXPECT_EQ(result.outcome, cases[i].outcome) << cases[i].status;
    EXPECT_EQ(result.detail, "HTTP " + std::to_string(cases[i].status));
    EXPECT_EQ(result.retry_after_ms, cases[i].retry_after_ms) << cases[i].status;
  }
}

TEST_F(WebhookProviderTest, ATimeoutIsRetried) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kHold));
  Make(server_.url(), /*timeout_ms=*/300);
  Result result = SendOne(TestPush("slow", "tok", "webhook"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "timeout after 300 ms");
  EXPECT_GE(result.seconds, 0.3);
  server_.ReleaseHeld();
}

TEST_F(WebhookProviderTest, ARefusedConnectionIsRetried) {
  uint16_t port = core::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  Make("http://127.0.0.1:" + std::to_string(port) + "/hook");
  Result result = SendOne(TestPush("d", "secret-device-token", "webhook"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
}

TEST_F(WebhookProviderTest, AConnectionClosedWithoutAnAnswerIsRetried) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kClose));
  Make(server_.url());
  Result result = SendOne(TestPush("d", "tok", "webhook"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "connection closed before the response");
}

TEST_F(WebhookProviderTest, DestroyingItAnswersWhatIsInFlight) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  server_.SetHandler(HttpTestServer::Always(HttpTestAnswer::Action::kHold));
  Make(server_.url());
  auto future = Start({TestPush("a", "tok", "webhook"), TestPush("b", "tok", "webhook")});
  ASSERT_TRUE(server_.WaitForHeld(2, kProviderWait));
  DestroyAndExpectRetries(future, 2, "client shut down");
  server_.ReleaseHeld();
}

TEST_F(WebhookProviderTest, NoPushesAnswerAtOnce) {
  ASSERT_TRUE(server_.ok()) << server_.error();
  Make(server_.url());
  auto results = SendAll({});
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_TRUE(results->empty());
}

TEST_F(WebhookProviderTest, BadOptionsAreInvalid) {
  auto no_url = MakeWebhookProvider({.url = "not a url", .secret = kSecret}, io_);
  EXPECT_EQ(no_url.status().code(), absl::StatusCode::kInvalidArgument);
  auto no_secret = MakeWebhookProvider({.url = "http://127.0.0.1:1/"}, io_);
  EXPECT_EQ(no_secret.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad_ca = MakeWebhookProvider(
      {.url = "https://127.0.0.1:1/", .secret = kSecret, .tls_ca_file = "/nonexistent.pem"}, io_);
  EXPECT_EQ(bad_ca.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(WebhookProviderTest, HttpsWithTheConfiguredCa) {
  HttpTestServer tls_server(HttpTestServer::Mode::kTls);
  ASSERT_TRUE(tls_server.ok()) << tls_server.error();
  auto made = MakeWebhookProvider(
      {.url = tls_server.url() + "/hook", .secret = kSecret, .tls_ca_file = tls_server.ca_file()},
      io_);
  ASSERT_TRUE(made.ok()) << made.status();
  provider = std::move(*made);
  Result result = SendOne(TestPush("d", "tok", "webhook"));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  auto requests = tls_server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Header("x-mpim-signature"), ExpectedSignature(requests[0].body));
}

}  // namespace
}  // namespace mpim::service::push
