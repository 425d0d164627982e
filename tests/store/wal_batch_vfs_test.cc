// The WAL-batching VFS (store/sqlite/wal_batch_vfs.h) on real SQLite
// files: a commit's frames reach the file in a few writes, before COMMIT
// returns; other connections see every commit whole; a failed write fails
// the commit and leaves the database as it was. (sqlite_durability_test
// kills a writer through it at random points; sqlite_wal_test runs it under
// a concurrent reader and checkpoints.)
#include "store/sqlite/wal_batch_vfs.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <string_view>
#include <thread>

#include "core/metrics.h"
#include "fault_vfs.h"
#include "support/metrics_text.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

namespace {

double WalWrites() {
  return mpim::testing::SeriesValue(core::DefaultRegistry().Exposition(),
                                    "mpim_store_wal_writes_total");
}

// A connection to `path` through `vfs` (nullptr: the default VFS).
sqlite3* OpenDb(const std::string& path, const char* vfs) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs);
  EXPECT_EQ(rc, SQLITE_OK) << sqlite3_errmsg(db);
  return db;
}

int Exec(sqlite3* db, const std::string& sql) {
  return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
}

int64_t QueryInt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) return -1;
  int64_t v = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  return v;
}

// Inserts `rows` rows of 3 KB (about a page each) in one transaction.
int InsertBatch(sqlite3* db, int first, int rows) {
  std::string sql = "BEGIN;";
  for (int i = first; i < first + rows; ++i) {
    sql += "INSERT INTO t (id, b) VALUES (" + std::to_string(i) + ", zeroblob(3000));";
  }
  sql += "COMMIT;";
  return Exec(db, sql);
}

class WalBatchVfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    path_ = dir_.File("t.db");
  }
  // The writer: through the batching VFS over `base`, in WAL mode.
  void OpenWriter(const std::string& base = "") {
    writer_ = OpenDb(path_, sqlite::WalBatchVfs(base));
    ASSERT_EQ(Exec(writer_,
                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                   "PRAGMA wal_autocheckpoint = 0;"
                   "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b BLOB);"),
              SQLITE_OK)
        << sqlite3_errmsg(writer_);
  }
  void TearDown() override {
    if (writer_ != nullptr) sqlite3_close(writer_);
  }

  TempDir dir_;
  std::string path_;
  sqlite3* writer_ = nullptr;
};

TEST_F(WalBatchVfsTest, ACommitsFramesGoToTheFileInAFewWritesBeforeCommitReturns) {
  ASSERT_NO_FATAL_FAILURE(OpenWriter());
  ASSERT_EQ(InsertBatch(writer_, 1, 5), SQLITE_OK);  // the WAL exists
  const int64_t wal_before = std::filesystem::file_size(path_ + "-wal");
  const double writes_before = WalWrites();
  ASSERT_EQ(InsertBatch(writer_, 100, 50), SQLITE_OK);
  // 50+ frames (two system calls each without the VFS) in one write of
  // about 200 KiB, cut in two by the unix VFS's 128 KiB limit.
  const double writes = WalWrites() - writes_before;
  EXPECT_GE(writes, 1);
  EXPECT_LE(writes, 3);
  const int64_t wal_after = std::filesystem::file_size(path_ + "-wal");
  EXPECT_GE(wal_after - wal_before, 50 * (4096 + 24));
  // Already in the file: a connection that does not batch reads it all.
  sqlite3* other = OpenDb(path_, nullptr);
  EXPECT_EQ(QueryInt(other, "SELECT count(*) FROM t"), 55);
  EXPECT_EQ(QueryInt(other, "SELECT sum(length(b)) FROM t"), 55 * 3000);
  sqlite3_close(other);
}

