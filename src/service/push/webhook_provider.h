// The webhook provider (provider.h; protocol.md section 4): each push is an
// HTTP/1.1 POST to `url` (net/http_client.h: keep-alive, at most
// max_connections at once) with the JSON
//   {"device":{"device_id":"7","user_id":"1001","platform":"webhook",
//              "token":"..."},"notification":<NotificationJson>}
// and the headers Content-Type: application/json,
// X-MPIM-Signature: sha256=<lowercase hex HMAC-SHA256(secret, raw body)> and
// X-MPIM-Delivery: <delivery id> (the same on every retry of one push).
//
// Outcomes: 2xx delivered; 410 token gone; 429, 5xx, timeouts and connection
// errors retry (Retry-After seconds into retry_after_ms); other statuses
// rejected. Result::detail is "HTTP <status>" or the connection's error
// ("connect 127.0.0.1:8443: connection refused", "timeout after 10000 ms");
// never the token or the secret.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "service/push/provider.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mpim::service::push {

struct WebhookOptions {
  std::string url;     // http:// or https://
  std::string secret;  // the signature's key; not empty
  int64_t timeout_ms = 10000;
  int max_connections = 16;
  std::string tls_ca_file;  // empty: the system's CAs
};

// invalid_argument (saying what is wrong) for a bad url, an empty secret, a
// CA file that cannot be loaded or limits out of range. Network I/O runs on
// `io` (see provider.h for the threads).
absl::StatusOr<std::unique_ptr<Provider>> MakeWebhookProvider(WebhookOptions options,
                                                              boost::asio::io_context& io);

}  // namespace mpim::service::push
