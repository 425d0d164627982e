#include "service/push/webhook_provider.h"

#include <openssl/evp.h>

#include <boost/json.hpp>
#include <chrono>
#include <utility>

#include "net/http_client.h"
#include "service/push/http_push.h"
#include "service/push/notification.h"

namespace mpim::service::push {
namespace {

// Lowercase hex of HMAC-SHA256(key, data); empty if OpenSSL fails.
std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  size_t size = 0;
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, key.data(), key.size(),
                reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, sizeof mac,
                &size) == nullptr) {
    return {};
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex += kHex[mac[i] >> 4];
    hex += kHex[mac[i] & 0xF];
  }
  return hex;
}

std::string Body(const Push& push) {
  boost::json::object device;
  device["device_id"] = std::to_string(push.device.device_id);
  device["user_id"] = std::to_string(push.device.user_id);
  device["platform"] = push.device.platform;
  device["token"] = push.device.token;
  return "{\"device\":" + boost::json::serialize(device) +
         ",\"notification\":" + NotificationJson(push.notification) + "}";
}

class WebhookProvider : public Provider {
 public:
  WebhookProvider(WebhookOptions options, std::unique_ptr<net::HttpClient> client)
      : options_(std::move(options)), client_(std::move(client)) {}

  // Answers what is in flight (retry) before it returns.
  ~WebhookProvider() override { client_->Shutdown(); }

  std::string_view name() const override { return "webhook"; }

  void Send(std::vector<Push> pushes, SendDone done) override {
    auto batch = ResultBatch::Make(pushes.size(), std::move(done));
    for (size_t i = 0; i < pushes.size(); ++i) {
      std::string body = Body(pushes[i]);
      std::string signature = HmacSha256Hex(options_.secret, body);
      if (signature.empty()) {
        batch->Set(i, ResultOfError("hmac: OpenSSL failed", 0));
        continue;
      }
      net::Headers headers = {{"Content-Type", "application/json"},
                              {"X-MPIM-Signature", "sha256=" + signature},
                              {"X-MPIM-Delivery", pushes[i].delivery_id}};
      auto start = std::chrono::steady_clock::now();
      client_->Request(
          "POST", options_.url, std::move(headers), std::move(body), options_.timeout_ms,
          [batch, i, start](core::StatusOr<net::HttpClientResponse> answer) {
            double seconds = SecondsSince(start);
            if (!answer.ok()) {
              return batch->Set(i, ResultOfError(std::string(answer.status().message()), seconds));
            }
            batch->Set(i, ResultOfAnswer(answer->status, answer->status == 410,
                                         answer->Header("retry-after"),
                                         "HTTP " + std::to_string(answer->status), seconds));
          });
    }
  }

 private:
  const WebhookOptions options_;
  const std::unique_ptr<net::HttpClient> client_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Provider>> MakeWebhookProvider(WebhookOptions options,
                                                              boost::asio::io_context& io) {
  if (options.secret.empty()) {
    return absl::InvalidArgumentError("the signature's secret (push.webhook_secret) is empty");
  }
  auto client = MakeProviderClient(options.url, options.timeout_ms, options.max_connections,
                                   options.tls_ca_file, io);
  if (!client.ok()) return client.status();
  return std::make_unique<WebhookProvider>(std::move(options), std::move(*client));
}

}  // namespace mpim::service::push
