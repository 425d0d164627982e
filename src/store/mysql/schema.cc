#include "store/mysql/schema.h"

#include <string>
#include <vector>

namespace mpim::store::mysql {
namespace {

// Ids are BIGINT; user and group ids start at 1001. Times are ms since the
// epoch. Text the store compares (usernames, conv ids, idempotency keys) is
// compared byte for byte, as in SQLite: binary collations without padding
// (MariaDB's utf8mb4_bin ignores trailing spaces: "alice " would equal
// "alice"); message bodies
// are utf8mb4, so 4-byte UTF-8 (emoji) round-trips. Search text has its own
// table with an accent- and case-insensitive collation and a FULLTEXT index.
#define MPIM_TABLE_OPTIONS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"
#define MPIM_CONV_ID " VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin"

const std::vector<std::vector<const char*>>& Migrations() {
  static const std::vector<std::vector<const char*>> kMigrations = {
      // 1: the schema of SQLite's migrations 1-3, in MySQL's dialect.
      {
          "CREATE TABLE IF NOT EXISTS users ("
          " user_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
          " username VARCHAR(255) NOT NULL,"
          " password_hash TEXT NOT NULL,"
          " display_name TEXT NOT NULL DEFAULT '',"
          " avatar_url TEXT NOT NULL DEFAULT '',"
          " created_at BIGINT NOT NULL,"
          " last_seen BIGINT NOT NULL DEFAULT 0,"
          " UNIQUE KEY users_username (username)"
          ") AUTO_INCREMENT=1001" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS sessions ("
          " session_id BIGINT NOT NULL PRIMARY KEY,"
          " user_id BIGINT NOT NULL,"
          " device TEXT NOT NULL DEFAULT '',"
          " refresh_hash VARCHAR(255) NOT NULL,"
          " prev_refresh_hash VARCHAR(255) NOT NULL DEFAULT '',"
          " refresh_generation BIGINT NOT NULL DEFAULT 0,"
          " created_at BIGINT NOT NULL,"
          " expires_at BIGINT NOT NULL,"
          " revoked_at BIGINT NOT NULL DEFAULT 0,"
          " KEY sessions_by_user (user_id),"
          " KEY sessions_revoked (revoked_at, session_id),"
          " CONSTRAINT sessions_user FOREIGN KEY (user_id) REFERENCES users (user_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS used_refresh_tokens ("
          " session_id BIGINT NOT NULL,"
          " token_hash VARCHAR(255) NOT NULL,"
          " used_at BIGINT NOT NULL,"
          " expires_at BIGINT NOT NULL,"
          " PRIMARY KEY (session_id, token_hash),"
          " KEY used_refresh_tokens_expiry (expires_at),"
          " CONSTRAINT used_refresh_tokens_session FOREIGN KEY (session_id)"
          "   REFERENCES sessions (session_id) ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS friend_requests ("
          " from_user BIGINT NOT NULL,"
          " to_user BIGINT NOT NULL,"
          " created_at BIGINT NOT NULL,"
          " PRIMARY KEY (from_user, to_user),"
          " KEY friend_requests_to (to_user, from_user),"
          " CONSTRAINT friend_requests_from_user FOREIGN KEY (from_user) REFERENCES users (user_id)"
          "   ON DELETE CASCADE,"
          " CONSTRAINT friend_requests_to_user FOREIGN KEY (to_user) REFERENCES users (user_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          // One row per direction, so that listing a user's friends is a
          // range scan.
          "CREATE TABLE IF NOT EXISTS friendships ("
          " user_id BIGINT NOT NULL,"
          " friend_id BIGINT NOT NULL,"
          " since BIGINT NOT NULL,"
          " PRIMARY KEY (user_id, friend_id),"
          " KEY friendships_friend (friend_id, user_id),"
          " CONSTRAINT friendships_user FOREIGN KEY (user_id) REFERENCES users (user_id)"
          "   ON DELETE CASCADE,"
          " CONSTRAINT friendships_friend FOREIGN KEY (friend_id) REFERENCES users (user_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS blocks ("
          " blocker BIGINT NOT NULL,"
          " blocked BIGINT NOT NULL,"
          " since BIGINT NOT NULL,"
          " PRIMARY KEY (blocker, blocked),"
          " KEY blocks_blocked (blocked, blocker),"
          " CONSTRAINT blocks_blocker FOREIGN KEY (blocker) REFERENCES users (user_id)"
          "   ON DELETE CASCADE,"
          " CONSTRAINT blocks_blocked FOREIGN KEY (blocked) REFERENCES users (user_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS chat_groups ("
          " group_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
          " name TEXT NOT NULL,"
          " avatar_url TEXT NOT NULL DEFAULT '',"
          " owner_id BIGINT NOT NULL,"
          " is_public TINYINT NOT NULL DEFAULT 0,"
          " member_count BIGINT NOT NULL DEFAULT 0,"
          " created_at BIGINT NOT NULL,"
          " KEY chat_groups_owner (owner_id),"
          " CONSTRAINT chat_groups_owner FOREIGN KEY (owner_id) REFERENCES users (user_id)"
          ") AUTO_INCREMENT=1001" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS group_members ("
          " group_id BIGINT NOT NULL,"
          " user_id BIGINT NOT NULL,"
          " role TINYINT NOT NULL,"
          " joined_at BIGINT NOT NULL,"
          " joined_seq BIGINT NOT NULL,"
          " PRIMARY KEY (group_id, user_id),"
          " KEY group_members_by_user (user_id, group_id),"
          " CONSTRAINT group_members_role CHECK (role IN (0, 1, 2)),"
          " CONSTRAINT group_members_group FOREIGN KEY (group_id) REFERENCES chat_groups (group_id)"
          "   ON DELETE CASCADE,"
          " CONSTRAINT group_members_user FOREIGN KEY (user_id) REFERENCES users (user_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          // Past memberships: the member saw seqs (joined_seq, left_seq].
          "CREATE TABLE IF NOT EXISTS group_member_spans ("
          " span_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
          " group_id BIGINT NOT NULL,"
          " user_id BIGINT NOT NULL,"
          " joined_seq BIGINT NOT NULL,"
          " left_seq BIGINT NOT NULL,"
          " left_at BIGINT NOT NULL,"
          " KEY group_member_spans_member (group_id, user_id),"
          " CONSTRAINT group_member_spans_group FOREIGN KEY (group_id)"
          "   REFERENCES chat_groups (group_id) ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          // type: 0 private, 1 group. The row of a conversation is its head:
          // appends lock it (SELECT ... FOR UPDATE) to take the next seq.
          "CREATE TABLE IF NOT EXISTS conversations ("
          " conv_id" MPIM_CONV_ID " NOT NULL PRIMARY KEY,"
          " type TINYINT NOT NULL,"
          " last_seq BIGINT NOT NULL DEFAULT 0,"
          " last_msg_id BIGINT NOT NULL DEFAULT 0,"
          " last_activity BIGINT NOT NULL,"
          " created_at BIGINT NOT NULL,"
          " CONSTRAINT conversations_type CHECK (type IN (0, 1))"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS user_conversations ("
          " user_id BIGINT NOT NULL,"
          " conv_id" MPIM_CONV_ID " NOT NULL,"
          " read_seq BIGINT NOT NULL DEFAULT 0,"
          " joined_seq BIGINT NOT NULL DEFAULT 0,"
          " muted TINYINT NOT NULL DEFAULT 0,"
          " pinned TINYINT NOT NULL DEFAULT 0,"
          " PRIMARY KEY (user_id, conv_id),"
          " KEY user_conversations_by_conv (conv_id),"
          " CONSTRAINT user_conversations_user FOREIGN KEY (user_id) REFERENCES users (user_id)"
          "   ON DELETE CASCADE,"
          " CONSTRAINT user_conversations_conv FOREIGN KEY (conv_id)"
          "   REFERENCES conversations (conv_id) ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          "CREATE TABLE IF NOT EXISTS session_cursors ("
          " session_id BIGINT NOT NULL,"
          " conv_id" MPIM_CONV_ID " NOT NULL,"
          " delivered_seq BIGINT NOT NULL,"
          " PRIMARY KEY (session_id, conv_id),"
          " KEY session_cursors_by_conv (conv_id)"
          ")" MPIM_TABLE_OPTIONS,

          // client_msg_id NULL: no idempotency key (server-made messages);
          // the unique key makes (sender, client_msg_id) dedup the
          // database's, across every node.
          "CREATE TABLE IF NOT EXISTS messages ("
          " msg_id BIGINT NOT NULL PRIMARY KEY,"
          " conv_id" MPIM_CONV_ID " NOT NULL,"
          " seq BIGINT NOT NULL,"
          " sender BIGINT NOT NULL,"
          " recipient BIGINT NOT NULL,"
          " type VARCHAR(16) NOT NULL,"
          " body LONGTEXT NOT NULL,"
          " ts BIGINT NOT NULL,"
          " client_msg_id VARCHAR(64),"
          " recalled TINYINT NOT NULL DEFAULT 0,"
          " UNIQUE KEY messages_conv_seq (conv_id, seq),"
          " UNIQUE KEY messages_sender_client_id (sender, client_msg_id),"
          " CONSTRAINT messages_type CHECK (type IN ('text', 'custom', 'system')),"
          " CONSTRAINT messages_conv FOREIGN KEY (conv_id) REFERENCES conversations (conv_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          // The search index: a message's searchable text, matched by
          // InnoDB's FULLTEXT index in boolean mode (see search_store.cc).
          // Every word is indexed, as in SQLite: no stopword list (read when
          // the index is made).
          "SET SESSION innodb_ft_enable_stopword = OFF",
          "CREATE TABLE IF NOT EXISTS message_search ("
          " msg_id BIGINT NOT NULL PRIMARY KEY,"
          " text LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL,"
          " FULLTEXT KEY message_search_text (text),"
          " CONSTRAINT message_search_message FOREIGN KEY (msg_id) REFERENCES messages (msg_id)"
          "   ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,

          // state: 0 ready, 1 leased, 2 dead. run_at: when ready (0) or
          // lease expiry (1).
          "CREATE TABLE IF NOT EXISTS jobs ("
          " job_id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
          " kind VARCHAR(64) NOT NULL,"
          " payload LONGTEXT NOT NULL,"
          " state TINYINT NOT NULL,"
          " attempts BIGINT NOT NULL DEFAULT 0,"
          " max_attempts BIGINT NOT NULL,"
          " backoff_base_ms BIGINT NOT NULL,"
          " backoff_max_ms BIGINT NOT NULL,"
          " run_at BIGINT NOT NULL,"
          " lease_owner VARCHAR(255) NOT NULL DEFAULT '',"
          " last_error TEXT NOT NULL DEFAULT '',"
          " created_at BIGINT NOT NULL,"
          " KEY jobs_due (state, run_at, job_id),"
          " CONSTRAINT jobs_state CHECK (state IN (0, 1, 2))"
          ")" MPIM_TABLE_OPTIONS,

          // One row that Store::Ping rewrites.
          "CREATE TABLE IF NOT EXISTS store_probe ("
          " id INT NOT NULL PRIMARY KEY,"
          " writes BIGINT NOT NULL"
          ")" MPIM_TABLE_OPTIONS,
          "INSERT IGNORE INTO store_probe (id, writes) VALUES (1, 0)",
      },
      // 2: SQLite's migration 4 (offline push: devices, job coalescing).
      {
          "CREATE TABLE IF NOT EXISTS devices ("
          " device_id BIGINT NOT NULL PRIMARY KEY,"
          " session_id BIGINT NOT NULL,"
          " user_id BIGINT NOT NULL,"
          " platform VARCHAR(16) NOT NULL,"
          " token TEXT NOT NULL,"
          " created_at BIGINT NOT NULL,"
          " UNIQUE KEY devices_session (session_id),"
          " KEY devices_by_user (user_id),"
          " CONSTRAINT devices_session_fk FOREIGN KEY (session_id)"
          "   REFERENCES sessions (session_id) ON DELETE CASCADE"
          ")" MPIM_TABLE_OPTIONS,
          "ALTER TABLE jobs ADD COLUMN IF NOT EXISTS coalesce_key VARCHAR(191) NOT NULL DEFAULT ''",
          "CREATE INDEX IF NOT EXISTS jobs_coalesce ON jobs (coalesce_key, kind, state)",
          "CREATE INDEX IF NOT EXISTS jobs_list ON jobs (state, kind, job_id)",
          "CREATE TABLE IF NOT EXISTS job_coalesce ("
          " coalesce_key VARCHAR(191) NOT NULL PRIMARY KEY,"
          " done_at BIGINT NOT NULL,"
          " KEY job_coalesce_done (done_at)"
          ")" MPIM_TABLE_OPTIONS,
      },
  };
  return kMigrations;
}

}  // namespace

int LatestSchemaVersion() { return static_cast<int>(Migrations().size()); }

core::StatusOr<int> ApplyMigrations(Connection& conn) {
  // One node at a time; the others wait here (up to 60 s) and then find the
  // migrations applied.
  MPIM_ASSIGN_OR_RETURN(auto locked, conn.QueryInt("SELECT GET_LOCK('mpim_migrate', 60)"));
  if (!locked || *locked != 1) {
    return absl::UnavailableError("another node holds the migration lock for over 60 s");
  }
  auto migrate = [&]() -> core::StatusOr<int> {
    MPIM_RETURN_IF_ERROR(
        conn.ExecText("CREATE TABLE IF NOT EXISTS schema_version (id INT NOT NULL PRIMARY KEY,"
                      " version INT NOT NULL) ENGINE=InnoDB"));
    MPIM_RETURN_IF_ERROR(
        conn.Exec("INSERT IGNORE INTO schema_version (id, version) VALUES (1, 0)"));
    MPIM_RETURN_IF_ERROR(conn.Commit());
    MPIM_ASSIGN_OR_RETURN(auto row,
                          conn.QueryInt("SELECT version FROM schema_version WHERE id = 1"));
    int version = static_cast<int>(row.value_or(0));
    if (version > LatestSchemaVersion()) {
      return absl::FailedPreconditionError("database schema version " + std::to_string(version) +
                                           " is newer than this build's " +
                                           std::to_string(LatestSchemaVersion()));
    }
    for (; version < LatestSchemaVersion(); ++version) {
      for (const char* statement : Migrations()[static_cast<size_t>(version)]) {
        MPIM_RETURN_IF_ERROR(conn.ExecText(statement));
      }
      MPIM_RETURN_IF_ERROR(
          conn.Exec("UPDATE schema_version SET version = ? WHERE id = 1", version + 1));
      MPIM_RETURN_IF_ERROR(conn.Commit());
    }
    return version;
  };
  core::StatusOr<int> version = migrate();
  if (!conn.broken()) {
    (void)conn.Rollback();
    (void)conn.QueryInt("SELECT RELEASE_LOCK('mpim_migrate')");
  }
  return version;
}

core::StatusOr<int> Migrate(const MysqlOptions& options) {
  MPIM_ASSIGN_OR_RETURN(auto conn, Connection::Open(options));
  return ApplyMigrations(*conn);
}

}  // namespace mpim::store::mysql
