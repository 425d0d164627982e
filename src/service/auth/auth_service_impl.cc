#include "service/auth/auth_service_impl.h"

#include <sodium.h>

#include <atomic>
#include <charconv>
#include <chrono>

#include "core/logging.h"
#include "service/errors.h"
#include "service/validation.h"
#include "store/blocking.h"

namespace mpim::service::auth {
namespace {

constexpr char kBadCredentials[] = "invalid username or password";
constexpr char kBadRefresh[] = "invalid refresh token";
// Hash jobs allowed to wait per hashing thread before new ones are refused.
constexpr size_t kMaxPendingHashesPerThread = 64;

const core::Logger& Log() {
  static const core::Logger log("auth");
  return log;
}

}  // namespace

std::string NewRefreshToken(int64_t session_id) {
  std::string secret(32, '\0');
  randombytes_buf(secret.data(), secret.size());
  return std::to_string(session_id) + "." + Base64UrlEncode(secret);
}

std::string HashRefreshToken(std::string_view token) {
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  char hex[crypto_hash_sha256_BYTES * 2 + 1];
  sodium_bin2hex(hex, sizeof hex, digest, sizeof digest);
  return std::string(hex);
}

int64_t RefreshTokenSession(std::string_view token) {
  size_t dot = token.find('.');
  if (dot == std::string_view::npos || dot == 0 || token.size() - dot - 1 != 43) return 0;
  int64_t sid = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + dot, sid);
  if (ec != std::errc() || ptr != token.data() + dot || sid <= 0) return 0;
  return sid;
}

AuthServiceImpl::AuthServiceImpl(const core::AuthConfig& config, TokenKeys keys,
                                 store::Store& store, core::WorkerPool& hash_pool,
                                 core::SnowflakeGenerator& ids, core::Clock& clock,
                                 std::unique_ptr<cache::Cache<int64_t, bool>> revoked)
    : config_(config),
      keys_(std::move(keys)),
      verifier_(config, keys_, clock, std::move(revoked)),
      store_(store),
      hash_pool_(hash_pool),
      ids_(ids),
      clock_(clock),
      hasher_(
          std::make_shared<PasswordHasher>(static_cast<uint64_t>(config.argon2_opslimit),
                                           static_cast<size_t>(config.argon2_memlimit_kib) * 1024)),
      login_by_user_(static_cast<double>(config.login_per_min_user) / 60.0,
                     static_cast<double>(config.login_per_min_user)),
      login_by_address_(static_cast<double>(config.login_per_min_address) / 60.0,
                        static_cast<double>(config.login_per_min_address)) {}

core::Status AuthServiceImpl::LoadRevocations() {
  int64_t since = verifier_.RelevantSinceMs();
  int64_t after = 0;
  for (;;) {
    auto page = store::Await<store::Page<store::Session>>([&](auto cb) {
      store_.sessions().ListRevoked(since, after, store::kMaxPageLimit, std::move(cb));
    });
    if (!page.ok()) return page.status();
    for (const store::Session& s : page->items) NoteRevoked(s.session_id);
    if (!page->has_more || page->items.empty()) break;
    since = page->items.back().revoked_at;
    after = page->items.back().session_id;
  }
  Log().Info("revocation cache loaded", {{"sessions", static_cast<int64_t>(verifier_.revoked_count())}});
  return absl::OkStatus();
}

bool AuthServiceImpl::SubmitHashWork(absl::AnyInvocable<void()> work) {
  if (hash_pool_.pending() > kMaxPendingHashesPerThread * hash_pool_.size()) return false;
  return hash_pool_.Submit(std::move(work));
}

void AuthServiceImpl::Register(RegisterRequest req, core::Callback<int64_t> done) {
  if (auto s = ValidateUsername(req.username); !s.ok()) return std::move(done)(s);
  if (auto s = ValidatePassword(req.password); !s.ok()) return std::move(done)(s);
  if (req.display_name.empty()) req.display_name = req.username;
  if (auto s = ValidateDisplayName(req.display_name); !s.ok()) return std::move(done)(s);

  auto shared_done = std::make_shared<core::Callback<int64_t>>(std::move(done));
  bool queued = SubmitHashWork([this, req = std::move(req), shared_done]() mutable {
    auto hash = hasher_->Hash(req.password);
    if (!hash.ok()) return std::move(*shared_done)(hash.status());
    store::NewUser user{req.username, *hash, req.display_name, ""};
    store_.users().Create(user, [shared_done](core::StatusOr<store::User> created) {
      if (!created.ok()) {
        if (created.status().code() == absl::StatusCode::kAlreadyExists) {
          return std::move(*shared_done)(absl::AlreadyExistsError("username is taken"));
        }
        return std::move(*shared_done)(StorageError(created.status()));
      }
      std::move (*shared_done)(created->user_id);
    });
  });
  if (!queued) std::move (*shared_done)(absl::UnavailableError("server busy; retry later"));
}

