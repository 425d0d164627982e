#include "service/push/apns_provider.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <atomic>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <utility>

#include "absl/strings/escaping.h"
#include "service/push/h2_client.h"
#include "service/push/notification.h"

namespace mpim::service::push {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxCollapseId = 64;
constexpr size_t kMaxDeviceToken = 4096;
constexpr size_t kMaxReason = 64;
constexpr int64_t kMaxRetryAfterS = 86400;

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

absl::StatusOr<PkeyPtr> LoadKey(std::string_view pem) {
  if (pem.empty()) return absl::InvalidArgumentError("apns: key_pem is empty");
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  // No passphrase prompt: an encrypted key is refused.
  auto no_passphrase = [](char*, int, int, void*) { return 0; };
  PkeyPtr key(bio ? PEM_read_bio_PrivateKey(bio, nullptr, no_passphrase, nullptr) : nullptr);
  BIO_free(bio);
  ERR_clear_error();
  if (!key) {
    return absl::InvalidArgumentError(
        "apns: key_pem is not a PEM private key (the .p8 file: unencrypted PKCS#8)");
  }
  if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_EC) {
    return absl::InvalidArgumentError("apns: key_pem is not an EC key (ES256 needs P-256)");
  }
  char group[64] = {};
  size_t group_len = 0;
  if (EVP_PKEY_get_group_name(key.get(), group, sizeof group, &group_len) != 1 ||
      (std::string_view(group, group_len) != "prime256v1" &&
       std::string_view(group, group_len) != "P-256")) {
    ERR_clear_error();
    return absl::InvalidArgumentError("apns: key_pem's EC key is not on the P-256 curve");
  }
  return key;
}

// ES256 (RFC 7518 section 3.4): ECDSA P-256 SHA-256, the signature as the
// 64 bytes r || s rather than DER.
absl::StatusOr<std::string> SignEs256(EVP_PKEY* key, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  std::string der;
  size_t der_len = 0;
  const auto* in = reinterpret_cast<const unsigned char*>(data.data());
  bool ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &der_len, in, data.size()) == 1;
  if (ok) {
    der.resize(der_len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &der_len, in,
                        data.size()) == 1;
    der.resize(der_len);
  }
  EVP_MD_CTX_free(ctx);
  ECDSA_SIG* sig = nullptr;
  if (ok) {
    const auto* p = reinterpret_cast<const unsigned char*>(der.data());
    sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
  }
  unsigned char raw[64];
  if (sig != nullptr) {
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
  } else {
    ok = false;
  }
  if (!ok) {
    ERR_clear_error();
    return absl::InternalError("apns: ES256 signing failed");
  }
  return std::string(reinterpret_cast<const char*>(raw), sizeof raw);
}

// The provider token, made anew when it is `refresh` old or Apple called it
// expired. Thread-safe.
class ProviderToken {
 public:
  ProviderToken(PkeyPtr key, std::string key_id, std::string team_id, std::chrono::seconds refresh)
      : key_(std::move(key)),
        key_id_(std::move(key_id)),
        team_id_(std::move(team_id)),
        refresh_(refresh) {}

  absl::StatusOr<std::string> Get() {
    std::lock_guard lock(mu_);
    if (jwt_.empty() || Clock::now() - made_ >= refresh_) return MakeLocked();
    return jwt_;
  }

  // After Apple answered ExpiredProviderToken to `refused`: a new token,
  // unless another push already renewed it (Apple limits renewals).
  absl::StatusOr<std::string> Renew(const std::string& refused) {
    std::lock_guard lock(mu_);
    if (jwt_ == refused) return MakeLocked();
    return jwt_;
  }

 private:
  absl::StatusOr<std::string> MakeLocked() {
    const int64_t iat = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::string header =
        boost::json::serialize(boost::json::object{{"alg", "ES256"}, {"kid", key_id_}});
    const std::string claims =
        boost::json::serialize(boost::json::object{{"iss", team_id_}, {"iat", iat}});
    std::string jwt = absl::WebSafeBase64Escape(header) + "." + absl::WebSafeBase64Escape(claims);
    auto signature = SignEs256(key_.get(), jwt);
    if (!signature.ok()) return signature.status();
    jwt_ = jwt + "." + absl::WebSafeBase64Escape(*signature);
    made_ = Clock::now();
    return jwt_;
  }

