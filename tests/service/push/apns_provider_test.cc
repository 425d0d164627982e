// The APNs provider against a real HTTP/2 server (support/h2_test_server.h):
// the request Apple gets, the provider token, one connection for many
// pushes, and every outcome.
#include "service/push/apns_provider.h"

#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/escaping.h"
#include "core/ports.h"
#include "service/push/notification.h"
#include "support/h2_test_server.h"

namespace mpim::service::push {
namespace {

using mpim::testing::H2TestAnswer;
using mpim::testing::H2TestRequest;
using mpim::testing::H2TestServer;
using Action = H2TestAnswer::Action;

constexpr std::chrono::seconds kWait{10};

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// An EC key as in Apple's .p8 file (PEM PKCS#8), and its public half for
// checking signatures.
struct TestKey {
  explicit TestKey(const char* curve = "P-256") {
    key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve);
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    pem.assign(data, static_cast<size_t>(len));
    BIO_free(bio);
  }
  ~TestKey() { EVP_PKEY_free(key); }
  EVP_PKEY* key = nullptr;
  std::string pem;
};

struct Jwt {
  boost::json::object header;
  boost::json::object claims;
  bool signature_ok = false;
};

// Decodes a JWT and checks its ES256 signature (raw r || s) with `key`.
Jwt DecodeJwt(std::string_view token, EVP_PKEY* key) {
  Jwt jwt;
  const size_t dot1 = token.find('.');
  const size_t dot2 = token.find('.', dot1 + 1);
  if (dot1 == std::string_view::npos || dot2 == std::string_view::npos) return jwt;
  std::string header, claims, signature;
  auto unescape = [](std::string_view part, std::string* out) {
    return absl::WebSafeBase64Unescape(std::string(part), out);
  };
  if (!unescape(token.substr(0, dot1), &header) ||
      !unescape(token.substr(dot1 + 1, dot2 - dot1 - 1), &claims) ||
      !unescape(token.substr(dot2 + 1), &signature)) {
    return jwt;
  }
  boost::system::error_code ec;
  auto h = boost::json::parse(header, ec);
  if (!ec && h.is_object()) jwt.header = h.as_object();
  auto c = boost::json::parse(claims, ec);
  if (!ec && c.is_object()) jwt.claims = c.as_object();
  if (signature.size() != 64) return jwt;
  const auto* raw = reinterpret_cast<const unsigned char*>(signature.data());
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, nullptr), BN_bin2bn(raw + 32, 32, nullptr));
  unsigned char* der = nullptr;
  const int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  const std::string_view signed_part = token.substr(0, dot2);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  jwt.signature_ok = der_len > 0 &&
                     EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
                     EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                                      reinterpret_cast<const unsigned char*>(signed_part.data()),
                                      signed_part.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  return jwt;
}

std::string BearerOf(const H2TestRequest& request) {
  std::string_view auth = request.Header("authorization");
  return auth.starts_with("bearer ") ? std::string(auth.substr(7)) : "";
}

Push MakePush(std::string token, std::string delivery_id = "delivery-1",
              std::optional<std::string> preview = "hello") {
  return Push{
      .delivery_id = std::move(delivery_id),
      .device = {.device_id = 5, .user_id = 1002, .platform = "apns", .token = std::move(token)},
      .notification = {.conv_id = "p:1001:1002",
                       .seq = 7,
                       .msg_id = 9001,
                       .from = 1001,
                       .preview = std::move(preview),
                       .badge = 3}};
}

H2TestAnswer Answer(int status, const std::string& reason = "",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
  H2TestAnswer answer{.status = status, .headers = std::move(headers)};
  if (!reason.empty()) answer.body = R"({"reason":")" + reason + R"("})";
  return answer;
}

// A handler that answers the first request with `first` and 200 after.
H2TestServer::Handler FirstThen200(const H2TestAnswer& first) {
  auto seen = std::make_shared<std::atomic<int>>(0);
  return [seen, first](const H2TestRequest&) { return (*seen)++ == 0 ? first : Answer(200); };
}

