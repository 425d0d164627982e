// The SQLite engine under faults: a full disk, a read-only one and I/O
// errors surface as kUnavailable (never OK), consume no seq, and the writer
// (and Ping) recover by themselves once the fault is gone. Also: a write failing mid-batch fails
// alone; opening, migrating and closing.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <vector>

#include "fault_vfs.h"
#include "store/blocking.h"
#include "store/conv_id.h"
#include "store/registry.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

namespace {

using absl::StatusCode;

class SqliteFaultTest : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    options_.path = dir_.File("mpim.db");
    options_.vfs = "mpim-fault";
    faults_ = &FaultVfs::Get(options_.vfs);
    faults_->FailWrites(0);
    auto store = sqlite::Open(options_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    alice_ = Call(store_->users(), &UserStore::Create, NewUser{"alice", "h", "", ""})->user_id;
    bob_ = Call(store_->users(), &UserStore::Create, NewUser{"bob", "h", "", ""})->user_id;
    conv_ = PrivateConvId(alice_, bob_);
  }
  void TearDown() override {
    faults_->FailWrites(0);
    faults_->ReleaseWrites();
    if (store_) store_->Close();
  }

  AppendRequest Message(const std::string& client_msg_id) {
    AppendRequest r;
    r.msg_id = next_msg_id_++;
    r.conv_id = conv_;
    r.sender = alice_;
    r.recipient = bob_;
    r.body = "{\"text\":\"hi\"}";
    r.ts = 1;
    r.client_msg_id = client_msg_id;
    return r;
  }
  core::StatusOr<AppendResult> Append(const AppendRequest& r) {
    return Call(store_->messages(), &MessageStore::Append, r);
  }

  TempDir dir_;
  sqlite::SqliteOptions options_;
  FaultVfs* faults_ = nullptr;
  std::unique_ptr<Store> store_;
  int64_t alice_ = 0, bob_ = 0;
  std::string conv_;
  int64_t next_msg_id_ = 1'000'000;
};

TEST_P(SqliteFaultTest, StorageFailureIsUnavailableAndTheWriterRecovers) {
  ASSERT_TRUE(Append(Message("a")).ok());
  ASSERT_TRUE(Append(Message("b")).ok());
  EXPECT_TRUE(Call(*store_, &Store::Ping).ok());

  faults_->FailWrites(GetParam());
  // Several at once, so that batches of many writes fail too.
  std::vector<std::future<core::StatusOr<AppendResult>>> pending;
  for (int i = 0; i < 50; ++i) {
    auto promise = std::make_shared<std::promise<core::StatusOr<AppendResult>>>();
    pending.push_back(promise->get_future());
    store_->messages().Append(
        Message("f" + std::to_string(i)),
        [promise](core::StatusOr<AppendResult> r) { promise->set_value(std::move(r)); });
  }
  for (auto& f : pending) EXPECT_EQ(f.get().status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Call(store_->users(), &UserStore::TouchLastSeen, alice_, int64_t{9}).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(Call(*store_, &Store::Ping).code(), StatusCode::kUnavailable);
  // Reads still work meanwhile.
  auto page = Call(store_->messages(), &MessageStore::Read, conv_, RangeQuery{0, std::nullopt, 10});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->items.size(), 2u);

  faults_->FailWrites(0);
  auto next = Append(Message("c"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->message.seq, 3);  // the failed appends consumed nothing
  EXPECT_TRUE(Call(*store_, &Store::Ping).ok());
  // A failed append's key was never taken: retrying it works.
  auto retried = Append(Message("f0"));
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->duplicate);
  EXPECT_EQ(retried->message.seq, 4);

  // And it all survives a reopen.
  store_->Close();
  auto reopened = sqlite::Open(options_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  store_ = std::move(*reopened);
  EXPECT_EQ(Call(store_->conversations(), &ConversationStore::Get, conv_)->last_seq, 4);
}

// Ping writes: it notices a fault that no other write has met yet, and its
// end without waiting for client traffic to retry.
TEST_P(SqliteFaultTest, PingNoticesAFaultAndItsEndWithoutOtherWrites) {
  ASSERT_TRUE(Call(*store_, &Store::Ping).ok());
  faults_->FailWrites(GetParam());
  auto failed = Call(*store_, &Store::Ping);
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed;
  EXPECT_EQ(Call(*store_, &Store::Ping).code(), StatusCode::kUnavailable);
  faults_->FailWrites(0);
  auto recovered = Call(*store_, &Store::Ping);
  EXPECT_TRUE(recovered.ok()) << recovered;
  // The probe left no trace in the data.
  auto next = Append(Message("after"));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->message.seq, 1);
}

INSTANTIATE_TEST_SUITE_P(Faults, SqliteFaultTest,
                         ::testing::Values(SQLITE_FULL, SQLITE_IOERR_WRITE, SQLITE_READONLY),
                         [](const ::testing::TestParamInfo<int>& info) {
                           switch (info.param) {
                             case SQLITE_FULL:
                               return std::string("DiskFull");
                             case SQLITE_READONLY:
                               return std::string("ReadOnly");
                             default:
                               return std::string("IoError");
                           }
                         });

