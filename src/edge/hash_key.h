// What the edge's hashing balancers place (edge.hash_key): the user of an
// access token, the client's address, a header, or a cookie. Pure
// functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mpim::edge {

class HashKey {
 public:
  enum class Kind { kUser, kAddress, kHeader, kCookie };

  // "user", "address", "header:NAME" or "cookie:NAME"; invalid_argument
  // otherwise.
  static core::StatusOr<HashKey> Parse(std::string_view text);

  Kind kind() const { return kind_; }
  // The request header RequestKey needs: Authorization (user), Cookie
  // (cookie), NAME (header); empty for address.
  const std::string& header() const { return header_; }

  // The key of a request: `target` is its request target (path and query),
  // `header_value` the value of header() (empty when absent), `client_ip`
  // the peer's address. nullopt when the request carries none (it then goes
  // to any upstream). For user: the access token's subject, from
  // `Authorization: Bearer` or else a `token` query parameter (protocol.md's
  // WebSocket authentication); read without checking the signature, for
  // placement only (the gateway checks it).
  std::optional<std::string> Of(std::string_view target, std::string_view header_value,
                                std::string_view client_ip) const;

 private:
  Kind kind_ = Kind::kAddress;
  std::string header_;
  std::string cookie_;  // the cookie's name
};

// The value of query parameter `name` in `target` ("/ws?token=abc"),
// percent-decoded; nullopt when absent.
std::optional<std::string> QueryParam(std::string_view target, std::string_view name);

// The value of cookie `name` in a Cookie header; nullopt when absent.
std::optional<std::string_view> CookieValue(std::string_view cookie_header, std::string_view name);

}  // namespace mpim::edge
