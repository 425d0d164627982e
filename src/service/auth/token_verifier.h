// The check of an access token on every authenticated request: signature,
// expiry and the set of revoked sessions. Shared by the auth service
// (role `all`, `logic`) and a gateway's remote auth service, which checks
// tokens locally and learns revocations from the bus and the logic role.
//
// Thread-safe: Authenticate and NoteRevoked from any thread.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "cache/cache.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/status.h"
#include "service/auth/jwt.h"
#include "service/auth/token_keys.h"
#include "service/auth_service.h"

namespace mpim::service::auth {

class TokenVerifier {
 public:
  // `revoked`: where revoked sessions are kept (never a cache without
  // memory: engine `none` would forget a logout); null: a local one.
  TokenVerifier(const core::AuthConfig& config, const TokenKeys& keys, core::Clock& clock,
                std::unique_ptr<cache::Cache<int64_t, bool>> revoked = nullptr);

  core::StatusOr<Principal> Authenticate(std::string_view access_token) const;
  // Tokens of `session_id` stop working (for as long as one may live).
  void NoteRevoked(int64_t session_id);
  size_t revoked_count() const { return revoked_->size(); }
  // Revocations older than this cannot matter: every token of the session
  // has expired since (ms, the clock's wall time).
  int64_t RelevantSinceMs() const;

 private:
  const int64_t access_ttl_s_;
  const std::vector<TokenKey> keys_;
  core::Clock& clock_;
  std::unique_ptr<cache::Cache<int64_t, bool>> revoked_;
};

}  // namespace mpim::service::auth