using SqliteBatchTest = SqliteFaultTest;

// Writes queued while the writer is held up in a commit all land in its next
// batch; one of them fails after changing rows (a msg_id already used) and
// must fail alone.
TEST_F(SqliteBatchTest, AWriteFailingMidBatchFailsAlone) {
  auto first = Append(Message("first"));
  ASSERT_TRUE(first.ok());

  faults_->HoldWrites();
  std::promise<core::StatusOr<AppendResult>> blocker;
  store_->messages().Append(
      Message("blocker"), [&](core::StatusOr<AppendResult> r) { blocker.set_value(std::move(r)); });
  faults_->WaitForHeldWrite();  // the writer is inside the blocker's commit

  constexpr int kBurst = 40;
  std::vector<std::future<core::StatusOr<AppendResult>>> results;
  for (int i = 0; i < kBurst; ++i) {
    AppendRequest r = Message("burst" + std::to_string(i));
    if (i == kBurst / 2) r.msg_id = first->message.msg_id;  // fails at the insert
    auto promise = std::make_shared<std::promise<core::StatusOr<AppendResult>>>();
    results.push_back(promise->get_future());
    store_->messages().Append(
        r, [promise](core::StatusOr<AppendResult> res) { promise->set_value(std::move(res)); });
  }
  faults_->ReleaseWrites();
  ASSERT_TRUE(blocker.get_future().get().ok());

  std::vector<int64_t> seqs;
  for (int i = 0; i < kBurst; ++i) {
    auto r = results[static_cast<size_t>(i)].get();
    if (i == kBurst / 2) {
      EXPECT_EQ(r.status().code(), StatusCode::kAlreadyExists);
    } else {
      ASSERT_TRUE(r.ok()) << i << ": " << r.status();
      seqs.push_back(r->message.seq);
    }
  }
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], static_cast<int64_t>(i + 3));
  EXPECT_EQ(Call(store_->conversations(), &ConversationStore::Get, conv_)->last_seq, kBurst + 1);
}

TEST_F(SqliteBatchTest, CallsAfterCloseCompleteInlineWithUnavailable) {
  store_->Close();
  store_->Close();  // idempotent
  EXPECT_EQ(Append(Message("late")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(Call(store_->users(), &UserStore::Get, alice_).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(Call(*store_, &Store::Ping).code(), StatusCode::kUnavailable);
}

TEST(SqliteOpenTest, OpenAndMigrateErrors) {
  TempDir dir;
  sqlite::SqliteOptions options;
  options.path = dir.File("no/such/dir/mpim.db");
  EXPECT_EQ(sqlite::Open(options).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(sqlite::Migrate(options).status().code(), StatusCode::kUnavailable);
  options.path = dir.File("mpim.db");
  // The registry: engines by the name in config.store.engine.
  core::Config config;
  config.server.data_dir = dir.path();
  config.store.engine = "nosuchengine";
  EXPECT_EQ(OpenStore(config).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(MigrateStore(config).status().code(), StatusCode::kInvalidArgument);
  config.store.engine = "sqlite";
  EXPECT_EQ(*MigrateStore(config), sqlite::LatestSchemaVersion());
  EXPECT_TRUE(OpenStore(config).ok());
  EXPECT_EQ(StoreEngines(), (std::vector<std::string>{"sqlite", "mysql"}));
  sqlite::SqliteOptions bad = options;
  bad.synchronous = "off";
  EXPECT_EQ(sqlite::Open(bad).status().code(), StatusCode::kInvalidArgument);
  bad = options;
  bad.batch_max = 0;
  EXPECT_EQ(sqlite::Open(bad).status().code(), StatusCode::kInvalidArgument);
  bad = options;
  bad.reader_threads = 0;
  EXPECT_EQ(sqlite::Open(bad).status().code(), StatusCode::kInvalidArgument);
}

TEST(SqliteOpenTest, MigrationsAreVersionedAndIdempotent) {
  TempDir dir;
  sqlite::SqliteOptions options;
  options.path = dir.File("mpim.db");
  options.synchronous = "full";
  auto version = sqlite::Migrate(options);
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, sqlite::LatestSchemaVersion());
  EXPECT_EQ(*sqlite::Migrate(options), sqlite::LatestSchemaVersion());
  {
    auto store = sqlite::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(Call((*store)->users(), &UserStore::Create, NewUser{"kept", "h", "", ""}).ok());
  }
  {
    auto store = sqlite::Open(options);
    ASSERT_TRUE(store.ok());
    EXPECT_TRUE(Call((*store)->users(), &UserStore::GetByUsername, std::string("kept")).ok());
  }
  // A file written by a newer build is refused, not damaged.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(options.path.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 999", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EQ(sqlite::Open(options).status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace mpim::store::testing
