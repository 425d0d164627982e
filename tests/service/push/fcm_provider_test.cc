// The FCM provider against stand-ins for Google's OAuth2 token endpoint and
// FCM's HTTP v1 send endpoint (real HTTP/1.1 servers, net/http_test_server.h)
// that check what the real ones check: the JWT bearer grant and its RS256
// signature with the service account's public key, the access token on
// every send, the project in the path, the message. Then the token's reuse
// and renewal, every outcome, a token endpoint that is down, bad
// credentials and shutdown.
#include "service/push/fcm_provider.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "core/ports.h"
#include "net/http_test_server.h"
#include "service/push/http_provider_fixture.h"
#include "support/test_keys.h"

namespace mpim::service::push {
namespace {

namespace json = boost::json;
using mpim::testing::HttpTestAnswer;
using mpim::testing::HttpTestRequest;
using mpim::testing::HttpTestServer;

constexpr char kProject[] = "mpim-test";
constexpr char kKeyId[] = "key-id-1";
constexpr char kEmail[] = "push@mpim-test.iam.gserviceaccount.com";
constexpr char kScope[] = "https://www.googleapis.com/auth/firebase.messaging";
constexpr char kSendPath[] = "/v1/projects/mpim-test/messages:send";

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

using mpim::testing::PrivateKeyPem;

// An RSA key as in a service account's key file.
struct RsaKey {
  RsaKey() : key(EVP_RSA_gen(2048)), pem(PrivateKeyPem(key)) {}
  ~RsaKey() { EVP_PKEY_free(key); }
  EVP_PKEY* key;
  std::string pem;
};

bool VerifyRs256(EVP_PKEY* key, std::string_view input, std::string_view signature) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(signature.data()),
                             signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                             input.size()) == 1;
  EVP_MD_CTX_free(ctx);
  return ok;
}