void AuthServiceImpl::Login(LoginRequest req, core::Callback<LoginResult> done) {
  int64_t now = clock_.SteadyMs();
  if (int64_t wait = login_by_user_.TryAcquire(req.username, now); wait > 0) {
    return std::move(done)(core::RateLimitedError("too many login attempts for this user", wait));
  }
  if (int64_t wait = login_by_address_.TryAcquire(req.client_address, now); wait > 0) {
    return std::move(done)(
        core::RateLimitedError("too many login attempts from this address", wait));
  }
  if (auto s = ValidateDevice(req.device); !s.ok()) return std::move(done)(s);

  auto shared_done = std::make_shared<core::Callback<LoginResult>>(std::move(done));
  auto request = std::make_shared<LoginRequest>(std::move(req));

  // Runs on the hashing pool once the user is known (or known not to exist).
  auto verify = [this, request, shared_done](core::StatusOr<store::User> user) {
    bool queued = SubmitHashWork([this, request, shared_done, user = std::move(user)]() mutable {
      if (!user.ok()) {
        if (user.status().code() != absl::StatusCode::kNotFound) {
          return std::move(*shared_done)(StorageError(user.status()));
        }
        hasher_->VerifyDummy(request->password);  // same time as a wrong password
        return std::move(*shared_done)(absl::UnauthenticatedError(kBadCredentials));
      }
      if (!hasher_->Verify(user->password_hash, request->password)) {
        return std::move(*shared_done)(absl::UnauthenticatedError(kBadCredentials));
      }
      int64_t user_id = user->user_id;
      int64_t session_id = ids_.Next();
      std::string refresh = NewRefreshToken(session_id);
      store::NewSession session{session_id, user_id, request->device, HashRefreshToken(refresh),
                                clock_.NowMs() + config_.refresh_ttl_s * 1000};
      store_.sessions().Create(
          session, [this, shared_done, user_id, session_id,
                    refresh = std::move(refresh)](core::StatusOr<store::Session> created) mutable {
            if (!created.ok()) return std::move(*shared_done)(StorageError(created.status()));
            std::move (*shared_done)(LoginResult{
                user_id, session_id, IssueTokens(user_id, session_id, std::move(refresh))});
          });
    });
    if (!queued) std::move (*shared_done)(absl::UnavailableError("server busy; retry later"));
  };

  if (!ValidateUsername(request->username).ok()) {
    verify(absl::NotFoundError("no such user"));  // cannot exist; still costs a hash
    return;
  }
  store_.users().GetByUsername(request->username, std::move(verify));
}

void AuthServiceImpl::Refresh(std::string refresh_token, core::Callback<TokenPair> done) {
  int64_t session_id = RefreshTokenSession(refresh_token);
  if (session_id == 0) return std::move(done)(absl::UnauthenticatedError(kBadRefresh));
  std::string next = NewRefreshToken(session_id);
  // Hashes first: the callback below takes `next` by move, and argument
  // evaluation order is unspecified.
  std::string presented_hash = HashRefreshToken(refresh_token);
  std::string next_hash = HashRefreshToken(next);
  int64_t now = clock_.NowMs();
  store_.sessions().RotateRefreshToken(
      session_id, presented_hash, next_hash, now + config_.refresh_ttl_s * 1000, now,
      [this, session_id, next = std::move(next),
       done = std::move(done)](core::StatusOr<store::RefreshResult> result) mutable {
        if (!result.ok()) {
          if (result.status().code() == absl::StatusCode::kNotFound) {
            return std::move(done)(absl::UnauthenticatedError(kBadRefresh));
          }
          return std::move(done)(StorageError(result.status()));
        }
        switch (result->outcome) {
          case store::RefreshOutcome::kRotated:
            return std::move(done)(
                IssueTokens(result->session.user_id, session_id, std::move(next)));
          case store::RefreshOutcome::kReused:
            NoteRevoked(session_id);
            if (on_revoked_) on_revoked_(result->session.user_id, session_id);
            Log().Warn("refresh token reused; session revoked", {{"session_id", session_id}});
            return std::move(done)(core::SessionRevokedError(
                "refresh token already used; session revoked", session_id));
          case store::RefreshOutcome::kRejected:
            if (result->session.revoked) NoteRevoked(session_id);
            return std::move(done)(absl::UnauthenticatedError(kBadRefresh));
        }
      });
}

void AuthServiceImpl::Logout(Principal principal, core::DoneCallback done) {
  store_.sessions().Revoke(principal.session_id,
                           [this, principal, done = std::move(done)](core::Status s) mutable {
                             if (!s.ok() && s.code() != absl::StatusCode::kNotFound) {
                               return std::move(done)(StorageError(s));
                             }
                             NoteRevoked(principal.session_id);
                             if (on_revoked_) on_revoked_(principal.user_id, principal.session_id);
                             std::move(done)(absl::OkStatus());
                           });
}

core::StatusOr<Principal> AuthServiceImpl::Authenticate(std::string_view access_token) const {
  return verifier_.Authenticate(access_token);
}

TokenPair AuthServiceImpl::IssueTokens(int64_t user_id, int64_t session_id,
                                       std::string refresh_token) const {
  int64_t now = NowS();
  AccessClaims claims{user_id, session_id, now, now + config_.access_ttl_s, ""};
  return TokenPair{SignAccessToken(keys_.current, claims), std::move(refresh_token),
                   config_.access_ttl_s};
}

}  // namespace mpim::service::auth
