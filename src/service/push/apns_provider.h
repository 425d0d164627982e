// The APNs provider (provider.h; protocol.md section 4): each push is an
// HTTP/2 POST <url>/3/device/<token> to Apple (h2_client.h, one connection
// multiplexing every push), authenticated with a provider token: an ES256
// JWT {"alg":"ES256","kid":key_id} {"iss":team_id,"iat":now} signed with the
// team's .p8 key, reused until it is token_refresh_s old (Apple refuses
// tokens older than an hour and renewals more often than every 20 minutes),
// renewed at once when Apple answers 403 ExpiredProviderToken (the push is
// then sent once more).
//
// Outcomes: 2xx delivered; 410 (Unregistered, ExpiredToken) token gone;
// 429, 5xx, timeouts and connection or TLS errors retry (Retry-After into
// retry_after_ms); every other answer rejected. Result::detail is
// "<status> <reason>" from Apple's JSON body ("400 BadDeviceToken"), or the
// connection's error; never a device token or a credential.
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

struct ApnsOptions {
  std::string url = "https://api.push.apple.com";
  std::string key_pem;  // the .p8 file's contents: PEM PKCS#8 EC P-256 private key
  std::string key_id;
  std::string team_id;
  std::string topic;  // the app's bundle id
  int64_t timeout_ms = 10000;
  std::string tls_ca_file;         // empty: the system's CAs
  int64_t token_refresh_s = 3000;  // renew the provider token when older (1-3600)
  int max_concurrent_streams = 1000;
};

// invalid_argument (with what is wrong) for a key that is not an EC P-256
// private key, an empty key id, team id or topic, a bad url or CA file.
// Network I/O runs on `io` (see provider.h for the threads).
absl::StatusOr<std::unique_ptr<Provider>> MakeApnsProvider(ApnsOptions options,
                                                           boost::asio::io_context& io);

}  // namespace mpim::service::push