std::string FormDecode(std::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '+') {
      out += ' ';
    } else if (text[i] == '%' && i + 2 < text.size()) {
      out +=
          static_cast<char>(std::strtol(std::string(text.substr(i + 1, 2)).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += text[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseForm(std::string_view body) {
  std::map<std::string, std::string> form;
  while (!body.empty()) {
    size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    size_t eq = pair.find('=');
    if (eq != std::string_view::npos) {
      form[FormDecode(pair.substr(0, eq))] = FormDecode(pair.substr(eq + 1));
    }
    body = amp == std::string_view::npos ? std::string_view() : body.substr(amp + 1);
  }
  return form;
}

json::value FcmError(int code, const char* status, const char* error_code) {
  json::object error{{"code", code}, {"message", "stand-in"}, {"status", status}};
  if (error_code != nullptr) {
    error["details"] =
        json::array{json::object{{"@type", "type.googleapis.com/google.firebase.fcm.v1.FcmError"},
                                 {"errorCode", error_code}}};
  }
  return json::object{{"error", std::move(error)}};
}

// Google's token endpoint and FCM's send endpoint, each a real server.
class FcmStandIn {
 public:
  explicit FcmStandIn(EVP_PKEY* account_key) : account_key_(account_key) {
    token_server_.SetHandler([this](const HttpTestRequest& r) { return Token(r); });
    fcm_server_.SetHandler([this](const HttpTestRequest& r) { return Send(r); });
  }

  bool ok() const { return token_server_.ok() && fcm_server_.ok(); }
  std::string token_uri() const { return token_server_.url() + "/token"; }
  std::string fcm_url() const { return fcm_server_.url(); }
  HttpTestServer& token_server() { return token_server_; }
  HttpTestServer& fcm_server() { return fcm_server_; }

  // Knobs, for the requests that come after.
  void SetExpiresIn(int64_t seconds) {
    std::lock_guard lock(mu_);
    expires_in_ = seconds;
  }
  void SetTokenFailure(int status) {
    std::lock_guard lock(mu_);
    token_failure_ = status;
  }
  void SetHoldTokens(bool hold) {
    std::lock_guard lock(mu_);
    hold_tokens_ = hold;
  }
  void RevokeIssued() {
    std::lock_guard lock(mu_);
    for (const auto& token : issued_) revoked_.insert(token);
  }
  void SetAlways401(bool on) {
    std::lock_guard lock(mu_);
    always_401_ = on;
  }

  int token_requests() const {
    std::lock_guard lock(mu_);
    return token_requests_;
  }
  std::vector<std::string> issued() const {
    std::lock_guard lock(mu_);
    return issued_;
  }
  // What the stand-ins found wrong in the provider's requests (and forgets it).
  std::vector<std::string> TakeProblems() {
    std::lock_guard lock(mu_);
    return std::exchange(problems_, {});
  }

 private:
  // Checks the JWT bearer grant's assertion as Google does; "" if good.
  std::string CheckAssertion(const std::string& jwt) const {
    size_t dot1 = jwt.find('.');
    size_t dot2 = jwt.find('.', dot1 + 1);
    if (dot1 == std::string::npos || dot2 == std::string::npos) return "assertion: not a JWT";
    std::string header_text, claims_text, signature;
    if (!absl::WebSafeBase64Unescape(jwt.substr(0, dot1), &header_text) ||
        !absl::WebSafeBase64Unescape(jwt.substr(dot1 + 1, dot2 - dot1 - 1), &claims_text) ||
        !absl::WebSafeBase64Unescape(jwt.substr(dot2 + 1), &signature)) {
      return "assertion: not base64url";
    }
    if (jwt.find('=') != std::string::npos) return "assertion: padded";
    if (!VerifyRs256(account_key_, jwt.substr(0, dot2), signature)) return "assertion: signature";
    boost::system::error_code ec;
    json::value header = json::parse(header_text, ec);
    if (ec || header != json::parse(R"({"alg":"RS256","typ":"JWT","kid":"key-id-1"})")) {
      return "assertion: header " + header_text;
    }
    json::value claims = json::parse(claims_text, ec);
    if (ec || !claims.is_object()) return "assertion: claims";
    const json::object& c = claims.as_object();
    if (!c.contains("iss") || c.at("iss") != kEmail) return "assertion: iss";
    if (!c.contains("scope") || c.at("scope") != kScope) return "assertion: scope";
    if (!c.contains("aud") || c.at("aud") != json::value(token_uri())) return "assertion: aud";
    if (!c.contains("iat") || !c.at("iat").is_int64() ||
        std::abs(c.at("iat").as_int64() - NowSeconds()) > 60) {
      return "assertion: iat";
    }
    if (!c.contains("exp") || !c.at("exp").is_int64() ||
        c.at("exp").as_int64() != c.at("iat").as_int64() + 3600) {
      return "assertion: exp";
    }
    return "";
  }

  HttpTestAnswer Token(const HttpTestRequest& r) {
    std::string problem;
    auto form = ParseForm(r.body);
    if (r.method != "POST" || r.target != "/token") {
      problem = "token: " + r.method + " " + r.target;
    } else if (r.Header("content-type") != "application/x-www-form-urlencoded") {
      problem = "token: content-type";
    } else if (form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer") {
      problem = "token: grant_type";
    } else {
      problem = CheckAssertion(form["assertion"]);
    }
    std::lock_guard lock(mu_);
    ++token_requests_;
    if (!problem.empty()) {
      problems_.push_back(problem);
      return {.status = 400, .body = R"({"error":"invalid_grant","error_description":"bad"})"};
    }
    if (token_failure_ != 0) {
      return {.status = token_failure_, .body = R"({"error":"temporarily_unavailable"})"};
    }
    std::string token = "ya29.access-" + std::to_string(issued_.size() + 1);
    issued_.push_back(token);
    return {
        .body = json::serialize(json::object{
            {"access_token", token}, {"expires_in", expires_in_}, {"token_type", "Bearer"}}),
        .action = hold_tokens_ ? HttpTestAnswer::Action::kHold : HttpTestAnswer::Action::kAnswer};
  }

  HttpTestAnswer Send(const HttpTestRequest& r) {
    std::lock_guard lock(mu_);
    if (r.method != "POST" || r.target != kSendPath) {
      problems_.push_back("send: " + r.method + " " + r.target);
      return {.status = 404, .body = json::serialize(FcmError(404, "NOT_FOUND", nullptr))};
    }
    std::string auth(r.Header("authorization"));
    std::string token = auth.rfind("Bearer ", 0) == 0 ? auth.substr(7) : "";
    bool known = std::find(issued_.begin(), issued_.end(), token) != issued_.end();
    if (always_401_ || !known || revoked_.count(token) != 0) {
      return {.status = 401, .body = json::serialize(FcmError(401, "UNAUTHENTICATED", nullptr))};
    }
    if (r.Header("content-type").rfind("application/json", 0) != 0) {
      problems_.push_back("send: content-type");
    }
    boost::system::error_code ec;
    json::value body = json::parse(r.body, ec);
    if (ec || !body.is_object() || !body.as_object().contains("message") ||
        !body.at("message").is_object() || !body.at("message").as_object().contains("token")) {
      problems_.push_back("send: body " + r.body);
      return {.status = 400, .body = json::serialize(FcmError(400, "INVALID_ARGUMENT", nullptr))};
    }
    std::string device = json::value_to<std::string>(body.at("message").at("token"));
    if (device == "gone-token") {
      return {.status = 404, .body = json::serialize(FcmError(404, "NOT_FOUND", "UNREGISTERED"))};
    }
    if (device == "bad-token") {
      return {.status = 400,
              .body = json::serialize(FcmError(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"))};
    }
    if (device == "mismatch-token") {
      return {.status = 403,
              .body = json::serialize(FcmError(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"))};
    }
    if (device == "busy-token") {
      return {.status = 429,
              .headers = {{"Retry-After", "5"}},
              .body = json::serialize(FcmError(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"))};
    }
    if (device == "down-token") {
      return {.status = 503, .body = json::serialize(FcmError(503, "UNAVAILABLE", "UNAVAILABLE"))};
    }
    if (device == "broken-token") {
      return {.status = 500, .body = json::serialize(FcmError(500, "INTERNAL", "INTERNAL"))};
    }
    return {.body =
                R"({"name":"projects/mpim-test/messages/0:1500415314455276%31bd1c9631bd1c96"})"};
  }

  EVP_PKEY* const account_key_;
  mutable std::mutex mu_;
  int64_t expires_in_ = 3600;
  int token_failure_ = 0;
  bool hold_tokens_ = false;
  bool always_401_ = false;
  int token_requests_ = 0;
  std::vector<std::string> issued_;
  std::set<std::string> revoked_;
  std::vector<std::string> problems_;
  // Last: their threads stop before the state above goes.
  HttpTestServer token_server_;
  HttpTestServer fcm_server_;
};

std::string Credentials(const std::string& token_uri, const std::string& pem,
                        const std::string& drop = "") {
  json::object o{{"type", "service_account"},
                 {"project_id", kProject},
                 {"private_key_id", kKeyId},
                 {"private_key", pem},
                 {"client_email", kEmail},
                 {"client_id", "1234567890"},
                 {"auth_uri", "https://accounts.google.com/o/oauth2/auth"},
                 {"token_uri", token_uri}};
  if (!drop.empty()) o.erase(drop);
  return json::serialize(o);
}

class FcmProviderTest : public HttpProviderTest {
 protected:
  static void SetUpTestSuite() { key_ = new RsaKey(); }
  static void TearDownTestSuite() {
    delete key_;
    key_ = nullptr;
  }

  void Make(int64_t timeout_ms = 5000) {
    ASSERT_TRUE(standin_.ok());
    auto made = MakeFcmProvider({.url = standin_.fcm_url(),
                                 .credentials_json = Credentials(standin_.token_uri(), key_->pem),
                                 .timeout_ms = timeout_ms},
                                io_);
    ASSERT_TRUE(made.ok()) << made.status();
    provider = std::move(*made);
  }

  // The messages FCM got, parsed.
  std::vector<json::object> Messages() {
    std::vector<json::object> out;
    for (const auto& request : standin_.fcm_server().requests()) {
      out.push_back(json::parse(request.body).at("message").as_object());
    }
    return out;
  }

  void TearDown() override {
    auto problems = standin_.TakeProblems();
    EXPECT_TRUE(problems.empty()) << problems[0];
    HttpProviderTest::TearDown();
  }

  static RsaKey* key_;
  FcmStandIn standin_{key_->key};
};

RsaKey* FcmProviderTest::key_ = nullptr;

TEST_F(FcmProviderTest, SendsTheMessageWithAnAccessToken) {
  Make();
  EXPECT_EQ(provider->name(), "fcm");
  Result result = SendOne(TestPush("d1", "device-token-1", "fcm"));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  EXPECT_GT(result.seconds, 0);
  EXPECT_EQ(standin_.token_requests(), 1);

  auto requests = standin_.fcm_server().requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].Header("authorization"), "Bearer " + standin_.issued().at(0));
  EXPECT_EQ(json::parse(requests[0].body), json::parse(R"({"message":{
      "token":"device-token-1",
      "notification":{"title":"New message","body":"hello there"},
      "data":{"conv_id":"p:1001:1002","seq":"42","msg_id":"555","from":"1002","badge":"3"},
      "android":{"collapse_key":"p:1001:1002"},
      "apns":{"payload":{"aps":{"badge":3}}}}})"));
}

TEST_F(FcmProviderTest, NoPreviewNoNotification) {
  Make();
  Result result = SendOne(TestPush("d1", "device-token-1", "fcm", std::nullopt));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  auto messages = Messages();
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_FALSE(messages[0].contains("notification"));
  EXPECT_EQ(messages[0].at("data").at("badge"), "3");
}

TEST_F(FcmProviderTest, OneTokenServesManySends) {
  Make();
  std::vector<Push> pushes;
  for (int i = 0; i < 20; ++i) pushes.push_back(TestPush("d" + std::to_string(i), "tok", "fcm"));
  auto results = SendAll(std::move(pushes));  // at once: all wait for the one token request
  ASSERT_TRUE(results.ok()) << results.status();
  for (const Result& result : *results) EXPECT_EQ(result.outcome, Outcome::kDelivered);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(SendOne(TestPush("later", "tok", "fcm")).outcome, Outcome::kDelivered);
  }
  EXPECT_EQ(standin_.token_requests(), 1);
  EXPECT_EQ(standin_.fcm_server().request_count(), 23u);
}

TEST_F(FcmProviderTest, AnExpiringTokenIsRenewed) {
  standin_.SetExpiresIn(1);  // reused for half its life: 500 ms
  Make();
  ASSERT_EQ(SendOne(TestPush("d", "tok", "fcm")).outcome, Outcome::kDelivered);
  ASSERT_EQ(standin_.token_requests(), 1);
  size_t sends = 1;
  auto deadline = std::chrono::steady_clock::now() + kProviderWait;
  while (standin_.token_requests() < 2 && std::chrono::steady_clock::now() < deadline) {
    ASSERT_EQ(SendOne(TestPush("d", "tok", "fcm")).outcome, Outcome::kDelivered);
    ++sends;
  }
  ASSERT_EQ(standin_.token_requests(), 2);
  auto requests = standin_.fcm_server().requests();
  EXPECT_EQ(requests.front().Header("authorization"), "Bearer " + standin_.issued().at(0));
  EXPECT_EQ(requests.back().Header("authorization"), "Bearer " + standin_.issued().at(1));
  // Renewed ahead of time: no send went twice after a 401.
  EXPECT_EQ(requests.size(), sends);
}

TEST_F(FcmProviderTest, A401GetsANewTokenAndTheSendOnceMore) {
  Make();
  ASSERT_EQ(SendOne(TestPush("d", "tok", "fcm")).outcome, Outcome::kDelivered);
  standin_.RevokeIssued();
  Result result = SendOne(TestPush("d", "tok", "fcm"));
  EXPECT_EQ(result.outcome, Outcome::kDelivered) << result.detail;
  EXPECT_EQ(standin_.token_requests(), 2);
  auto requests = standin_.fcm_server().requests();
  ASSERT_EQ(requests.size(), 3u);  // delivered, 401, delivered
  EXPECT_EQ(requests[1].Header("authorization"), "Bearer " + standin_.issued().at(0));
  EXPECT_EQ(requests[2].Header("authorization"), "Bearer " + standin_.issued().at(1));
}

TEST_F(FcmProviderTest, A401ThatANewTokenDoesNotCureIsRetriedLater) {
  Make();
  standin_.SetAlways401(true);
  Result result = SendOne(TestPush("d", "tok", "fcm"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "401 UNAUTHENTICATED");
  EXPECT_EQ(standin_.token_requests(), 2);  // the first, and one renewal
  EXPECT_EQ(standin_.fcm_server().request_count(), 2u);
}

TEST_F(FcmProviderTest, EachAnswerHasItsOutcome) {
  Make();
  struct Case {
    const char* token;
    Outcome outcome;
    const char* detail;
    int64_t retry_after_ms;
  };
  const std::vector<Case> cases = {
      {"fine-token", Outcome::kDelivered, "200", 0},
      {"gone-token", Outcome::kTokenGone, "404 UNREGISTERED", 0},
      {"bad-token", Outcome::kRejected, "400 INVALID_ARGUMENT", 0},
      {"mismatch-token", Outcome::kRejected, "403 SENDER_ID_MISMATCH", 0},
      {"busy-token", Outcome::kRetry, "429 QUOTA_EXCEEDED", 5000},
      {"down-token", Outcome::kRetry, "503 UNAVAILABLE", 0},
      {"broken-token", Outcome::kRetry, "500 INTERNAL", 0},
  };
  std::vector<Push> pushes;
  for (const Case& c : cases) pushes.push_back(TestPush(c.token, c.token, "fcm"));
  auto results = SendAll(std::move(pushes));
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const Result& result = (*results)[i];
    EXPECT_EQ(result.outcome, cases[i].outcome) << cases[i].token;
    EXPECT_EQ(result.detail, cases[i].detail);
    EXPECT_EQ(result.retry_after_ms, cases[i].retry_after_ms) << cases[i].token;
  }
}

TEST_F(FcmProviderTest, ATokenEndpointThatIsDownAnswersRetry) {
  uint16_t port = core::FreeLoopbackPort();
  ASSERT_NE(port, 0);
  auto made =
      MakeFcmProvider({.url = standin_.fcm_url(),
                       .credentials_json = Credentials(
                           "http://127.0.0.1:" + std::to_string(port) + "/token", key_->pem)},
                      io_);
  ASSERT_TRUE(made.ok()) << made.status();
  provider = std::move(*made);
  auto results = SendAll({TestPush("a", "tok", "fcm"), TestPush("b", "tok", "fcm")});
  ASSERT_TRUE(results.ok()) << results.status();
  for (const Result& result : *results) {
    EXPECT_EQ(result.outcome, Outcome::kRetry);
    EXPECT_EQ(result.detail,
              "oauth2 token: connect 127.0.0.1:" + std::to_string(port) + ": connection refused");
  }
  EXPECT_EQ(standin_.fcm_server().request_count(), 0u);
}

TEST_F(FcmProviderTest, ATokenEndpointErrorAnswersRetryAndIsNotCached) {
  Make();
  standin_.SetTokenFailure(503);
  Result result = SendOne(TestPush("a", "tok", "fcm"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "oauth2 token: HTTP 503 temporarily_unavailable");
  standin_.SetTokenFailure(0);
  EXPECT_EQ(SendOne(TestPush("a", "tok", "fcm")).outcome, Outcome::kDelivered);
  EXPECT_EQ(standin_.token_requests(), 2);
}

TEST_F(FcmProviderTest, TheTokenEndpointChecksTheSignature) {
  RsaKey other;  // not the account's key: the stand-in must refuse the grant
  auto made = MakeFcmProvider(
      {.url = standin_.fcm_url(), .credentials_json = Credentials(standin_.token_uri(), other.pem)},
      io_);
  ASSERT_TRUE(made.ok()) << made.status();
  provider = std::move(*made);
  Result result = SendOne(TestPush("a", "tok", "fcm"));
  EXPECT_EQ(result.outcome, Outcome::kRetry);
  EXPECT_EQ(result.detail, "oauth2 token: HTTP 400 invalid_grant");
  auto problems = standin_.TakeProblems();  // expected here; TearDown checks for others
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0], "assertion: signature");
}

TEST_F(FcmProviderTest, DestroyingItAnswersPushesWaitingForAToken) {
  standin_.SetHoldTokens(true);
  Make();
  auto future = Start({TestPush("a", "tok", "fcm"), TestPush("b", "tok", "fcm")});
  ASSERT_TRUE(standin_.token_server().WaitForHeld(1, kProviderWait));
  DestroyAndExpectRetries(future, 2, "oauth2 token: client shut down");
  EXPECT_EQ(standin_.token_requests(), 1);
  standin_.token_server().ReleaseHeld();
}

TEST_F(FcmProviderTest, BadCredentialsNameTheField) {
  for (const char* field :
       {"type", "project_id", "private_key_id", "private_key", "client_email", "token_uri"}) {
    auto made = MakeFcmProvider(
        {.credentials_json = Credentials(standin_.token_uri(), key_->pem, field)}, io_);
    ASSERT_FALSE(made.ok()) << field;
    EXPECT_EQ(made.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(made.status().message().find(field), std::string::npos) << made.status();
  }
  auto not_json = MakeFcmProvider({.credentials_json = "{not json"}, io_);
  EXPECT_EQ(not_json.status().code(), absl::StatusCode::kInvalidArgument);

  EVP_PKEY* ec_key = EVP_EC_gen("P-256");
  std::string ec_pem = PrivateKeyPem(ec_key);
  EVP_PKEY_free(ec_key);
  auto not_rsa =
      MakeFcmProvider({.credentials_json = Credentials(standin_.token_uri(), ec_pem)}, io_);
  ASSERT_FALSE(not_rsa.ok());
  EXPECT_NE(not_rsa.status().message().find("private_key"), std::string::npos);
  // The key's text never shows in a message.
  EXPECT_EQ(not_rsa.status().message().find("BEGIN"), std::string::npos);

  auto bad_url = MakeFcmProvider(
      {.url = "fcm.example", .credentials_json = Credentials(standin_.token_uri(), key_->pem)},
      io_);
  EXPECT_EQ(bad_url.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mpim::service::push
