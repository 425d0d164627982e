// Access tokens: JWTs signed with HMAC-SHA256 (RFC 7519, RFC 7515), header
// {"alg":"HS256","typ":"JWT","kid":...}, claims sub (user id), sid (session
// id), iat and exp (seconds since the epoch). Ids are decimal strings.
//
// Pure functions, thread-safe. Verification accepts only HS256, only a `kid`
// among the given keys, compares signatures in constant time, and answers
// every failure with unauthenticated (the message says which check failed,
// for logs and for the client alike: none of them is a secret).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mpim::service::auth {

struct TokenKey {
  std::string kid;
  std::string secret;  // raw bytes, at least 32
};

struct AccessClaims {
  int64_t user_id = 0;
  int64_t session_id = 0;
  int64_t iat = 0;  // seconds
  int64_t exp = 0;  // seconds
  std::string kid;  // of the key that signed it (filled in by Verify)
};

std::string SignAccessToken(const TokenKey& key, const AccessClaims& claims);

// Checks structure, algorithm, key id, signature and expiry (exp > now_s).
core::StatusOr<AccessClaims> VerifyAccessToken(std::string_view token,
                                               std::span<const TokenKey> keys, int64_t now_s);

// The token's subject (user id) read WITHOUT checking the signature or the
// expiry: for routing only (the edge places a user's connections by it),
// never for authentication. invalid_argument when it cannot be read.
core::StatusOr<int64_t> UnverifiedSubject(std::string_view token);

// base64url without padding (RFC 4648 section 5).
std::string Base64UrlEncode(std::string_view bytes);
core::StatusOr<std::string> Base64UrlDecode(std::string_view text);

// HMAC-SHA256 of `data` under `key` (32 raw bytes).
std::string HmacSha256(std::string_view key, std::string_view data);

}  // namespace mpim::service::auth
