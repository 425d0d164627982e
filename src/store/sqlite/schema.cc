#include "store/sqlite/schema.h"

#include <string>
#include <vector>

namespace mpim::store::sqlite {
namespace {

// Ids are 64-bit integers everywhere; user and group ids start at 1001.
// Tables keyed by composite keys are WITHOUT ROWID (the key is the row).
// Timestamps are ms since the epoch.
const std::vector<const char*>& Migrations() {
  static const std::vector<const char*> kMigrations = {
      // 1: the initial schema.
      R"sql(
CREATE TABLE users (
  user_id       INTEGER PRIMARY KEY AUTOINCREMENT,
  username      TEXT    NOT NULL UNIQUE,
  password_hash TEXT    NOT NULL,
  display_name  TEXT    NOT NULL DEFAULT '',
  avatar_url    TEXT    NOT NULL DEFAULT '',
  created_at    INTEGER NOT NULL,
  last_seen     INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sqlite_sequence(name, seq) VALUES ('users', 1000);

CREATE TABLE sessions (
  session_id         INTEGER PRIMARY KEY,
  user_id            INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  device             TEXT    NOT NULL DEFAULT '',
  refresh_hash       TEXT    NOT NULL,
  prev_refresh_hash  TEXT    NOT NULL DEFAULT '',
  refresh_generation INTEGER NOT NULL DEFAULT 0,
  created_at         INTEGER NOT NULL,
  expires_at         INTEGER NOT NULL,
  revoked_at         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_user ON sessions(user_id);
CREATE INDEX sessions_revoked ON sessions(revoked_at, session_id) WHERE revoked_at > 0;

CREATE TABLE friend_requests (
  from_user  INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  to_user    INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (from_user, to_user)
) WITHOUT ROWID;
CREATE INDEX friend_requests_to ON friend_requests(to_user, from_user);

-- One row per direction, so that listing a user's friends is a range scan.
CREATE TABLE friendships (
  user_id   INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  friend_id INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  since     INTEGER NOT NULL,
  PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;
CREATE INDEX friendships_friend ON friendships(friend_id, user_id);

CREATE TABLE blocks (
  blocker INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  blocked INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  since   INTEGER NOT NULL,
  PRIMARY KEY (blocker, blocked)
) WITHOUT ROWID;
CREATE INDEX blocks_blocked ON blocks(blocked, blocker);

CREATE TABLE chat_groups (
  group_id     INTEGER PRIMARY KEY AUTOINCREMENT,
  name         TEXT    NOT NULL,
  avatar_url   TEXT    NOT NULL DEFAULT '',
  owner_id     INTEGER NOT NULL REFERENCES users(user_id),
  is_public    INTEGER NOT NULL DEFAULT 0,
  member_count INTEGER NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL
);
INSERT INTO sqlite_sequence(name, seq) VALUES ('chat_groups', 1000);
CREATE INDEX chat_groups_owner ON chat_groups(owner_id);

CREATE TABLE group_members (
  group_id   INTEGER NOT NULL REFERENCES chat_groups(group_id) ON DELETE CASCADE,
  user_id    INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  role       INTEGER NOT NULL CHECK (role IN (0, 1, 2)),
  joined_at  INTEGER NOT NULL,
  joined_seq INTEGER NOT NULL,
  PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members(user_id, group_id);

-- Past memberships: the member saw seqs (joined_seq, left_seq].
CREATE TABLE group_member_spans (
  span_id    INTEGER PRIMARY KEY,
  group_id   INTEGER NOT NULL REFERENCES chat_groups(group_id) ON DELETE CASCADE,
  user_id    INTEGER NOT NULL,
  joined_seq INTEGER NOT NULL,
  left_seq   INTEGER NOT NULL,
  left_at    INTEGER NOT NULL
);
CREATE INDEX group_member_spans_member ON group_member_spans(group_id, user_id);

-- type: 0 private, 1 group.
CREATE TABLE conversations (
  conv_id       TEXT    NOT NULL PRIMARY KEY,
  type          INTEGER NOT NULL CHECK (type IN (0, 1)),
  last_seq      INTEGER NOT NULL DEFAULT 0,
  last_msg_id   INTEGER NOT NULL DEFAULT 0,
  last_activity INTEGER NOT NULL,
  created_at    INTEGER NOT NULL
) WITHOUT ROWID;

-- A user's cursors on a conversation they take part in.
CREATE TABLE user_conversations (
  user_id    INTEGER NOT NULL REFERENCES users(user_id) ON DELETE CASCADE,
  conv_id    TEXT    NOT NULL REFERENCES conversations(conv_id) ON DELETE CASCADE,
  read_seq   INTEGER NOT NULL DEFAULT 0,
  joined_seq INTEGER NOT NULL DEFAULT 0,
  muted      INTEGER NOT NULL DEFAULT 0,
  pinned     INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (user_id, conv_id)
) WITHOUT ROWID;
CREATE INDEX user_conversations_by_conv ON user_conversations(conv_id);

-- A login session's delivery cursors.
CREATE TABLE session_cursors (
  session_id    INTEGER NOT NULL,
  conv_id       TEXT    NOT NULL,
  delivered_seq INTEGER NOT NULL,
  PRIMARY KEY (session_id, conv_id)
) WITHOUT ROWID;
CREATE INDEX session_cursors_by_conv ON session_cursors(conv_id);

-- client_msg_id NULL: no idempotency key (server-made messages).
CREATE TABLE messages (
  msg_id        INTEGER PRIMARY KEY,
  conv_id       TEXT    NOT NULL REFERENCES conversations(conv_id) ON DELETE CASCADE,
  seq           INTEGER NOT NULL,
  sender        INTEGER NOT NULL,
  recipient     INTEGER NOT NULL,
  type          TEXT    NOT NULL CHECK (type IN ('text', 'custom', 'system')),
  body          TEXT    NOT NULL,
  ts            INTEGER NOT NULL,
  client_msg_id TEXT,
  recalled      INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX messages_conv_seq ON messages(conv_id, seq);
CREATE UNIQUE INDEX messages_sender_client_id ON messages(sender, client_msg_id);

-- rowid = msg_id; conversation and seq are taken from messages.
CREATE VIRTUAL TABLE message_fts USING fts5(text, tokenize = 'unicode61 remove_diacritics 2');

-- state: 0 ready, 1 leased, 2 dead. run_at: when ready (0) or lease expiry (1).
CREATE TABLE jobs (
  job_id          INTEGER PRIMARY KEY AUTOINCREMENT,
  kind            TEXT    NOT NULL,
  payload         TEXT    NOT NULL,
  state           INTEGER NOT NULL CHECK (state IN (0, 1, 2)),
  attempts        INTEGER NOT NULL DEFAULT 0,
  max_attempts    INTEGER NOT NULL,
  backoff_base_ms INTEGER NOT NULL,
  backoff_max_ms  INTEGER NOT NULL,
  run_at          INTEGER NOT NULL,
  lease_owner     TEXT    NOT NULL DEFAULT '',
  last_error      TEXT    NOT NULL DEFAULT '',
  created_at      INTEGER NOT NULL
);
CREATE INDEX jobs_due ON jobs(run_at, job_id) WHERE state < 2;
CREATE INDEX jobs_state ON jobs(state);
)sql",
      // 2: every refresh-token hash a session has rotated away, so that the
      // reuse of any of them (not only the last one) is detected. A row is
      // kept until `expires_at`, the expiry the token had while it was
      // current, or until its session is revoked; see session_store.cc.
      // Backfill: the one previous hash that migration 1 kept, for live
      // sessions; its rotation time and expiry are unknown, so used_at is the
      // session's creation and expires_at the session's expiry (the latest
      // either can be).
      R"sql(
CREATE TABLE used_refresh_tokens (
  session_id INTEGER NOT NULL REFERENCES sessions(session_id) ON DELETE CASCADE,
  token_hash TEXT    NOT NULL,
  used_at    INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, token_hash)
) WITHOUT ROWID;
CREATE INDEX used_refresh_tokens_expiry ON used_refresh_tokens(expires_at);

INSERT INTO used_refresh_tokens (session_id, token_hash, used_at, expires_at)
  SELECT session_id, prev_refresh_hash, created_at, expires_at FROM sessions
  WHERE revoked_at = 0 AND prev_refresh_hash != '' AND prev_refresh_hash != refresh_hash;
)sql",
      // 3: one row that Store::Ping rewrites: a write is the only way to
      // learn that the disk is full or read-only (a read still works), and
      // that it no longer is.
      R"sql(
CREATE TABLE store_probe (
  id     INTEGER PRIMARY KEY CHECK (id = 1),
  writes INTEGER NOT NULL
);
INSERT INTO store_probe (id, writes) VALUES (1, 0);
)sql",
      // 4: offline push. A session's push device (one per session); job
      // coalescing (store/job_store.h): a job's key, and when the last job
      // of a key was acked; an index for the admin API's listing.
      R"sql(
CREATE TABLE devices (
  device_id  INTEGER PRIMARY KEY,
  session_id INTEGER NOT NULL UNIQUE REFERENCES sessions(session_id) ON DELETE CASCADE,
  user_id    INTEGER NOT NULL,
  platform   TEXT    NOT NULL,
  token      TEXT    NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX devices_by_user ON devices(user_id);

ALTER TABLE jobs ADD COLUMN coalesce_key TEXT NOT NULL DEFAULT '';
CREATE INDEX jobs_coalesce ON jobs(coalesce_key, kind, state);
CREATE INDEX jobs_list ON jobs(state, kind, job_id);
CREATE TABLE job_coalesce (
  coalesce_key TEXT    NOT NULL PRIMARY KEY,
  done_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX job_coalesce_done ON job_coalesce(done_at);
)sql",
  };
  return kMigrations;
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

core::StatusOr<int> ApplyMigrations(Connection& conn) {
  MPIM_RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  auto migrate = [&]() -> core::StatusOr<int> {
    MPIM_RETURN_IF_ERROR(
        conn.ExecScript("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"));
    MPIM_ASSIGN_OR_RETURN(std::optional<int64_t> row,
                          conn.QueryInt("SELECT version FROM schema_version"));
    if (!row) MPIM_RETURN_IF_ERROR(conn.Exec("INSERT INTO schema_version (version) VALUES (0)"));
    int version = static_cast<int>(row.value_or(0));
    if (version > LatestSchemaVersion()) {
      return absl::FailedPreconditionError("database schema version " + std::to_string(version) +
                                           " is newer than this build's " +
                                           std::to_string(LatestSchemaVersion()));
    }
    for (; version < LatestSchemaVersion(); ++version) {
      MPIM_RETURN_IF_ERROR(conn.ExecScript(Migrations()[static_cast<size_t>(version)]));
      MPIM_RETURN_IF_ERROR(conn.Exec("UPDATE schema_version SET version = ?", version + 1));
    }
    return version;
  };
  core::StatusOr<int> version = migrate();
  if (version.ok()) {
    core::Status commit = conn.Exec("COMMIT");
    if (commit.ok()) return version;
    version = commit;
  }
  if (conn.InTransaction()) (void)conn.Exec("ROLLBACK");
  return version;
}

core::StatusOr<int> Migrate(const SqliteOptions& options) {
  MPIM_ASSIGN_OR_RETURN(auto conn, Connection::Open(options, /*writer=*/true));
  return ApplyMigrations(*conn);
}

}  // namespace mpim::store::sqlite
