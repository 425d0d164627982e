#include "service/push/fcm_provider.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <chrono>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "net/http_client.h"
#include "service/push/http_push.h"

namespace mpim::service::push {
namespace {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr char kScope[] = "https://www.googleapis.com/auth/firebase.messaging";
constexpr char kGrantType[] = "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer";
constexpr int64_t kAssertionLifetimeS = 3600;
constexpr int64_t kRenewMarginMs = 5 * 60 * 1000;
constexpr int64_t kDefaultTokenLifetimeS = 3600;

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

struct ServiceAccount {
  std::string project_id;
  std::string private_key_id;
  std::string client_email;
  std::string token_uri;
  Pkey key;
};

absl::Status Bad(std::string_view field, std::string_view what) {
  return absl::InvalidArgumentError("credentials: " + std::string(field) + " " + std::string(what));
}

core::StatusOr<ServiceAccount> ParseServiceAccount(std::string_view text) {
  boost::system::error_code ec;
  json::value parsed = json::parse(text, ec);
  if (ec || !parsed.is_object()) return absl::InvalidArgumentError("credentials: not JSON");
  const json::object& o = parsed.as_object();
  std::string fields[6];
  const char* names[6] = {"type",        "project_id",   "private_key_id",
                          "private_key", "client_email", "token_uri"};
  for (int i = 0; i < 6; ++i) {
    const json::value* field = o.if_contains(names[i]);
    if (field == nullptr || !field->is_string() || field->as_string().empty()) {
      return Bad(names[i], "is missing or not a string");
    }
    fields[i] = std::string(field->as_string());
  }
  if (fields[0] != "service_account") return Bad("type", "is not \"service_account\"");
  ServiceAccount account{.project_id = fields[1],
                         .private_key_id = fields[2],
                         .client_email = fields[4],
                         .token_uri = fields[5]};
  // It goes into the send URL's path.
  if (!std::all_of(account.project_id.begin(), account.project_id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
               c == ':';
      })) {
    return Bad("project_id", "has characters a project id cannot have");
  }
  BIO* bio = BIO_new_mem_buf(fields[3].data(), static_cast<int>(fields[3].size()));
  account.key.reset(bio == nullptr ? nullptr
                                   : PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr));
  BIO_free(bio);
  ERR_clear_error();
  if (account.key == nullptr || EVP_PKEY_base_id(account.key.get()) != EVP_PKEY_RSA) {
    return Bad("private_key", "is not a PEM RSA private key");
  }
  auto token_uri = net::ParseHttpUrl(account.token_uri);
  if (!token_uri.ok()) return Bad("token_uri", std::string(token_uri.status().message()));
  return account;
}

// RSASSA-PKCS1-v1_5 with SHA-256 (RS256); empty if OpenSSL fails.
std::string SignRs256(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string signature;
  size_t size = 0;
  const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
  if (ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
      EVP_DigestSign(ctx, nullptr, &size, bytes, data.size()) == 1) {
    signature.resize(size);
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &size, bytes,
                       data.size()) == 1) {
      signature.resize(size);
    } else {
      signature.clear();
    }
  }
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return signature;
}

// application/x-www-form-urlencoded value.
std::string FormEncode(std::string_view value) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (std::isalnum(byte) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

// FCM's error code in an error answer: details[].errorCode, else
// error.status ("UNREGISTERED", "INVALID_ARGUMENT"); empty if none.
std::string FcmErrorCode(std::string_view body) {
  boost::system::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) return {};
  const json::value* error = parsed.as_object().if_contains("error");
  if (error == nullptr || !error->is_object()) return {};
  if (const json::value* details = error->as_object().if_contains("details");
      details != nullptr && details->is_array()) {
    for (const json::value& detail : details->as_array()) {
      const json::value* code =
          detail.is_object() ? detail.as_object().if_contains("errorCode") : nullptr;
      if (code != nullptr && code->is_string()) return std::string(code->as_string());
    }
  }
  const json::value* status = error->as_object().if_contains("status");
  if (status != nullptr && status->is_string()) return std::string(status->as_string());
  return {};
}

