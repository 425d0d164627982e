// Login sessions: one per device login, holding the hash of the current
// refresh token, and the push device a session may register (protocol.md
// section 4: one per session, gone with the session's revocation). The store also remembers every
// refresh-token hash a session has rotated away ("used" tokens), so that presenting any of them
// again (theft: the token was copied before the rightful client rotated it) is detected and the
// session revoked. See RotateRefreshToken for exactly what counts as reuse.
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
  std::string refresh_token_hash;  // current token
  // The most recently rotated-away one; empty at first. Informational only:
  // reuse detection covers every used token, not just this one.
  std::string previous_refresh_token_hash;
  int64_t refresh_generation = 0;  // 0 at login, +1 per rotation
  int64_t created_at = 0;          // ms, store clock
  int64_t expires_at = 0;          // ms, of the refresh token
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

// A session's push device.
struct Device {
  int64_t device_id = 0;  // snowflake assigned by the caller
  int64_t session_id = 0;
  int64_t user_id = 0;
  std::string platform;  // "apns" | "fcm" | "webhook" (checked by the service)
  std::string token;
  int64_t created_at = 0;  // ms, store clock
};

// What RotateRefreshToken did, atomically.
enum class RefreshOutcome {
  kRotated,   // presented hash was current: replaced by the new one, and the
              // old one remembered as used
  kReused,    // presented hash is a used (rotated-away) token of this session
              // that has not itself expired: session revoked now
  kRejected,  // session revoked or expired, empty hash, or the hash is neither
              // current nor a live used token of this session (never issued,
              // another session's, or used but past its own expiry)
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

  // Compare-and-swap of the refresh token; see RefreshOutcome. Checked in
  // this order, in one transaction: the session is revoked or expired
  // (expires_at <= now_ms) -> kRejected; presented == current -> kRotated
  // (current becomes `new_hash`, expiry `new_expires_at`, generation + 1);
  // presented == any token this session rotated away, however many rotations
  // back, whose own expiry (the session's expires_at while it was current) is
  // still after now_ms -> kReused, the session is revoked; anything else ->
  // kRejected, nothing changes. A used token is remembered until that expiry
  // or until the session is revoked, whichever comes first; after that it is
  // rejected like any unknown token (it could not have been used anyway).
  // Concurrent rotations with the same current token: exactly one gets
  // kRotated, the next kReused (revoking the session), any later ones
  // kRejected. kNotFound if the session is unknown. `now_ms` decides expiry.
  virtual void RotateRefreshToken(int64_t session_id, const std::string& presented_hash,
                                  const std::string& new_hash, int64_t new_expires_at,
                                  int64_t now_ms, Callback<RefreshResult> done) = 0;

  // Revokes one session (idempotent: revoking twice keeps the first time) and
  // forgets its used tokens and its push device. kNotFound if unknown.
  virtual void Revoke(int64_t session_id, DoneCallback done) = 0;

  // Revokes every live session of the user and forgets the used tokens and
  // push devices of all the user's sessions; returns how many were revoked.
  virtual void RevokeAllForUser(int64_t user_id, Callback<int64_t> done) = 0;

  // The user's sessions, ascending by session_id, revoked ones included.
  virtual void ListForUser(int64_t user_id, Callback<std::vector<Session>> done) = 0;

  // Sessions revoked at or after `since_ms`, ascending by (revoked_at,
  // session_id), for loading a revocation cache. Page past the last item with
  // since_ms = its revoked_at and after_session_id = its session_id.
  virtual void ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                           Callback<Page<Session>> done) = 0;

  // Push devices.
  // Registers `device` (device_id, session_id, user_id, platform, token) as
  // its session's device, replacing the one the session had; returns it
  // with created_at. kNotFound if the session is unknown, revoked or not the
  // user's.
  virtual void SetDevice(const Device& device, Callback<Device> done) = 0;
  // The user's devices, ascending by device_id.
  virtual void ListDevices(int64_t user_id, Callback<std::vector<Device>> done) = 0;
  // kNotFound unless the user has that device.
  virtual void DeleteDevice(int64_t user_id, int64_t device_id, DoneCallback done) = 0;
  // The devices of every user in `users` (at most kMaxPageLimit ids), in one
  // query, ascending by device_id.
  virtual void DevicesOf(const std::vector<int64_t>& users, Callback<std::vector<Device>> done) = 0;
  // Devices by id (at most kMaxPageLimit), ascending; unknown ids are left out.
  virtual void GetDevices(const std::vector<int64_t>& device_ids,
                          Callback<std::vector<Device>> done) = 0;
};

}  // namespace mpim::store
