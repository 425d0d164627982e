#include "store/sqlite/session_store.h"

#include <string>

#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

// Deletes up to kPruneBatch used-token rows past their own expiry (of any
// session): they no longer count as reuse (see RotateRefreshToken).
core::Status PruneExpiredUsedTokens(Connection& c, int64_t now_ms) {
  return c.Exec(
      "DELETE FROM used_refresh_tokens WHERE (session_id, token_hash) IN"
      " (SELECT session_id, token_hash FROM used_refresh_tokens WHERE expires_at <= ?"
      " ORDER BY expires_at LIMIT ?)",
      now_ms, kPruneBatch);
}

}  // namespace

void SqliteSessionStore::Create(const NewSession& session, Callback<Session> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Session>>(
      [session, now](Connection& c) -> core::StatusOr<Session> {
        MPIM_RETURN_IF_ERROR(InsertSession(c, session, now));
        MPIM_RETURN_IF_ERROR(PruneExpiredUsedTokens(c, now));
        return LoadSession(c, session.session_id);
      },
      std::move(done));
}

void SqliteSessionStore::Get(int64_t session_id, Callback<Session> done) {
  exec_.Read<core::StatusOr<Session>>(
      [session_id](Connection& c) { return LoadSession(c, session_id); }, std::move(done));
}

void SqliteSessionStore::RotateRefreshToken(int64_t session_id, const std::string& presented_hash,
                                            const std::string& new_hash, int64_t new_expires_at,
                                            int64_t now_ms, Callback<RefreshResult> done) {
  exec_.Write<core::StatusOr<RefreshResult>>(
      [=](Connection& c) -> core::StatusOr<RefreshResult> {
        MPIM_ASSIGN_OR_RETURN(Session s, LoadSession(c, session_id));
        RefreshResult result;
        result.outcome = RefreshOutcome::kRejected;
        if (s.revoked || s.expires_at <= now_ms || presented_hash.empty()) {
          // Rejected. (An expired session's used tokens expired no later than
          // it did: PruneExpiredUsedTokens takes them.)
        } else if (presented_hash == s.refresh_token_hash) {
          // The current token becomes a used one, valid as evidence of reuse
          // until the expiry it had.
          MPIM_RETURN_IF_ERROR(
              c.Exec("INSERT INTO used_refresh_tokens (session_id, token_hash, used_at, expires_at)"
                     " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (session_id, token_hash)"
                     " DO UPDATE SET used_at = ?3, expires_at = max(expires_at, ?4)",
                     session_id, s.refresh_token_hash, now_ms, s.expires_at));
          MPIM_RETURN_IF_ERROR(
              c.Exec("UPDATE sessions SET prev_refresh_hash = refresh_hash, refresh_hash = ?,"
                     " refresh_generation = refresh_generation + 1, expires_at = ?"
                     " WHERE session_id = ?",
                     new_hash, new_expires_at, session_id));
          MPIM_RETURN_IF_ERROR(PruneExpiredUsedTokens(c, now_ms));
          result.outcome = RefreshOutcome::kRotated;
        } else {
          MPIM_ASSIGN_OR_RETURN(auto used, c.QueryInt("SELECT 1 FROM used_refresh_tokens"
                                                      " WHERE session_id = ? AND token_hash = ?"
                                                      " AND expires_at > ?",
                                                      session_id, presented_hash, now_ms));
          if (used) {
            MPIM_RETURN_IF_ERROR(c.Exec("UPDATE sessions SET revoked_at = ? WHERE session_id = ?",
                                        RevokeTime(now_ms), session_id));
            MPIM_RETURN_IF_ERROR(ForgetRevokedSession(c, session_id));
            result.outcome = RefreshOutcome::kReused;
          }
        }
        MPIM_ASSIGN_OR_RETURN(result.session, LoadSession(c, session_id));
        return result;
      },
      std::move(done));
}

void SqliteSessionStore::Revoke(int64_t session_id, DoneCallback done) {
  int64_t now = RevokeTime(exec_.NowMs());
  exec_.Write<core::Status>(
      [session_id, now](Connection& c) { return RevokeSession(c, session_id, now); },
      std::move(done));
}

void SqliteSessionStore::RevokeAllForUser(int64_t user_id, Callback<int64_t> done) {
  int64_t now = RevokeTime(exec_.NowMs());
  exec_.Write<core::StatusOr<int64_t>>(
      [user_id, now](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0", now,
                   user_id));
        int64_t revoked = c.Changes();
        // Every session of the user is revoked now, earlier ones included.
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE FROM used_refresh_tokens WHERE session_id IN"
                   " (SELECT session_id FROM sessions WHERE user_id = ?)",
                   user_id));
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM devices WHERE user_id = ?", user_id));
        return revoked;
      },
      std::move(done));
}

void SqliteSessionStore::ListForUser(int64_t user_id, Callback<std::vector<Session>> done) {
  exec_.Read<core::StatusOr<std::vector<Session>>>(
      [user_id](Connection& c) { return ListUserSessions(c, user_id); }, std::move(done));
}

void SqliteSessionStore::ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                                     Callback<Page<Session>> done) {
  exec_.Read<core::StatusOr<Page<Session>>>(
      [=](Connection& c) { return ListRevokedSessions(c, since_ms, after_session_id, limit); },
      std::move(done));
}

void SqliteSessionStore::SetDevice(const Device& device, Callback<Device> done) {
  exec_.Write<core::StatusOr<Device>>(
      [this, device](Connection& c) { return SetSessionDevice(c, device, exec_.NowMs()); },
      std::move(done));
}

void SqliteSessionStore::ListDevices(int64_t user_id, Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [user_id](Connection& c) { return ListUserDevices(c, user_id); }, std::move(done));
}

void SqliteSessionStore::DeleteDevice(int64_t user_id, int64_t device_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_id, device_id](Connection& c) { return DeleteUserDevice(c, user_id, device_id); },
      std::move(done));
}

void SqliteSessionStore::DevicesOf(const std::vector<int64_t>& users,
                                   Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [users](Connection& c) { return DevicesWhere(c, "user_id", users); }, std::move(done));
}

void SqliteSessionStore::GetDevices(const std::vector<int64_t>& device_ids,
                                    Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [device_ids](Connection& c) { return DevicesWhere(c, "device_id", device_ids); },
      std::move(done));
}

}  // namespace mpim::store::sqlite