  const PkeyPtr key_;
  const std::string key_id_;
  const std::string team_id_;
  const std::chrono::seconds refresh_;
  std::mutex mu_;  // guards jwt_ and made_
  std::string jwt_;
  Clock::time_point made_;
};

bool VisibleAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return !s.empty();
}

// Device tokens go into the path: hex from Apple, unreserved characters
// (RFC 3986) at the most.
bool PathSafe(std::string_view token) {
  if (token.empty() || token.size() > kMaxDeviceToken) return false;
  for (char c : token) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '.' || c == '_' || c == '~';
    if (!ok) return false;
  }
  return true;
}

// apns-id: a UUID (version 8, RFC 9562) from the SHA-256 of the delivery id,
// the same on every retry of one push.
std::string UuidOf(std::string_view delivery_id) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(delivery_id.data()), delivery_id.size(), digest);
  digest[6] = static_cast<unsigned char>((digest[6] & 0x0f) | 0x80);
  digest[8] = static_cast<unsigned char>((digest[8] & 0x3f) | 0x80);
  char text[37];
  std::snprintf(
      text, sizeof text, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
      digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
      digest[8], digest[9], digest[10], digest[11], digest[12], digest[13], digest[14], digest[15]);
  return text;
}

std::string PayloadJson(const Notification& n) {
  boost::json::object alert;
  if (n.preview && !n.preview->empty()) {
    alert["body"] = *n.preview;
  } else {
    alert["title"] = "New message";
  }
  const boost::json::object aps{
      {"alert", std::move(alert)}, {"badge", n.badge}, {"sound", "default"}};
  return R"({"aps":)" + boost::json::serialize(aps) + R"(,"mpim":)" + NotificationJson(n) + "}";
}

// Apple's {"reason":"..."}, kept to characters safe for a log line.
std::string ReasonOf(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(body, ec);
  const boost::json::object* o = ec ? nullptr : v.if_object();
  const boost::json::value* reason = o ? o->if_contains("reason") : nullptr;
  if (reason == nullptr || !reason->is_string()) return "";
  std::string out;
  for (char c : reason->get_string()) {
    if (out.size() == kMaxReason) break;
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '-' || c == '.' || c == '_' || c == ' ';
    out.push_back(ok ? c : '?');
  }
  return out;
}

int64_t RetryAfterMs(std::string_view value) {
  if (value.empty() || value.size() > 6) return 0;  // seconds only, not an HTTP date
  int64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    seconds = seconds * 10 + (c - '0');
  }
  return std::min(seconds, kMaxRetryAfterS) * 1000;
}

Result ResultOf(const H2Response& response, Clock::time_point start) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  Result result;
  if (response.status == 0) {
    result.outcome = Outcome::kRetry;
    result.detail = response.error;
    result.seconds = response.sent ? seconds : 0;
    return result;
  }
  result.seconds = seconds;
  const int status = response.status;
  const std::string reason = ReasonOf(response.body);
  result.detail =
      reason.empty() ? "HTTP " + std::to_string(status) : std::to_string(status) + " " + reason;
  if (status >= 200 && status < 300) {
    result.outcome = Outcome::kDelivered;
  } else if (status == 410) {
    result.outcome = Outcome::kTokenGone;
  } else if (status == 429 || status >= 500) {
    result.outcome = Outcome::kRetry;
    result.retry_after_ms = RetryAfterMs(response.Header("retry-after"));
  } else {
    result.outcome = Outcome::kRejected;
  }
  return result;
}

// One Send's results, handed over when the last push is answered.
class Batch {
 public:
  Batch(size_t size, SendDone done) : results_(size), left_(size), done_(std::move(done)) {}
  void Set(size_t index, Result result) {
    results_[index] = std::move(result);
    if (left_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_(std::move(results_));
  }

 private:
  std::vector<Result> results_;  // each slot written once, by its push
  std::atomic<size_t> left_;
  SendDone done_;
};

class ApnsProvider final : public Provider {
 public:
  ApnsProvider(ApnsOptions options, PkeyPtr key, std::unique_ptr<H2Client> client)
      : options_(std::move(options)),
        token_(std::move(key), options_.key_id, options_.team_id,
               std::chrono::seconds(options_.token_refresh_s)),
        client_(std::move(client)) {}

