// The WAL stays bounded under sustained writes. SQLite starts the WAL over
// only when every frame has been copied back into the database; a passive
// checkpoint running beside a busy writer never gets there, so before the
// executor's catch-up the WAL grew by about a page per message for as long as
// writes kept coming (460 MB for a 24 MB database in a few seconds).
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <semaphore>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "store/blocking.h"
#include "store/conv_id.h"
#include "store/sqlite/executor.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "support/metrics_text.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

namespace {

constexpr int kUsers = 1001;
constexpr int kAppends = 100'000;
constexpr int kCallers = 2;
constexpr int kInFlightPerCaller = 512;

int64_t FileSize(const std::string& path) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<int64_t>(size);
}

// A store in a fresh directory with kUsers users.
class SqliteWalTest : public ::testing::Test {
 protected:
  void Open() {
    ASSERT_FALSE(dir_.path().empty());
    options.path = dir_.File("wal.db");
    auto opened = sqlite::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    for (int i = 0; i < kUsers; ++i) {
      auto user = Call(store_->users(), &UserStore::Create,
                       NewUser{"user" + std::to_string(i), "h", "", ""});
      ASSERT_TRUE(user.ok()) << user.status();
      users.push_back(user->user_id);
    }
  }

  // Message `msg_id` in the conversation of users[0] with a peer picked by
  // the id (1,000 conversations), sent by users[0] or by the peer.
  AppendRequest Request(int64_t msg_id, bool from_first, std::string body) const {
    AppendRequest r;
    r.msg_id = msg_id;
    const size_t peer = 1 + static_cast<size_t>(msg_id % (kUsers - 1));
    r.conv_id = PrivateConvId(users[0], users[peer]);
    r.sender = from_first ? users[0] : users[peer];
    r.recipient = from_first ? users[peer] : users[0];
    r.body = std::move(body);
    r.ts = msg_id;
    r.client_msg_id = "c" + std::to_string(msg_id);
    return r;
  }

  TempDir dir_;
  sqlite::SqliteOptions options;
  std::unique_ptr<Store> store_;
  std::vector<int64_t> users;
};

// A series' value in the process's metrics (0 when absent).
double MetricValue(std::string_view series) {
  return mpim::testing::SeriesValue(core::DefaultRegistry().Exposition(), series);
}

TEST_F(SqliteWalTest, WalStaysBoundedUnderSustainedAppends) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Store& store = *store_;
  const double frames_before = MetricValue("mpim_store_wal_frames_total");
  const double writes_before = MetricValue("mpim_store_wal_writes_total");
  const double catch_ups_before = MetricValue("mpim_store_writer_checkpoint_seconds_count");

  // Appends spread over 1,000 conversations (a page of an index per message
  // in each commit), many in flight; a reader keeps reading history.
  std::atomic<int64_t> next_id{1};
  std::atomic<int64_t> errors{0};
  std::atomic<bool> done{false};
  std::atomic<int64_t> max_wal{0};
  const std::string wal_path = options.path + "-wal";
  std::thread sampler([&] {
    while (!done.load()) {
      const int64_t size = FileSize(wal_path);
      int64_t seen = max_wal.load();
      while (size > seen && !max_wal.compare_exchange_weak(seen, size)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  std::thread reader([&] {
    int64_t i = 0;
    while (!done.load()) {
      auto conv = PrivateConvId(users[0], users[1 + static_cast<size_t>(i++ % (kUsers - 1))]);
      (void)Call(store.messages(), &MessageStore::Read, conv, RangeQuery{0, std::nullopt, 50});
    }
  });
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      auto slots = std::make_shared<std::counting_semaphore<>>(kInFlightPerCaller);
      for (int i = 0; i < kAppends / kCallers; ++i) {
        slots->acquire();
        // Senders vary too, so the (sender, client_msg_id) index is written
        // all over as well.
        AppendRequest r = Request(next_id.fetch_add(1), (i + c) % 2 == 0,
                                  "{\"text\":\"a message of about the usual size for a chat\"}");
        store.messages().Append(r, [slots, &errors](core::StatusOr<AppendResult> res) {
          if (!res.ok()) errors.fetch_add(1);
          slots->release();
        });
      }
      for (int i = 0; i < kInFlightPerCaller; ++i) slots->acquire();
    });
  }
  for (auto& t : callers) t.join();
  done.store(true);
  reader.join();
  sampler.join();
  EXPECT_EQ(errors.load(), 0);

  // About kMaxWalPages frames plus a batch's (512 appends, a few pages
  // each), each frame a 4 KiB page and a 24-byte header; without the
  // catch-up the WAL passes 300 MB here.
  constexpr int64_t kFrameBytes = 4096 + 24;
  const int64_t bound = (sqlite::Executor::kMaxWalPages + 5 * 512) * kFrameBytes;
  EXPECT_LE(max_wal.load(), bound) << "largest WAL seen: " << max_wal.load() << " bytes";
  EXPECT_GT(max_wal.load(), 0);
  RecordProperty("max_wal_bytes", std::to_string(max_wal.load()));
  // What kept it bounded: the writer's catch-ups (timed), and the frames the
  // commits wrote (at least one per commit of about 512 appends).
  EXPECT_GT(MetricValue("mpim_store_writer_checkpoint_seconds_count"), catch_ups_before);
  const double frames = MetricValue("mpim_store_wal_frames_total") - frames_before;
  EXPECT_GE(frames, kAppends / 512);
  // The frames went out many per write (wal_batch_vfs.h), not two writes
  // each.
  const double writes = MetricValue("mpim_store_wal_writes_total") - writes_before;
  EXPECT_GT(writes, 0);
  EXPECT_LT(writes * 10, frames) << writes << " writes for " << frames << " frames";

  // Every append is there.
  int64_t total = 0;
  for (int i = 1; i < kUsers; ++i) {
    auto page = Call(store.messages(), &MessageStore::Read, PrivateConvId(users[0], users[i]),
                     RangeQuery{0, std::nullopt, 500});
    ASSERT_TRUE(page.ok()) << page.status();
    total += static_cast<int64_t>(page->items.size());
  }
  EXPECT_EQ(total, kAppends);
}

