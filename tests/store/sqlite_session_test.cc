// The SQLite engine's bookkeeping of used refresh tokens
// (used_refresh_tokens, migration 2): rows are written by rotations and go
// when their session is revoked or when they pass their own expiry; a
// database of schema version 1 keeps detecting the reuse of the previous
// token after the upgrade.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <string>

#include "store/blocking.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

namespace {

constexpr int64_t kStartMs = 1'700'000'000'000;

class SqliteSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.path = dir_.File("mpim.db");
    options_.now = [this] { return now_ms_; };
    Open();
    alice_ = Call(store_->users(), &UserStore::Create, NewUser{"alice", "h", "", ""})->user_id;
    bob_ = Call(store_->users(), &UserStore::Create, NewUser{"bob", "h", "", ""})->user_id;
  }
  void TearDown() override {
    if (store_) store_->Close();
  }

  void Open() {
    auto store = sqlite::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Runs `sql` on a connection of its own; for a SELECT, the first column of
  // the first row (-1 if none).
  int64_t Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(options_.path.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* stmt = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    int64_t value = -1;
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) value = sqlite3_column_int64(stmt, 0);
    EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return value;
  }

  int64_t UsedRows(int64_t session_id) {
    return Sql("SELECT count(*) FROM used_refresh_tokens WHERE session_id = " +
               std::to_string(session_id));
  }
  int64_t AllUsedRows() { return Sql("SELECT count(*) FROM used_refresh_tokens"); }

  void Create(int64_t id, int64_t user, const std::string& token, int64_t expires) {
    ASSERT_TRUE(
        Call(store_->sessions(), &SessionStore::Create, NewSession{id, user, "d", token, expires})
            .ok());
  }
  RefreshOutcome Rotate(int64_t id, const std::string& presented, const std::string& next,
                        int64_t expires) {
    auto r = Call(store_->sessions(), &SessionStore::RotateRefreshToken, id, presented, next,
                  expires, now_ms_);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->outcome : RefreshOutcome::kRejected;
  }
  // Session `id` with tokens prefix0..prefix<n>, the last one current.
  void CreateRotated(int64_t id, int64_t user, const std::string& prefix, int n, int64_t expires) {
    Create(id, user, prefix + "0", expires);
    for (int i = 1; i <= n; ++i) {
      ASSERT_EQ(Rotate(id, prefix + std::to_string(i - 1), prefix + std::to_string(i), expires),
                RefreshOutcome::kRotated);
    }
  }

  TempDir dir_;
  sqlite::SqliteOptions options_;
  int64_t now_ms_ = kStartMs;
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0, bob_ = 0;
};

TEST_F(SqliteSessionTest, EveryRotationRecordsTheTokenItReplaced) {
  CreateRotated(1, alice_, "a", 5, kStartMs + 1000);
  EXPECT_EQ(UsedRows(1), 5);
  EXPECT_EQ(Sql("SELECT count(*) FROM used_refresh_tokens WHERE session_id = 1 AND token_hash IN"
                " ('a0', 'a1', 'a2', 'a3', 'a4') AND used_at = " +
                std::to_string(kStartMs)),
            5);
  // A rejected token records nothing.
  EXPECT_EQ(Rotate(1, "never-issued", "x", kStartMs + 1000), RefreshOutcome::kRejected);
  EXPECT_EQ(UsedRows(1), 5);
}

TEST_F(SqliteSessionTest, RevocationForgetsTheSessionsUsedTokens) {
  const int64_t exp = kStartMs + 1000;
  CreateRotated(1, alice_, "a", 3, exp);
  CreateRotated(2, alice_, "b", 3, exp);
  CreateRotated(3, alice_, "c", 3, exp);
  CreateRotated(4, bob_, "d", 3, exp);
  CreateRotated(5, bob_, "e", 2, exp);
  ASSERT_EQ(AllUsedRows(), 14);

  ASSERT_TRUE(Call(store_->sessions(), &SessionStore::Revoke, int64_t{1}).ok());
  EXPECT_EQ(UsedRows(1), 0);
  EXPECT_EQ(AllUsedRows(), 11);

  // Reuse revokes and forgets.
  ASSERT_EQ(Rotate(4, "d1", "x", exp), RefreshOutcome::kReused);
  EXPECT_EQ(UsedRows(4), 0);
  EXPECT_EQ(AllUsedRows(), 8);

  // All of alice's (2 and 3); bob's session 5 keeps its rows.
  ASSERT_EQ(*Call(store_->sessions(), &SessionStore::RevokeAllForUser, alice_), 2);
  EXPECT_EQ(AllUsedRows(), 2);
  EXPECT_EQ(UsedRows(5), 2);
}