  absl::Status Check() { return token_.Get().status(); }

  std::string_view name() const override { return "apns"; }

  void Send(std::vector<Push> pushes, SendDone done) override {
    if (pushes.empty()) {
      done({});
      return;
    }
    auto batch = std::make_shared<Batch>(pushes.size(), std::move(done));
    for (size_t i = 0; i < pushes.size(); ++i) {
      const Push& push = pushes[i];
      if (!PathSafe(push.device.token)) {
        batch->Set(i, {.outcome = Outcome::kRejected,
                       .detail = "bad device token (not sent): empty, too long or not "
                                 "[A-Za-z0-9._~-]"});
        continue;
      }
      auto jwt = token_.Get();
      if (!jwt.ok()) {
        batch->Set(i, {.outcome = Outcome::kRetry, .detail = std::string(jwt.status().message())});
        continue;
      }
      Attempt(batch, i, std::make_shared<const H2Request>(RequestOf(push)), *std::move(jwt),
              /*renewed=*/false);
    }
  }

 private:
  H2Request RequestOf(const Push& push) const {
    H2Request request;
    request.path = "/3/device/" + push.device.token;
    request.headers = {
        {"apns-topic", options_.topic},
        {"apns-push-type", "alert"},
        {"apns-priority", "10"},
    };
    const std::string& conv_id = push.notification.conv_id;
    if (conv_id.size() <= kMaxCollapseId && VisibleAscii(conv_id)) {
      request.headers.emplace_back("apns-collapse-id", conv_id);
    }
    if (!push.delivery_id.empty())
      request.headers.emplace_back("apns-id", UuidOf(push.delivery_id));
    request.body = PayloadJson(push.notification);
    return request;
  }

  // Runs `done` callbacks on the client's strand; `this` outlives them (the
  // client, destroyed first, answers what is in flight before it goes).
  void Attempt(std::shared_ptr<Batch> batch, size_t index, std::shared_ptr<const H2Request> base,
               std::string jwt, bool renewed) {
    H2Request request = *base;
    request.headers.emplace(request.headers.begin(), "authorization", "bearer " + jwt);
    const Clock::time_point start = Clock::now();
    client_->Submit(std::move(request), [this, batch = std::move(batch), index,
                                         base = std::move(base), jwt = std::move(jwt), renewed,
                                         start](const H2Response& response) mutable {
      if (response.status == 403 && !renewed && ReasonOf(response.body) == "ExpiredProviderToken") {
        auto fresh = token_.Renew(jwt);
        if (fresh.ok()) {
          Attempt(std::move(batch), index, std::move(base), *std::move(fresh), /*renewed=*/true);
          return;
        }
      }
      batch->Set(index, ResultOf(response, start));
    });
  }

  const ApnsOptions options_;
  ProviderToken token_;
  std::unique_ptr<H2Client> client_;  // last: destroyed first
};

}  // namespace

absl::StatusOr<std::unique_ptr<Provider>> MakeApnsProvider(ApnsOptions options,
                                                           boost::asio::io_context& io) {
  if (options.key_id.empty()) return absl::InvalidArgumentError("apns: key_id is empty");
  if (options.team_id.empty()) return absl::InvalidArgumentError("apns: team_id is empty");
  if (!VisibleAscii(options.topic)) {
    return absl::InvalidArgumentError("apns: topic is empty or not printable ASCII");
  }
  if (options.token_refresh_s < 1 || options.token_refresh_s > 3600) {
    return absl::InvalidArgumentError("apns: token_refresh_s must be in 1..3600");
  }
  auto key = LoadKey(options.key_pem);
  if (!key.ok()) return key.status();
  auto client = H2Client::Make({.url = options.url,
                                .tls_ca_file = options.tls_ca_file,
                                .timeout_ms = options.timeout_ms,
                                .max_concurrent_streams = options.max_concurrent_streams},
                               io);
  if (!client.ok()) {
    return absl::InvalidArgumentError("apns: " + std::string(client.status().message()));
  }
  auto provider =
      std::make_unique<ApnsProvider>(std::move(options), *std::move(key), *std::move(client));
  if (auto made = provider->Check(); !made.ok()) return made;
  return provider;
}

}  // namespace mpim::service::push