H2TestAnswer Do(Action action) {
  H2TestAnswer answer;
  answer.action = action;
  return answer;
}

H2TestServer::Handler HoldAll() {
  return [](const H2TestRequest&) { return Do(Action::kHold); };
}

// Sends and waits for `done` (a failure after kWait).
std::vector<Result> SendAll(Provider& provider, std::vector<Push> pushes) {
  auto promise = std::make_shared<std::promise<std::vector<Result>>>();
  auto future = promise->get_future();
  provider.Send(std::move(pushes),
                [promise](std::vector<Result> results) { promise->set_value(std::move(results)); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "done did not run within " << kWait.count() << " s";
    return {};
  }
  return future.get();
}

Result SendOne(Provider& provider, Push push) {
  std::vector<Push> pushes;
  pushes.push_back(std::move(push));
  auto results = SendAll(provider, std::move(pushes));
  if (results.size() != 1) return Result{.detail = "wrong number of results"};
  return results[0];
}

class IoThread {
 public:
  IoThread() : work_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    work_.reset();
    thread_.join();
  }
  boost::asio::io_context& io() { return io_; }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
};

class ApnsProviderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.ok()) << server_.error(); }

  ApnsOptions Options(const H2TestServer& server) const {
    return {.url = server.url(),
            .key_pem = key_.pem,
            .key_id = "KEY1234567",
            .team_id = "TEAM123456",
            .topic = "org.mpim.app",
            .timeout_ms = 5000,
            .tls_ca_file = server.ca_file()};
  }
  ApnsOptions Options() const { return Options(server_); }

  std::unique_ptr<Provider> Make(ApnsOptions options) {
    auto provider = MakeApnsProvider(std::move(options), io_.io());
    EXPECT_TRUE(provider.ok()) << provider.status();
    return provider.ok() ? *std::move(provider) : nullptr;
  }

  TestKey key_;
  IoThread io_;
  H2TestServer server_;
};

