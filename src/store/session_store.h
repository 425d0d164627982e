// Login sessions: one per device login, holding the hash of the current
// refresh token and of the one before it, so that the reuse of a rotated
// refresh token (theft) can be detected and the session revoked.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/common.h"

namespace mpim::store {

struct Session {
  int64_t session_id = 0;  // snowflake assigned by the caller
  int64_t user_id = 0;
  std::string device;
  std::string refresh_token_hash;           // current token
  std::string previous_refresh_token_hash;  // the one rotated away; empty at first
  int64_t refresh_generation = 0;           // 0 at login, +1 per rotation
  int64_t created_at = 0;                   // ms, store clock
  int64_t expires_at = 0;                   // ms, of the refresh token
  bool revoked = false;
  int64_t revoked_at = 0;  // ms; 0 unless revoked
};

struct NewSession {
  int64_t session_id = 0;
  int64_t user_id = 0;
  std::string device;
  std::string refresh_token_hash;
  int64_t expires_at = 0;
};

// What RotateRefreshToken did, atomically.
enum class RefreshOutcome {
  kRotated,   // presented hash was current: replaced by the new one
  kReused,    // presented hash was the previous one: session revoked now
  kRejected,  // session revoked or expired, or the hash matches neither
};

struct RefreshResult {
  RefreshOutcome outcome = RefreshOutcome::kRejected;
  Session session;  // the session after the operation
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  // kAlreadyExists for a used session_id; kNotFound for an unknown user.
  virtual void Create(const NewSession& session, Callback<Session> done) = 0;

  // kNotFound if unknown. Revoked sessions are returned (revoked = true).
  virtual void Get(int64_t session_id, Callback<Session> done) = 0;

  // Compare-and-swap of the refresh token; see RefreshOutcome. Two concurrent
  // rotations with the same token: exactly one gets kRotated, the other
  // kReused (and the session ends revoked). kNotFound if the session is
  // unknown. `now_ms` decides expiry.
  virtual void RotateRefreshToken(int64_t session_id, const std::string& presented_hash,
                                  const std::string& new_hash, int64_t new_expires_at,
                                  int64_t now_ms, Callback<RefreshResult> done) = 0;

  // Revokes one session (idempotent: revoking twice keeps the first time).
  // kNotFound if unknown.
  virtual void Revoke(int64_t session_id, DoneCallback done) = 0;

  // Revokes every live session of the user; returns how many were revoked.
  virtual void RevokeAllForUser(int64_t user_id, Callback<int64_t> done) = 0;

  // The user's sessions, ascending by session_id, revoked ones included.
  virtual void ListForUser(int64_t user_id, Callback<std::vector<Session>> done) = 0;

  // Sessions revoked at or after `since_ms`, ascending by (revoked_at,
  // session_id), for loading a revocation cache. Page past the last item with
  // since_ms = its revoked_at and after_session_id = its session_id.
  virtual void ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                           Callback<Page<Session>> done) = 0;
};

}  // namespace mpim::store