TEST_F(SqliteSessionTest, ExpiredUsedTokensArePrunedByLaterWrites) {
  // Session 1: a0 valid until +100, rotated at +0 (a0 used, expires +100),
  // then a1 until +200 rotated at +50 (a1 used, expires +200).
  Create(1, alice_, "a0", kStartMs + 100);
  ASSERT_EQ(Rotate(1, "a0", "a1", kStartMs + 200), RefreshOutcome::kRotated);
  now_ms_ = kStartMs + 50;
  ASSERT_EQ(Rotate(1, "a1", "a2", kStartMs + 300), RefreshOutcome::kRotated);
  ASSERT_EQ(UsedRows(1), 2);

  // Past a0's expiry, any rotation (here of another session) prunes it.
  now_ms_ = kStartMs + 100;
  CreateRotated(2, bob_, "b", 1, kStartMs + 10'000);
  EXPECT_EQ(Sql("SELECT count(*) FROM used_refresh_tokens WHERE token_hash = 'a0'"), 0);
  EXPECT_EQ(UsedRows(1), 1);

  // Session 1 expires (+300) without being revoked; a login prunes the rest.
  now_ms_ = kStartMs + 300;
  Create(3, bob_, "c0", kStartMs + 10'000);
  EXPECT_EQ(UsedRows(1), 0);
  EXPECT_EQ(UsedRows(2), 1);
}

TEST_F(SqliteSessionTest, PruningIsBoundedPerWrite) {
  // 100 used tokens that all expire at +100.
  CreateRotated(1, alice_, "a", 100, kStartMs + 100);
  ASSERT_EQ(UsedRows(1), 100);
  now_ms_ = kStartMs + 100;
  Create(2, bob_, "b0", kStartMs + 10'000);
  EXPECT_EQ(UsedRows(1), 100 - 64);
  Create(3, bob_, "c0", kStartMs + 10'000);
  EXPECT_EQ(UsedRows(1), 0);
}

TEST_F(SqliteSessionTest, UpgradeFromVersion1KeepsThePreviousToken) {
  const int64_t exp = kStartMs + 1000;
  CreateRotated(1, alice_, "a", 2, exp);  // prev_refresh_hash = a1
  CreateRotated(2, alice_, "b", 2, exp);
  ASSERT_TRUE(Call(store_->sessions(), &SessionStore::Revoke, int64_t{2}).ok());
  Create(3, alice_, "c0", exp);  // never rotated
  store_->Close();
  store_.reset();
  // Back to what version 1 had: no used_refresh_tokens table (nor the later
  // ones).
  Sql("DROP TABLE used_refresh_tokens");
  Sql("DROP TABLE store_probe");
  Sql("DROP TABLE devices");
  Sql("DROP TABLE job_coalesce");
  Sql("DROP INDEX jobs_coalesce");
  Sql("DROP INDEX jobs_list");
  Sql("ALTER TABLE jobs DROP COLUMN coalesce_key");
  Sql("UPDATE schema_version SET version = 1");
  ASSERT_EQ(Sql("SELECT version FROM schema_version"), 1);

  Open();
  ASSERT_EQ(Sql("SELECT version FROM schema_version"), sqlite::LatestSchemaVersion());
  // Only the live, rotated session's previous token is carried over.
  EXPECT_EQ(AllUsedRows(), 1);
  EXPECT_EQ(Sql("SELECT expires_at FROM used_refresh_tokens WHERE session_id = 1"
                " AND token_hash = 'a1'"),
            exp);
  EXPECT_EQ(Rotate(3, "c0", "c1", exp), RefreshOutcome::kRotated);
  EXPECT_EQ(Rotate(1, "a1", "x", exp), RefreshOutcome::kReused);
}

}  // namespace
}  // namespace mpim::store::testing
