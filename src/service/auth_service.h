// Accounts and sessions: register, login, token refresh, logout, and the
// check of an access token on every authenticated request.
//
// Asynchronous methods complete through their callback exactly once, on an
// internal thread (store or hashing pool): callers post back to their own
// executor. Authenticate is synchronous and cheap (signature, expiry and an
// in-memory revocation set), safe to call on io threads.
//
// Errors: invalid_argument (bad username/password/fields), already_exists
// (username taken), unauthenticated (bad credentials or tokens),
// rate_limited (login flood), unavailable (storage down, server busy).
//
// Remote: in role `gateway` the asynchronous methods go to a logic node over
// gRPC (same contract; unavailable when none answers in time). Authenticate
// stays local on every gateway: the token is verified with the signing keys,
// and revocations reach each node's revoked-session cache (the bus, in a
// cluster).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/callback.h"
#include "core/status.h"

namespace mpim::service {

// Who is calling: the user and the login session (device) of a valid token.
struct Principal {
  int64_t user_id = 0;
  int64_t session_id = 0;
};

struct RegisterRequest {
  std::string username;
  std::string password;
  std::string display_name;  // empty: the username
  std::string client_address;
};

struct LoginRequest {
  std::string username;
  std::string password;
  std::string device;
  std::string client_address;
};

struct TokenPair {
  std::string access_token;
  std::string refresh_token;
  int64_t expires_in = 0;  // seconds, of the access token
};

struct LoginResult {
  int64_t user_id = 0;
  int64_t session_id = 0;
  TokenPair tokens;
};

class AuthService {
 public:
  virtual ~AuthService() = default;

  // The new user's id.
  virtual void Register(RegisterRequest request, core::Callback<int64_t> done) = 0;
  virtual void Login(LoginRequest request, core::Callback<LoginResult> done) = 0;
  // Rotates the refresh token. A token already rotated away revokes its
  // session (theft detection) and fails with unauthenticated.
  virtual void Refresh(std::string refresh_token, core::Callback<TokenPair> done) = 0;
  // Revokes the caller's session: its access tokens stop working at once.
  virtual void Logout(Principal principal, core::DoneCallback done) = 0;

  virtual core::StatusOr<Principal> Authenticate(std::string_view access_token) const = 0;
};

}  // namespace mpim::service
