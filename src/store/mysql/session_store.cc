#include "store/mysql/session_store.h"

#include <algorithm>
#include <string>
#include <vector>

#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {
namespace {

// LoadSession with the row locked FOR UPDATE: the rotation decides from the
// row, so two nodes rotating one session at once take turns (the second then
// reads the first's committed rotation), as SQLite's single writer makes them.
core::StatusOr<Session> LockSession(Connection& c, int64_t session_id) {
  static const std::string kSql =
      std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE session_id = ? FOR UPDATE";
  MPIM_ASSIGN_OR_RETURN(Rows rows, c.Query(kSql, session_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("session " + std::to_string(session_id) + " not found");
  return ReadSession(rows);
}

// Deletes up to kPruneBatch used-token rows past their own expiry (of any
// session): they no longer count as reuse (see RotateRefreshToken). Every
// node prunes from the oldest rows, so a plain DELETE ... ORDER BY expires_at
// LIMIT would wait for another node's batch that is pruning the same rows
// (and could deadlock with it): the rows are picked with SKIP LOCKED, each
// node taking different ones, and then deleted by key.
core::Status PruneExpiredUsedTokens(Connection& c, int64_t now_ms) {
  MPIM_ASSIGN_OR_RETURN(Rows rows, c.Query("SELECT session_id, token_hash FROM used_refresh_tokens"
                                           " WHERE expires_at <= ? ORDER BY expires_at LIMIT ?"
                                           " FOR UPDATE SKIP LOCKED",
                                           now_ms, kPruneBatch));
  if (rows.size() == 0) return core::Status();
  std::vector<std::string> hashes;  // the params view into these
  hashes.reserve(rows.size());
  std::vector<Param> params;
  std::string sql = "DELETE FROM used_refresh_tokens WHERE (session_id, token_hash) IN (";
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row) break;
    hashes.push_back(rows.Text(1));
    sql += params.empty() ? "(?, ?)" : ", (?, ?)";
    params.push_back(ToParam(rows.Int(0)));
    params.push_back(ToParam(hashes.back()));
  }
  return c.ExecParams(sql + ")", params);
}

}  // namespace

void MysqlSessionStore::Create(const NewSession& session, Callback<Session> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Session>>(
      [session, now](Connection& c) -> core::StatusOr<Session> {
        MPIM_RETURN_IF_ERROR(InsertSession(c, session, now));
        MPIM_RETURN_IF_ERROR(PruneExpiredUsedTokens(c, now));
        return LoadSession(c, session.session_id);
      },
      std::move(done));
}

void MysqlSessionStore::Get(int64_t session_id, Callback<Session> done) {
  exec_.Read<core::StatusOr<Session>>(
      [session_id](Connection& c) { return LoadSession(c, session_id); }, std::move(done));
}

void MysqlSessionStore::RotateRefreshToken(int64_t session_id, const std::string& presented_hash,
                                           const std::string& new_hash, int64_t new_expires_at,
                                           int64_t now_ms, Callback<RefreshResult> done) {
  exec_.Write<core::StatusOr<RefreshResult>>(
      [=](Connection& c) -> core::StatusOr<RefreshResult> {
        MPIM_ASSIGN_OR_RETURN(Session s, LockSession(c, session_id));
        RefreshResult result;
        result.outcome = RefreshOutcome::kRejected;
        if (s.revoked || s.expires_at <= now_ms || presented_hash.empty()) {
          // Rejected.
        } else if (presented_hash == s.refresh_token_hash) {
          // The current token becomes a used one, valid as evidence of reuse
          // until the expiry it had. (SQLite's ON CONFLICT DO UPDATE: the
          // hash was used before if a client reused an old one as new.)
          MPIM_RETURN_IF_ERROR(
              c.Exec("INSERT INTO used_refresh_tokens (session_id, token_hash, used_at, expires_at)"
                     " VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE used_at = VALUES(used_at),"
                     " expires_at = GREATEST(expires_at, VALUES(expires_at))",
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

void MysqlSessionStore::Revoke(int64_t session_id, DoneCallback done) {
  int64_t now = RevokeTime(exec_.NowMs());
  exec_.Write<core::Status>(
      [session_id, now](Connection& c) { return RevokeSession(c, session_id, now); },
      std::move(done));
}

void MysqlSessionStore::RevokeAllForUser(int64_t user_id, Callback<int64_t> done) {
  int64_t now = RevokeTime(exec_.NowMs());
  exec_.Write<core::StatusOr<int64_t>>(
      [user_id, now](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at = 0", now,
                   user_id));
        int64_t revoked = c.Changes();
        // Every session of the user is revoked now, earlier ones included.
        // (A join: MariaDB runs DELETE ... WHERE session_id IN (SELECT ...)
        // as a scan of the whole table.)
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE u FROM used_refresh_tokens AS u JOIN sessions AS s"
                   " ON s.session_id = u.session_id WHERE s.user_id = ?",
                   user_id));
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM devices WHERE user_id = ?", user_id));
        return revoked;
      },
      std::move(done));
}

void MysqlSessionStore::ListForUser(int64_t user_id, Callback<std::vector<Session>> done) {
  exec_.Read<core::StatusOr<std::vector<Session>>>(
      [user_id](Connection& c) { return ListUserSessions(c, user_id); }, std::move(done));
}

void MysqlSessionStore::ListRevoked(int64_t since_ms, int64_t after_session_id, int limit,
                                    Callback<Page<Session>> done) {
  exec_.Read<core::StatusOr<Page<Session>>>(
      [=](Connection& c) { return ListRevokedSessions(c, since_ms, after_session_id, limit); },
      std::move(done));
}

void MysqlSessionStore::SetDevice(const Device& device, Callback<Device> done) {
  exec_.Write<core::StatusOr<Device>>(
      [this, device](Connection& c) { return SetSessionDevice(c, device, exec_.NowMs()); },
      std::move(done));
}

void MysqlSessionStore::ListDevices(int64_t user_id, Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [user_id](Connection& c) { return ListUserDevices(c, user_id); }, std::move(done));
}

void MysqlSessionStore::DeleteDevice(int64_t user_id, int64_t device_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_id, device_id](Connection& c) { return DeleteUserDevice(c, user_id, device_id); },
      std::move(done));
}

void MysqlSessionStore::DevicesOf(const std::vector<int64_t>& users,
                                  Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [users](Connection& c) { return DevicesWhere(c, "user_id", users); }, std::move(done));
}

void MysqlSessionStore::GetDevices(const std::vector<int64_t>& device_ids,
                                   Callback<std::vector<Device>> done) {
  exec_.Read<core::StatusOr<std::vector<Device>>>(
      [device_ids](Connection& c) { return DevicesWhere(c, "device_id", device_ids); },
      std::move(done));
}

}  // namespace mpim::store::mysql