TEST_F(ApnsProviderTest, RequestHasApplesPathHeadersProviderTokenAndPayload) {
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  EXPECT_EQ(provider->name(), "apns");
  const int64_t before = NowSeconds();
  const Result result = SendOne(*provider, MakePush("a1b2c3d4"));
  const int64_t after = NowSeconds();
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  EXPECT_EQ(result.detail, "HTTP 200");
  EXPECT_GT(result.seconds, 0);

  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const H2TestRequest& request = requests[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.scheme, "https");
  EXPECT_EQ(request.authority, "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_EQ(request.path, "/3/device/a1b2c3d4");
  EXPECT_EQ(request.Header("apns-topic"), "org.mpim.app");
  EXPECT_EQ(request.Header("apns-push-type"), "alert");
  EXPECT_EQ(request.Header("apns-priority"), "10");
  EXPECT_EQ(request.Header("apns-collapse-id"), "p:1001:1002");
  const std::string apns_id(request.Header("apns-id"));
  ASSERT_EQ(apns_id.size(), 36u) << apns_id;
  for (size_t i : {8, 13, 18, 23}) EXPECT_EQ(apns_id[i], '-') << apns_id;

  const Jwt jwt = DecodeJwt(BearerOf(request), key_.key);
  EXPECT_TRUE(jwt.signature_ok) << request.Header("authorization");
  EXPECT_EQ(jwt.header, (boost::json::object{{"alg", "ES256"}, {"kid", "KEY1234567"}}));
  EXPECT_EQ(jwt.claims.size(), 2u);
  ASSERT_TRUE(jwt.claims.contains("iss") && jwt.claims.contains("iat"));
  EXPECT_EQ(jwt.claims.at("iss"), "TEAM123456");
  ASSERT_TRUE(jwt.claims.at("iat").is_int64());
  // Made when the provider was (a moment before the send).
  EXPECT_GE(jwt.claims.at("iat").as_int64(), before - 5);
  EXPECT_LE(jwt.claims.at("iat").as_int64(), after);

  const Push push = MakePush("a1b2c3d4");
  const boost::json::value expected = {
      {"aps", {{"alert", {{"body", "hello"}}}, {"badge", 3}, {"sound", "default"}}},
      {"mpim", boost::json::parse(NotificationJson(push.notification))}};
  EXPECT_EQ(boost::json::parse(request.body), expected) << request.body;

  // Without a preview: a title only. The same delivery id, the same apns-id;
  // another, another.
  SendOne(*provider, MakePush("a1b2c3d4", "delivery-1", std::nullopt));
  SendOne(*provider, MakePush("a1b2c3d4", "delivery-2"));
  requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  const boost::json::value no_preview = boost::json::parse(requests[1].body);
  EXPECT_EQ(no_preview.at("aps").at("alert"), (boost::json::object{{"title", "New message"}}));
  EXPECT_FALSE(no_preview.at("mpim").as_object().contains("preview"));
  EXPECT_EQ(requests[1].Header("apns-id"), apns_id);
  EXPECT_NE(requests[2].Header("apns-id"), apns_id);
}

TEST_F(ApnsProviderTest, ProviderTokenIsReusedThenRenewedWhenOld) {
  ApnsOptions options = Options();
  options.token_refresh_s = 2;
  auto provider = Make(options);
  ASSERT_NE(provider, nullptr);
  const auto made = std::chrono::steady_clock::now();  // the token is made with the provider
  ASSERT_EQ(SendOne(*provider, MakePush("aa01")).outcome, Outcome::kDelivered);
  ASSERT_EQ(SendOne(*provider, MakePush("aa02")).outcome, Outcome::kDelivered);
  const bool in_time = std::chrono::steady_clock::now() - made < std::chrono::seconds(2);
  // The event here is the token's age itself: wait until it is 2 s old.
  std::this_thread::sleep_until(made + std::chrono::milliseconds(2100));
  ASSERT_EQ(SendOne(*provider, MakePush("aa03")).outcome, Outcome::kDelivered);
  ASSERT_EQ(SendOne(*provider, MakePush("aa04")).outcome, Outcome::kDelivered);

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 4u);
  if (in_time) {
    EXPECT_EQ(BearerOf(requests[0]), BearerOf(requests[1]));
  }
  EXPECT_NE(BearerOf(requests[1]), BearerOf(requests[2]));
  EXPECT_EQ(BearerOf(requests[2]), BearerOf(requests[3]));
  const Jwt old_token = DecodeJwt(BearerOf(requests[1]), key_.key);
  const Jwt new_token = DecodeJwt(BearerOf(requests[2]), key_.key);
  EXPECT_TRUE(new_token.signature_ok);
  EXPECT_GT(new_token.claims.at("iat").as_int64(), old_token.claims.at("iat").as_int64());
}

TEST_F(ApnsProviderTest, ExpiredProviderTokenIsRenewedAndThePushSentAgain) {
  server_.SetHandler(FirstThen200(Answer(403, "ExpiredProviderToken")));
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  const Result result = SendOne(*provider, MakePush("bb01"));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  EXPECT_EQ(SendOne(*provider, MakePush("bb02")).outcome, Outcome::kDelivered);

  auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].path, requests[1].path);
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_NE(BearerOf(requests[0]), BearerOf(requests[1]));
  EXPECT_TRUE(DecodeJwt(BearerOf(requests[1]), key_.key).signature_ok);
  EXPECT_EQ(BearerOf(requests[1]), BearerOf(requests[2]));  // the renewed one is kept

  // Sent again once only: a second refusal is the answer.
  server_.SetHandler([](const H2TestRequest&) { return Answer(403, "ExpiredProviderToken"); });
  const Result refused = SendOne(*provider, MakePush("bb03"));
  EXPECT_EQ(refused.outcome, Outcome::kRejected);
  EXPECT_EQ(refused.detail, "403 ExpiredProviderToken");
  EXPECT_EQ(server_.request_count(), 5u);
}

