#include "service/auth/token_verifier.h"

#include <cstdint>

#include "cache/local_cache.h"

namespace mpim::service::auth {
namespace {

// Margin for clock skew between the node that signed and the one checking.
constexpr int64_t kSkewS = 60;

}  // namespace

TokenVerifier::TokenVerifier(const core::AuthConfig& config, const TokenKeys& keys,
                             core::Clock& clock,
                             std::unique_ptr<cache::Cache<int64_t, bool>> revoked)
    : access_ttl_s_(config.access_ttl_s),
      keys_(keys.All()),
      clock_(clock),
      revoked_(revoked ? std::move(revoked)
                       : std::make_unique<cache::LocalCache<int64_t, bool>>(
                             cache::LocalCacheOptions{.max_entries = SIZE_MAX}, clock)) {}

core::StatusOr<Principal> TokenVerifier::Authenticate(std::string_view access_token) const {
  auto claims = VerifyAccessToken(access_token, keys_, clock_.NowMs() / 1000);
  if (!claims.ok()) return claims.status();
  if (revoked_->Peek(claims->session_id)) {
    return absl::UnauthenticatedError("session revoked");
  }
  return Principal{claims->user_id, claims->session_id};
}

void TokenVerifier::NoteRevoked(int64_t session_id) {
  revoked_->Put(session_id, true, (access_ttl_s_ + kSkewS) * 1000);
}

int64_t TokenVerifier::RelevantSinceMs() const {
  return clock_.NowMs() - (access_ttl_s_ + kSkewS) * 1000;
}

}  // namespace mpim::service::auth
