// A thin typed wrapper over mpim::client::HttpClient for end-to-end tests of
// the HTTP API (docs/protocol.md section 2): JSON
// requests with an optional bearer token, parsed responses, the usual
// register/login steps, and the JWT/base64url helpers the token tests need
// to take tokens apart and forge bad ones.
//
// Not thread-safe (one HttpClient connection per ApiClient).
#pragma once

#include <gtest/gtest.h>

#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/server_process.h"

namespace mpim::client {
class HttpClient;
}

namespace mpim::testing {

// Every test account uses this unless a test is about passwords.
inline constexpr std::string_view kPassword = "correct horse battery";

struct ApiResponse {
  int status = 0;  // 0 when the request could not be sent at all
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  boost::json::value json;      // null when the body is empty or not JSON
  std::string transport_error;  // why status is 0

  std::string Header(std::string_view name) const;  // "" if absent
  // json["error"]["code"] if present, else "".
  std::string ErrorCode() const;
  // For failure messages: "<status> <body>".
  std::string Describe() const;
};

// Everything POST /auth/login returns.
struct Session {
  std::string user_id;
  std::string session_id;
  std::string access_token;
  std::string refresh_token;
  int64_t expires_in = 0;
};

// A registered and logged-in account.
struct Account {
  std::string username;
  std::string password;
  Session session;
  const std::string& id() const { return session.user_id; }
  const std::string& token() const { return session.access_token; }
};

class ApiClient {
 public:
  explicit ApiClient(uint16_t port);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // `target` is the full request target ("/api/v1/users/me"). A non-empty
  // `token` is sent as `Authorization: Bearer <token>`; a non-empty `body`
  // goes with `Content-Type: application/json`.
  ApiResponse Call(const std::string& method, const std::string& target,
                   const std::string& body = "", const std::string& token = "",
                   std::vector<std::pair<std::string, std::string>> headers = {});

  // Shorthands under the /api/v1 prefix.
  ApiResponse Get(const std::string& path, const std::string& token = "");
  ApiResponse Post(const std::string& path, const std::string& body, const std::string& token = "");
  ApiResponse Patch(const std::string& path, const std::string& body,
                    const std::string& token = "");
  ApiResponse Delete(const std::string& path, const std::string& token = "");

  // The value of one series in GET /metrics, written as in the exposition
  // (`name` or `name{label="v",...}`); 0 when absent.
  double Metric(std::string_view series);

  ApiResponse RegisterRaw(std::string_view username, std::string_view password,
                          std::optional<std::string_view> display_name = std::nullopt);
  ApiResponse LoginRaw(std::string_view username, std::string_view password);
  ApiResponse RefreshRaw(std::string_view refresh_token);

  // Register / log in and record a gtest failure (returning empty values)
  // when it does not answer 201 / 200 with the documented fields.
  std::string Register(std::string_view username, std::string_view password = kPassword);
  Session Login(std::string_view username, std::string_view password = kPassword);
  Account NewAccount(std::string_view username, std::string_view password = kPassword);

 private:
  std::unique_ptr<client::HttpClient> http_;
};

// Environment for a test server: cheap Argon2 parameters (the defaults cost
// tens of milliseconds per hash), and login limits and a per-address request
// rate high enough that a whole suite from 127.0.0.1 never trips them.
std::vector<std::pair<std::string, std::string>> FastAuthEnv();

// GET /readyz on `port` (every 50 ms or so, each request given 2 s) until it
// answers `status`; false at the deadline, with the last status seen (0: no
// answer) in `*last`.
bool WaitForReadyz(uint16_t port, int status, std::chrono::milliseconds deadline,
                   int* last = nullptr);

// A fresh valid username (3-32 chars of [a-z0-9_.-]) starting with `prefix`
// (at most 20 chars), unique within this process.
std::string UniqueName(std::string_view prefix);

// JSON text of a string value, quotes included.
std::string JsonString(std::string_view s);

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

// Success when `r` is an error reply with this HTTP status and protocol code
// and a body of exactly {"error":{"code":"...","message":"..."}} (plus
// "retry_after_ms" inside "error" for rate_limited), served as JSON.
::testing::AssertionResult IsError(const ApiResponse& r, int status, std::string_view code);

// Success when `v` is a user object per docs/protocol.md: user_id (decimal
// string), username, display_name, avatar_url (strings), online (bool) and,
// if present, last_seen (integer).
::testing::AssertionResult IsUserObject(const boost::json::value& v);

// True if `s` is a non-empty string of ASCII digits.
bool IsDecimalId(std::string_view s);

// base64url without padding (RFC 4648 section 5), as JWTs use it.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

std::string HmacSha256(std::string_view key, std::string_view data);

// The three dot-separated parts of a JWT, decoded; nullopt if it is not one.
struct Jwt {
  boost::json::value header;
  boost::json::value payload;
  std::string signing_input;  // "<header b64>.<payload b64>"
  std::string signature;      // raw bytes
};
std::optional<Jwt> DecodeJwt(std::string_view token);

// A compact HS256 JWT of these JSON texts signed with `key`.
std::string SignJwt(std::string_view header_json, std::string_view payload_json,
                    std::string_view key);

}  // namespace mpim::testing