// A read that holds an old snapshot keeps the checkpoints from copying past
// it. Writes must go on meanwhile (the WAL grows for as long as the read
// lasts), and the WAL starts over once it has ended. Before, the
// checkpointer retried without end while nothing could be copied and the
// writer, at kMaxWalPages frames, waited for it: writes stopped for as long
// as the read lasted.
TEST_F(SqliteWalTest, ALongReadDoesNotStopWrites) {
  ASSERT_NO_FATAL_FAILURE(Open());
  Store& store = *store_;
  // Appends over 1,000 conversations, 512 in flight; returns the errors.
  int64_t next_id = 1;
  auto append = [&](int n) {
    std::atomic<int64_t> errors{0};
    auto slots = std::make_shared<std::counting_semaphore<>>(512);
    for (int i = 0; i < n; ++i) {
      slots->acquire();
      AppendRequest r = Request(next_id++, false, "{\"text\":\"held back by a long read\"}");
      store.messages().Append(r, [slots, &errors](core::StatusOr<AppendResult> res) {
        if (!res.ok()) errors.fetch_add(1);
        slots->release();
      });
    }
    for (int i = 0; i < 512; ++i) slots->acquire();
    return errors.load();
  };
  ASSERT_EQ(append(2'000), 0);

  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open_v2(options.path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr),
            SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM messages;", nullptr, nullptr, nullptr),
      SQLITE_OK);
  // Enough to pass kMaxWalPages frames (about one per append here) while
  // the read holds its snapshot: all of them complete.
  EXPECT_EQ(append(6 * sqlite::Executor::kMaxWalPages), 0);
  const int64_t held_wal = FileSize(options.path + "-wal");
  EXPECT_GT(held_wal, sqlite::Executor::kMaxWalPages * int64_t{4096});
  ASSERT_EQ(sqlite3_exec(reader, "COMMIT;", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(reader);

  // The read is over: the WAL is copied back and starts over (the file is
  // cut back to journal_size_limit, 64 MiB, at the restart, and is written
  // from its beginning again).
  ASSERT_EQ(append(20'000), 0);
  RecordProperty("wal_bytes_while_read_held", std::to_string(held_wal));
  auto page = Call(store.messages(), &MessageStore::Read, PrivateConvId(users[0], users[1]),
                   RangeQuery{0, std::nullopt, 500});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_FALSE(page->items.empty());
}

}  // namespace
}  // namespace mpim::store::testing