std::string MessageBody(const Push& push) {
  const Notification& n = push.notification;
  json::object message;
  message["token"] = push.device.token;
  if (n.preview)
    message["notification"] = json::object{{"title", "New message"}, {"body", *n.preview}};
  message["data"] = json::object{{"conv_id", n.conv_id},
                                 {"seq", std::to_string(n.seq)},
                                 {"msg_id", std::to_string(n.msg_id)},
                                 {"from", std::to_string(n.from)},
                                 {"badge", std::to_string(n.badge)}};
  message["android"] = json::object{{"collapse_key", n.conv_id}};
  message["apns"] =
      json::object{{"payload", json::object{{"aps", json::object{{"badge", n.badge}}}}}};
  return json::serialize(json::object{{"message", std::move(message)}});
}

class FcmProvider : public Provider {
 public:
  FcmProvider(FcmOptions options, ServiceAccount account, std::unique_ptr<net::HttpClient> client)
      : options_(std::move(options)), account_(std::move(account)), client_(std::move(client)) {
    std::string base = options_.url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    send_url_ = base + "/v1/projects/" + account_.project_id + "/messages:send";
  }

  // Answers what is in flight (retry) before it returns: every callback of
  // the client has run when Shutdown returns, so none touches `this` later.
  ~FcmProvider() override { client_->Shutdown(); }

  std::string_view name() const override { return "fcm"; }

  void Send(std::vector<Push> pushes, SendDone done) override {
    auto batch = ResultBatch::Make(pushes.size(), std::move(done));
    for (size_t i = 0; i < pushes.size(); ++i) {
      SendOne(batch, i, std::make_shared<const Push>(std::move(pushes[i])), false);
    }
  }

 private:
  using TokenDone = std::function<void(core::StatusOr<std::string>)>;

  // `renewed`: the push's token is new after a 401.
  void SendOne(std::shared_ptr<ResultBatch> batch, size_t i, std::shared_ptr<const Push> push,
               bool renewed) {
    WithToken([this, batch, i, push, renewed](core::StatusOr<std::string> token) {
      if (!token.ok())
        return batch->Set(i, ResultOfError(std::string(token.status().message()), 0));
      Post(batch, i, push, *token, renewed);
    });
  }

  void Post(std::shared_ptr<ResultBatch> batch, size_t i, std::shared_ptr<const Push> push,
            const std::string& token, bool renewed) {
    auto start = Clock::now();
    client_->Request(
        "POST", send_url_,
        {{"Content-Type", "application/json; charset=UTF-8"}, {"Authorization", "Bearer " + token}},
        MessageBody(*push), options_.timeout_ms,
        [this, batch, i, push, token, renewed,
         start](core::StatusOr<net::HttpClientResponse> answer) {
          double seconds = SecondsSince(start);
          if (!answer.ok()) {
            return batch->Set(i, ResultOfError(std::string(answer.status().message()), seconds));
          }
          int status = answer->status;
          if (status == 401 && !renewed) {
            DropToken(token);
            return SendOne(batch, i, push, true);
          }
          std::string code = status == 200 ? "" : FcmErrorCode(answer->body);
          std::string detail = std::to_string(status) + (code.empty() ? "" : " " + code);
          if (status == 401) return batch->Set(i, ResultOfError(std::move(detail), seconds));
          batch->Set(i, ResultOfAnswer(status, status == 404 || code == "UNREGISTERED",
                                       answer->Header("retry-after"), std::move(detail), seconds));
        });
  }

  // Calls `done` with a valid access token: the cached one at once, else
  // when the one request under way (started here if none) is answered.
  void WithToken(TokenDone done) {
    std::string token;
    bool fetch = false;
    {
      std::lock_guard lock(mu_);
      if (!token_.empty() && Clock::now() < renew_at_) {
        token = token_;
      } else {
        waiters_.push_back(std::move(done));
        fetch = !fetching_;
        fetching_ = true;
      }
    }
    if (!token.empty()) return done(std::move(token));
    if (fetch) FetchToken();
  }

  void DropToken(const std::string& token) {
    std::lock_guard lock(mu_);
    if (token_ == token) token_.clear();
  }