TEST_F(WalBatchVfsTest, ReadersAndCheckpointsSeeEveryCommitWhole) {
  ASSERT_NO_FATAL_FAILURE(OpenWriter());
  constexpr int kBatches = 200, kRows = 20;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0}, reads{0};
  // Each commit adds kRows rows: a reader between two commits sees a
  // multiple of kRows, whole rows, and a database that checks out.
  std::thread reader([&] {
    sqlite3* db = OpenDb(path_, nullptr);
    while (!done.load()) {
      if (Exec(db, "BEGIN") != SQLITE_OK) continue;
      const int64_t n = QueryInt(db, "SELECT count(*) FROM t");
      const int64_t bytes = QueryInt(db, "SELECT sum(length(b)) FROM t");
      (void)Exec(db, "COMMIT");
      if (n < 0) continue;  // busy: the writer was publishing
      if (n % kRows != 0 || bytes != n * 3000) ++torn;
      ++reads;
      (void)Exec(db, "PRAGMA wal_checkpoint(PASSIVE)");
    }
    sqlite3_close(db);
  });
  for (int i = 0; i < kBatches; ++i) {
    ASSERT_EQ(InsertBatch(writer_, 1 + i * kRows, kRows), SQLITE_OK) << sqlite3_errmsg(writer_);
  }
  done.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
  sqlite3* other = OpenDb(path_, nullptr);
  EXPECT_EQ(QueryInt(other, "SELECT count(*) FROM t"), kBatches * kRows);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(other, "PRAGMA integrity_check", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "ok");
  sqlite3_finalize(stmt);
  sqlite3_close(other);
}

TEST_F(WalBatchVfsTest, ATransactionLargerThanTheCacheIsWholeAfterRecovery) {
  ASSERT_NO_FATAL_FAILURE(OpenWriter());
  // A 5-page cache: the inserts spill to the WAL before the commit, the
  // update writes those frames again in place, and at the commit SQLite
  // rewrites their checksums, below the WAL's growing end.
  ASSERT_EQ(Exec(writer_, "PRAGMA cache_size = 5"), SQLITE_OK);
  std::string sql = "BEGIN;";
  for (int i = 1; i <= 100; ++i) {
    sql += "INSERT INTO t (id, b) VALUES (" + std::to_string(i) + ", zeroblob(3000));";
  }
  sql += "UPDATE t SET b = zeroblob(2000) WHERE id % 2 = 0; COMMIT;";
  ASSERT_EQ(Exec(writer_, sql), SQLITE_OK) << sqlite3_errmsg(writer_);
  // Recovery from the files alone (no wal-index): it checks every frame's
  // checksum and keeps only whole transactions.
  TempDir copy;
  std::filesystem::copy_file(path_, copy.File("t.db"));
  std::filesystem::copy_file(path_ + "-wal", copy.File("t.db-wal"));
  sqlite3* other = OpenDb(copy.File("t.db"), nullptr);
  EXPECT_EQ(QueryInt(other, "SELECT count(*) FROM t"), 100);
  EXPECT_EQ(QueryInt(other, "SELECT sum(length(b)) FROM t"), 50 * 3000 + 50 * 2000);
  EXPECT_EQ(
      QueryInt(other, "SELECT count(*) FROM pragma_integrity_check WHERE integrity_check = 'ok'"),
      1);
  sqlite3_close(other);
}

TEST_F(WalBatchVfsTest, AFailedWriteFailsTheCommitAndLeavesTheDatabaseAsItWas) {
  FaultVfs& faults = FaultVfs::Get("wal-batch-fault");
  ASSERT_NO_FATAL_FAILURE(OpenWriter("wal-batch-fault"));
  ASSERT_EQ(InsertBatch(writer_, 1, 10), SQLITE_OK);
  faults.FailWrites(SQLITE_FULL);
  EXPECT_NE(InsertBatch(writer_, 100, 30), SQLITE_OK);
  (void)Exec(writer_, "ROLLBACK");
  faults.FailWrites(0);
  // The failed commit left nothing; the next one works and is whole.
  EXPECT_EQ(QueryInt(writer_, "SELECT count(*) FROM t"), 10);
  ASSERT_EQ(InsertBatch(writer_, 200, 30), SQLITE_OK) << sqlite3_errmsg(writer_);
  sqlite3_close(writer_);
  writer_ = nullptr;
  sqlite3* other = OpenDb(path_, nullptr);
  EXPECT_EQ(QueryInt(other, "SELECT count(*) FROM t"), 40);
  EXPECT_EQ(QueryInt(other, "SELECT count(*) FROM t WHERE id >= 100 AND id < 200"), 0);
  sqlite3_close(other);
}

}  // namespace
}  // namespace mpim::store::testing
