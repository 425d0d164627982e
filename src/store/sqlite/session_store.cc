#include "store/sqlite/session_store.h"

#include <string>

#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

#define SESSION_COLUMNS                                                                \
  "session_id, user_id, device, refresh_hash, prev_refresh_hash, refresh_generation, " \
  "created_at, expires_at, revoked_at"

Session ReadSession(const Stmt& row) {
  Session s;
  s.session_id = row.Int(0);
  s.user_id = row.Int(1);
  s.device = row.Text(2);
  s.refresh_token_hash = row.Text(3);
  s.previous_refresh_token_hash = row.Text(4);
  s.refresh_generation = row.Int(5);
  s.created_at = row.Int(6);
  s.expires_at = row.Int(7);
  s.revoked_at = row.Int(8);
  s.revoked = s.revoked_at != 0;
  return s;
}

core::StatusOr<Session> LoadSession(Connection& c, int64_t session_id) {
  MPIM_ASSIGN_OR_RETURN(
      Stmt st,
      c.Query("SELECT " SESSION_COLUMNS " FROM sessions WHERE session_id = ?", session_id));
  MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
  if (!row) return absl::NotFoundError("session " + std::to_string(session_id) + " not found");
  return ReadSession(st);
}

// Revocation time: never 0, so that "revoked" stays true for a clock at 0.
int64_t RevokeTime(int64_t now) { return now > 0 ? now : 1; }

// How many expired used-token rows one rotation deletes at most: more than the
// one row a rotation adds, so a backlog drains while each write stays short.
constexpr int kPruneBatch = 64;

// Forgets the used tokens of a session that can no longer rotate (revoked).
core::Status ForgetUsedTokens(Connection& c, int64_t session_id) {
  return c.Exec("DELETE FROM used_refresh_tokens WHERE session_id = ?", session_id);
}

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
        if (session.session_id <= 0) return absl::InvalidArgumentError("session_id must be > 0");
        auto st = c.Exec(
            "INSERT INTO sessions (session_id, user_id, device, refresh_hash, created_at,"
            " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            session.session_id, session.user_id, session.device, session.refresh_token_hash, now,
            session.expires_at);
        if (st.code() == absl::StatusCode::kNotFound) {
          return absl::NotFoundError("user " + std::to_string(session.user_id) + " not found");
        }
        MPIM_RETURN_IF_ERROR(st);
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
            MPIM_RETURN_IF_ERROR(ForgetUsedTokens(c, session_id));
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
      [session_id, now](Connection& c) -> core::Status {
        MPIM_ASSIGN_OR_RETURN(
            auto found, c.QueryInt("SELECT 1 FROM sessions WHERE session_id = ?", session_id));
        if (!found)
          return absl::NotFoundError("session " + std::to_string(session_id) + " not found");
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at = 0",
                   now, session_id));
        return ForgetUsedTokens(c, session_id);
      },
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
        return revoked;
      },
      std::move(done));
}

void SqliteSessionStore::ListForUser(int64_t user_id, Callback<std::vector<Session>> done) {
  exec_.Read<core::StatusOr<std::vector<Session>>>(
      [user_id](Connection& c) -> core::StatusOr<std::vector<Session>> {
        MPIM_ASSIGN_OR_RETURN(Stmt st, c.Query("SELECT " SESSION_COLUMNS " FROM sessions"
                                               " WHERE user_id = ? ORDER BY session_id",
                                               user_id));
        return CollectRows<Session>(st, ReadSession);
      },
      std::move(done));
}

void SqliteSessionStore::ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                                     Callback<Page<Session>> done) {
  exec_.Read<core::StatusOr<Page<Session>>>(
      [=](Connection& c) -> core::StatusOr<Page<Session>> {
        return QueryPage<Session>(c,
                                  "SELECT " SESSION_COLUMNS
                                  " FROM sessions"
                                  " WHERE revoked_at > 0 AND (revoked_at, session_id) > (?1, ?2)"
                                  " AND revoked_at >= ?1"
                                  " ORDER BY revoked_at, session_id LIMIT ?3",
                                  limit, ReadSession, std::max<int64_t>(since_ms, 1),
                                  after_session_id);
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