  void FetchToken() {
    int64_t now_s = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
    json::object header{{"alg", "RS256"}, {"typ", "JWT"}, {"kid", account_.private_key_id}};
    json::object claims{{"iss", account_.client_email},
                        {"scope", kScope},
                        {"aud", account_.token_uri},
                        {"iat", now_s},
                        {"exp", now_s + kAssertionLifetimeS}};
    std::string input = absl::WebSafeBase64Escape(json::serialize(header)) + "." +
                        absl::WebSafeBase64Escape(json::serialize(claims));
    std::string signature = SignRs256(account_.key.get(), input);
    if (signature.empty()) return TokenReady(absl::InternalError("signing the JWT failed"), 0);
    std::string body = std::string("grant_type=") + kGrantType + "&assertion=" +
                       FormEncode(input + "." + absl::WebSafeBase64Escape(signature));
    client_->Request("POST", account_.token_uri,
                     {{"Content-Type", "application/x-www-form-urlencoded"}}, std::move(body),
                     options_.timeout_ms, [this](core::StatusOr<net::HttpClientResponse> answer) {
                       int64_t lifetime_ms = 0;
                       auto token = TokenOf(answer, lifetime_ms);
                       TokenReady(std::move(token), lifetime_ms);
                     });
  }

  // The access token in the token endpoint's answer, and its lifetime.
  static core::StatusOr<std::string> TokenOf(const core::StatusOr<net::HttpClientResponse>& answer,
                                             int64_t& lifetime_ms) {
    if (!answer.ok()) return answer.status();
    boost::system::error_code ec;
    json::value parsed = json::parse(answer->body, ec);
    const json::object* o = !ec && parsed.is_object() ? &parsed.as_object() : nullptr;
    if (answer->status != 200) {
      // OAuth2's error code ("invalid_grant") says why; it is no secret.
      const json::value* error = o != nullptr ? o->if_contains("error") : nullptr;
      return absl::UnavailableError(
          "HTTP " + std::to_string(answer->status) +
          (error != nullptr && error->is_string() ? " " + std::string(error->as_string()) : ""));
    }
    const json::value* token = o != nullptr ? o->if_contains("access_token") : nullptr;
    if (token == nullptr || !token->is_string() || token->as_string().empty() ||
        !std::all_of(token->as_string().begin(), token->as_string().end(),
                     [](char c) { return c > ' ' && c < 0x7F; })) {
      return absl::UnavailableError("no access_token in the answer");
    }
    if (const json::value* type = o->if_contains("token_type"); type != nullptr) {
      std::string text = type->is_string() ? std::string(type->as_string()) : "";
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      if (text != "bearer") return absl::UnavailableError("token_type is not Bearer");
    }
    int64_t expires_in = kDefaultTokenLifetimeS;
    if (const json::value* expires = o->if_contains("expires_in"); expires != nullptr) {
      auto seconds = expires->to_number<int64_t>(ec);
      if (ec || seconds <= 0) return absl::UnavailableError("bad expires_in in the answer");
      expires_in = seconds;
    }
    lifetime_ms = expires_in * 1000;
    return std::string(token->as_string());
  }

  void TokenReady(core::StatusOr<std::string> token, int64_t lifetime_ms) {
    std::vector<TokenDone> waiters;
    {
      std::lock_guard lock(mu_);
      fetching_ = false;
      waiters.swap(waiters_);
      if (token.ok()) {
        token_ = *token;
        renew_at_ = Clock::now() + std::chrono::milliseconds(
                                       lifetime_ms - std::min(kRenewMarginMs, lifetime_ms / 2));
      }
    }
    if (!token.ok()) {
      token = absl::UnavailableError("oauth2 token: " + std::string(token.status().message()));
    }
    for (auto& waiter : waiters) waiter(token);
  }

  const FcmOptions options_;
  const ServiceAccount account_;
  std::string send_url_;
  std::mutex mu_;      // guards the token's state below
  std::string token_;  // empty: none
  Clock::time_point renew_at_;
  bool fetching_ = false;
  std::vector<TokenDone> waiters_;
  const std::unique_ptr<net::HttpClient> client_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Provider>> MakeFcmProvider(FcmOptions options,
                                                          boost::asio::io_context& io) {
  auto account = ParseServiceAccount(options.credentials_json);
  if (!account.ok()) return account.status();
  auto client = MakeProviderClient(options.url, options.timeout_ms, options.max_connections,
                                   options.tls_ca_file, io);
  if (!client.ok()) return client.status();
  options.credentials_json.clear();  // the key lives on in `account` only
  return std::make_unique<FcmProvider>(std::move(options), std::move(*account), std::move(*client));
}

}  // namespace mpim::service::push
