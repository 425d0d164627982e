// The FCM provider (provider.h; protocol.md section 4): each push is an
// HTTP/1.1 POST <url>/v1/projects/<project_id>/messages:send (FCM HTTP v1,
// net/http_client.h: keep-alive, at most max_connections at once) with
//   {"message":{"token":<device token>,
//               "notification":{"title":"New message","body":<preview>},
//               "data":{"conv_id","seq","msg_id","from","badge"},
//               "android":{"collapse_key":<conv_id>},
//               "apns":{"payload":{"aps":{"badge":<badge>}}}}}
// ("notification" only with a preview; data values are strings, as FCM
// requires), authorized by an OAuth2 access token.
//
// The token: an RS256 JWT {"alg":"RS256","typ":"JWT","kid":private_key_id}
// {"iss":client_email,"scope":".../auth/firebase.messaging","aud":token_uri,
// "iat":now,"exp":now+3600} signed with the service account's key and POSTed
// to its token_uri (the JWT bearer grant, RFC 7523). The answer is reused
// until 5 minutes before it expires (half its life if that is shorter), or
// until FCM answers 401 (then a new one, and the push once more). One token
// request at a time: sends that need a token meanwhile wait for it; if it
// fails they are answered retry ("oauth2 token: ...").
//
// Outcomes: 200 delivered; 404 (NOT_FOUND, UNREGISTERED) token gone; 429,
// 5xx, timeouts and connection errors retry (Retry-After into
// retry_after_ms), as is a 401 that a new token did not cure (the fault is
// ours, not the push's); other 4xx rejected. Result::detail is "<status>
// <FCM's error code>" ("400 INVALID_ARGUMENT") or the connection's error;
// never the token, the access token or the key.
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

struct FcmOptions {
  std::string url = "https://fcm.googleapis.com";
  // The service account's key file's contents (JSON): type
  // ("service_account"), project_id, private_key_id, private_key (PEM RSA),
  // client_email, token_uri.
  std::string credentials_json;
  int64_t timeout_ms = 10000;  // per request (a token's or a send's)
  int max_connections = 16;    // per origin (FCM's, the token endpoint's)
  std::string tls_ca_file;     // empty: the system's CAs
};

// invalid_argument naming the missing or bad field of the credentials, or
// what else is wrong (a bad url, a CA file that cannot be loaded, limits out
// of range). Network I/O runs on `io` (see provider.h for the threads).
absl::StatusOr<std::unique_ptr<Provider>> MakeFcmProvider(FcmOptions options,
                                                          boost::asio::io_context& io);

}  // namespace mpim::service::push