TEST_F(ApnsProviderTest, ConcurrentPushesShareOneConnectionWithManyStreamsOpen) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  constexpr int kPushes = kThreads * kPerThread;
  server_.SetHandler(HoldAll());
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);

  std::mutex mu;
  std::condition_variable answered;
  std::vector<Result> results;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string id = std::to_string(t * kPerThread + i);
        provider->Send({MakePush("cc" + id, "d" + id)}, [&](std::vector<Result> r) {
          std::lock_guard lock(mu);
          results.insert(results.end(), r.begin(), r.end());
          answered.notify_all();
        });
      }
    });
  }
  for (auto& sender : senders) sender.join();

  // Every push is on the server, unanswered, at once.
  ASSERT_TRUE(server_.WaitForHeld(kPushes, kWait)) << server_.held_count();
  EXPECT_EQ(server_.connections_accepted(), 1);
  EXPECT_EQ(server_.max_open_streams(), kPushes);
  server_.ReleaseHeld();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(answered.wait_for(lock, kWait, [&] { return results.size() == kPushes; }))
        << results.size();
    for (const Result& r : results) EXPECT_EQ(r.outcome, Outcome::kDelivered) << r.detail;
  }
  std::set<int32_t> streams;
  for (const auto& request : server_.requests()) {
    EXPECT_EQ(request.connection, 1);
    streams.insert(request.stream_id);
  }
  EXPECT_EQ(streams.size(), static_cast<size_t>(kPushes));
}

TEST_F(ApnsProviderTest, PushesBeyondTheStreamLimitWaitForAFreeStream) {
  ApnsOptions options = Options();
  options.max_concurrent_streams = 10;
  auto provider = Make(options);
  ASSERT_NE(provider, nullptr);
  constexpr int kPushes = 500;
  std::vector<Push> pushes;
  for (int i = 0; i < kPushes; ++i) {
    pushes.push_back(MakePush("dd" + std::to_string(i), "d" + std::to_string(i)));
  }
  const auto results = SendAll(*provider, std::move(pushes));
  ASSERT_EQ(results.size(), static_cast<size_t>(kPushes));
  for (const Result& r : results) ASSERT_EQ(r.outcome, Outcome::kDelivered) << r.detail;
  EXPECT_EQ(server_.connections_accepted(), 1);
  EXPECT_LE(server_.max_open_streams(), 10);
  EXPECT_GT(server_.max_open_streams(), 1);
}

TEST_F(ApnsProviderTest, OutcomesFollowStatusAndReason) {
  server_.SetHandler([](const H2TestRequest& request) {
    const std::string token = request.path.substr(request.path.rfind('/') + 1);
    if (token == "d410") return Answer(410, "Unregistered");
    if (token == "d400") return Answer(400, "BadDeviceToken");
    if (token == "d403") return Answer(403, "InvalidProviderToken");
    if (token == "d429") return Answer(429, "TooManyRequests", {{"retry-after", "7"}});
    if (token == "d500") return Answer(500, "InternalServerError");
    if (token == "d503") return Answer(503, "ServiceUnavailable", {{"retry-after", "soon"}});
    if (token == "d502") return Answer(502);
    return Answer(200);
  });
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  struct Case {
    std::string token;
    Outcome outcome;
    std::string detail;
    int64_t retry_after_ms;
  };
  const std::vector<Case> cases = {
      {"d200", Outcome::kDelivered, "HTTP 200", 0},
      {"d410", Outcome::kTokenGone, "410 Unregistered", 0},
      {"d400", Outcome::kRejected, "400 BadDeviceToken", 0},
      {"d403", Outcome::kRejected, "403 InvalidProviderToken", 0},
      {"d429", Outcome::kRetry, "429 TooManyRequests", 7000},
      {"d500", Outcome::kRetry, "500 InternalServerError", 0},
      {"d503", Outcome::kRetry, "503 ServiceUnavailable", 0},
      {"d502", Outcome::kRetry, "HTTP 502", 0},
  };
  std::vector<Push> pushes;
  for (const Case& c : cases) pushes.push_back(MakePush(c.token, "id-" + c.token));
  const auto results = SendAll(*provider, std::move(pushes));
  ASSERT_EQ(results.size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].token);
    EXPECT_EQ(results[i].outcome, cases[i].outcome);
    EXPECT_EQ(results[i].detail, cases[i].detail);
    EXPECT_EQ(results[i].retry_after_ms, cases[i].retry_after_ms);
    EXPECT_GT(results[i].seconds, 0);
  }
  EXPECT_EQ(server_.connections_accepted(), 1);
}

