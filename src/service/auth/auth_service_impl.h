// AuthService on a Store: Argon2id on a dedicated pool, HS256 access tokens,
// rotating refresh tokens stored only as SHA-256 hashes, per-username and
// per-address login limits, and the revocation cache.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "cache/cache.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/rate_limiter.h"
#include "core/snowflake.h"
#include "core/worker_pool.h"
#include "service/auth/password_hasher.h"
#include "service/auth/token_keys.h"
#include "service/auth/token_verifier.h"
#include "service/auth_service.h"
#include "store/store.h"

namespace mpim::service::auth {

class AuthServiceImpl final : public AuthService {
 public:
  // All references must outlive the service. `clock` gives token times
  // and the login limits' time. `revoked` holds this node's revoked
  // sessions (never a cache without memory: engine `none` would forget a
  // logout; null: a local one).
  AuthServiceImpl(const core::AuthConfig& config, TokenKeys keys, store::Store& store,
                  core::WorkerPool& hash_pool, core::SnowflakeGenerator& ids, core::Clock& clock,
                  std::unique_ptr<cache::Cache<int64_t, bool>> revoked = nullptr);

  // Loads sessions revoked within the last access-token lifetime into the
  // revocation cache. Call once before serving; blocks the caller.
  core::Status LoadRevocations();

  void Register(RegisterRequest request, core::Callback<int64_t> done) override;
  void Login(LoginRequest request, core::Callback<LoginResult> done) override;
  void Refresh(std::string refresh_token, core::Callback<TokenPair> done) override;
  void Logout(Principal principal, core::DoneCallback done) override;
  core::StatusOr<Principal> Authenticate(std::string_view access_token) const override;

  // Marks a session revoked for token checks (also used by the gateway when
  // a revocation is learned elsewhere).
  void NoteRevoked(int64_t session_id) { verifier_.NoteRevoked(session_id); }

  // auth.login_per_min_user and auth.login_per_min_address from now on
  // (run-time configuration; any thread).
  void SetLoginLimits(int64_t per_min_user, int64_t per_min_address) {
    login_by_user_.SetRate(static_cast<double>(per_min_user) / 60.0,
                           static_cast<double>(per_min_user));
    login_by_address_.SetRate(static_cast<double>(per_min_address) / 60.0,
                              static_cast<double>(per_min_address));
  }

  // Called (on a store thread) when this service revokes a session: logout
  // or refresh-token reuse. The gateway kicks the session's sockets. Set
  // before serving.
  void SetRevocationListener(std::function<void(int64_t user_id, int64_t session_id)> fn) {
    on_revoked_ = std::move(fn);
  }

 private:
  // Submits `work` to the hashing pool; false (work dropped) when the pool is
  // saturated, so a flood cannot queue without bound.
  bool SubmitHashWork(absl::AnyInvocable<void()> work);
  TokenPair IssueTokens(int64_t user_id, int64_t session_id, std::string refresh_token) const;
  int64_t NowS() const { return clock_.NowMs() / 1000; }

  const core::AuthConfig config_;
  const TokenKeys keys_;
  TokenVerifier verifier_;
  store::Store& store_;
  core::WorkerPool& hash_pool_;
  core::SnowflakeGenerator& ids_;
  core::Clock& clock_;
  std::shared_ptr<PasswordHasher> hasher_;
  core::KeyedRateLimiter<std::string> login_by_user_;
  core::KeyedRateLimiter<std::string> login_by_address_;
  std::function<void(int64_t, int64_t)> on_revoked_;
};

// "<session_id>.<43 base64url chars>" and its stored hash (hex SHA-256).
std::string NewRefreshToken(int64_t session_id);
std::string HashRefreshToken(std::string_view token);
// The session id a refresh token names; 0 if malformed.
int64_t RefreshTokenSession(std::string_view token);

}  // namespace mpim::service::auth