TEST_F(ApnsProviderTest, BadDeviceTokenIsRejectedWithoutARequest) {
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  for (std::string token : {"", "ab/../cd", "ab cd", "ab?x=1"}) {
    const Result result = SendOne(*provider, MakePush(token));
    EXPECT_EQ(result.outcome, Outcome::kRejected) << token;
    if (!token.empty()) {
      EXPECT_EQ(result.detail.find(token), std::string::npos) << result.detail;
    }
  }
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(ApnsProviderTest, ServerThatNeverAnswersTimesOutAsRetry) {
  server_.SetHandler(FirstThen200(Do(Action::kHold)));
  ApnsOptions options = Options();
  options.timeout_ms = 300;
  auto provider = Make(options);
  ASSERT_NE(provider, nullptr);
  const Result result = SendOne(*provider, MakePush("ee01"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_NE(result.detail.find("timeout after 300 ms"), std::string::npos) << result.detail;
  EXPECT_GE(result.seconds, 0.3);
  // The silent connection is given up; the next push goes on a new one.
  const Result next = SendOne(*provider, MakePush("ee02"));
  EXPECT_EQ(next.outcome, Outcome::kDelivered) << next.detail;
}

TEST_F(ApnsProviderTest, RefusedConnectionIsRetry) {
  const uint16_t port = core::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  ApnsOptions options = Options();
  options.url = "https://127.0.0.1:" + std::to_string(port);
  auto provider = Make(options);
  ASSERT_NE(provider, nullptr);
  const Result result = SendOne(*provider, MakePush("ff01"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_TRUE(result.detail.starts_with("connect: ")) << result.detail;
  EXPECT_EQ(result.seconds, 0);
}

TEST_F(ApnsProviderTest, ConnectionClosedMidwayIsRetryAndTheNextPushReconnects) {
  server_.SetHandler(FirstThen200(Do(Action::kCloseConnection)));
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  const Result broken = SendOne(*provider, MakePush("gg01"));
  EXPECT_EQ(broken.outcome, Outcome::kRetry);
  // A close with unread bytes in the server's socket is a reset.
  EXPECT_TRUE(broken.detail == "connection closed by the server" ||
              broken.detail == "connection reset by the server")
      << broken.detail;
  EXPECT_GT(broken.seconds, 0);
  const Result next = SendOne(*provider, MakePush("gg02"));
  EXPECT_EQ(next.outcome, Outcome::kDelivered) << next.detail;
  EXPECT_EQ(server_.connections_accepted(), 2);
}

TEST_F(ApnsProviderTest, GoAwaySendsLaterPushesOnANewConnection) {
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  ASSERT_EQ(SendOne(*provider, MakePush("hh01")).outcome, Outcome::kDelivered);
  server_.GoAway();
  ASSERT_TRUE(server_.WaitForConnectionsOpen(0, kWait));
  const Result next = SendOne(*provider, MakePush("hh02"));
  EXPECT_EQ(next.outcome, Outcome::kDelivered) << next.detail;
  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].connection, 1);
  EXPECT_EQ(requests[1].connection, 2);
}

TEST_F(ApnsProviderTest, ClientWithoutTheCaFileRefusesTheSelfSignedServer) {
  ApnsOptions options = Options();
  options.tls_ca_file.clear();  // the system's CAs
  auto provider = Make(options);
  ASSERT_NE(provider, nullptr);
  const Result result = SendOne(*provider, MakePush("ii01"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_TRUE(result.detail.starts_with("tls: certificate verify failed")) << result.detail;
  EXPECT_EQ(server_.request_count(), 0u);
}

TEST_F(ApnsProviderTest, DestroyingTheProviderAnswersWhatIsInFlight) {
  server_.SetHandler(HoldAll());
  auto provider = Make(Options());
  ASSERT_NE(provider, nullptr);
  std::promise<std::vector<Result>> promise;
  auto future = promise.get_future();
  provider->Send({MakePush("jj01"), MakePush("jj02")}, [&promise](std::vector<Result> results) {
    promise.set_value(std::move(results));
  });
  ASSERT_TRUE(server_.WaitForHeld(2, kWait));
  provider.reset();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(0)), std::future_status::ready);
  const auto results = future.get();
  ASSERT_EQ(results.size(), 2u);
  for (const Result& r : results) {
    EXPECT_EQ(r.outcome, Outcome::kRetry);
    EXPECT_EQ(r.detail, "client shut down");
  }
}

TEST_F(ApnsProviderTest, BadOptionsAreInvalidArgument) {
  const TestKey p384("P-384");
  struct Case {
    std::string what;
    std::function<void(ApnsOptions&)> change;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no key", [](ApnsOptions& o) { o.key_pem.clear(); }, "key_pem"},
      {"garbage key", [](ApnsOptions& o) { o.key_pem = "-----BEGIN PRIVATE KEY-----\nAAAA\n"; },
       "key_pem"},
      {"P-384 key", [&p384](ApnsOptions& o) { o.key_pem = p384.pem; }, "P-256"},
      {"no key id", [](ApnsOptions& o) { o.key_id.clear(); }, "key_id"},
      {"no team id", [](ApnsOptions& o) { o.team_id.clear(); }, "team_id"},
      {"no topic", [](ApnsOptions& o) { o.topic.clear(); }, "topic"},
      {"ftp url", [](ApnsOptions& o) { o.url = "ftp://127.0.0.1"; }, "scheme"},
      {"not a url", [](ApnsOptions& o) { o.url = "api.push.apple.com"; }, "url"},
      {"url with a query", [](ApnsOptions& o) { o.url = "https://h.example/?x=1"; }, "query"},
      {"missing CA file", [](ApnsOptions& o) { o.tls_ca_file = "/nonexistent/ca.pem"; },
       "tls_ca_file"},
      {"refresh 0", [](ApnsOptions& o) { o.token_refresh_s = 0; }, "token_refresh_s"},
      {"refresh too old", [](ApnsOptions& o) { o.token_refresh_s = 3601; }, "token_refresh_s"},
      {"no timeout", [](ApnsOptions& o) { o.timeout_ms = 0; }, "timeout_ms"},
  };
  for (const Case& c : cases) {
    ApnsOptions options = Options();
    c.change(options);
    auto provider = MakeApnsProvider(options, io_.io());
    ASSERT_FALSE(provider.ok()) << c.what;
    EXPECT_EQ(provider.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_NE(provider.status().message().find(c.message), std::string::npos)
        << c.what << ": " << provider.status();
  }
}

TEST(ApnsProviderCleartextTest, H2cWithAnHttpUrl) {
  H2TestServer server(H2TestServer::Mode::kCleartext);
  ASSERT_TRUE(server.ok()) << server.error();
  IoThread io;
  const TestKey key;
  auto provider = MakeApnsProvider({.url = server.url(),
                                    .key_pem = key.pem,
                                    .key_id = "K",
                                    .team_id = "T",
                                    .topic = "org.mpim.app"},
                                   io.io());
  ASSERT_TRUE(provider.ok()) << provider.status();
  const Result result = SendOne(**provider, MakePush("kk01"));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].scheme, "http");
  EXPECT_EQ(requests[0].path, "/3/device/kk01");
  provider->reset();
}

}  // namespace
}  // namespace mpim::service::push
