// Durability: a child process appends in a loop (several threads, many
// appends in flight) and writes each acknowledged seq to a pipe; the parent
// kills it with SIGKILL at a random point, reopens the database and checks
// that every acknowledged message is there and that the seqs are contiguous.
// Repeated on the same file, so each round also recovers the previous one's
// WAL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <semaphore>
#include <set>
#include <thread>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

namespace {

constexpr int kWriterThreads = 4;
constexpr int kInFlightPerThread = 16;

// The child: never returns. Exit code 2 on a setup failure, 3 on an append
// error.
[[noreturn]] void RunChild(const sqlite::SqliteOptions& options, const std::string& conv_id,
                           int64_t sender, int64_t recipient, int round, int ack_fd) {
  auto store = sqlite::Open(options);
  if (!store.ok()) _exit(2);
  MessageStore& messages = (*store)->messages();
  std::vector<std::thread> threads;
  for (int t = 0; t < kWriterThreads; ++t) {
    threads.emplace_back([&, t] {
      auto slots = std::make_shared<std::counting_semaphore<>>(kInFlightPerThread);
      for (int64_t i = 0;; ++i) {
        slots->acquire();
        AppendRequest r;
        // Unique across rounds and threads.
        r.msg_id = (static_cast<int64_t>(round) << 40) + (static_cast<int64_t>(t) << 32) + i + 1;
        r.conv_id = conv_id;
        r.sender = sender;
        r.recipient = recipient;
        r.body = "{\"text\":\"durable\"}";
        r.ts = 1;
        r.client_msg_id = std::to_string(r.msg_id);
        messages.Append(r, [slots, ack_fd](core::StatusOr<AppendResult> result) {
          if (!result.ok()) _exit(3);
          int64_t seq = result->message.seq;
          // 8 bytes < PIPE_BUF: atomic with respect to the other threads.
          if (write(ack_fd, &seq, sizeof seq) != sizeof seq) _exit(3);
          slots->release();
        });
      }
    });
  }
  for (auto& t : threads) t.join();
  _exit(0);
}

TEST(SqliteDurabilityTest, EveryAcknowledgedAppendSurvivesSigkill) {
  TempDir dir;
  sqlite::SqliteOptions options;
  options.path = dir.File("mpim.db");
  int64_t alice = 0, bob = 0;
  {
    auto store = sqlite::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    alice = Call((*store)->users(), &UserStore::Create, NewUser{"alice", "h", "", ""})->user_id;
    bob = Call((*store)->users(), &UserStore::Create, NewUser{"bob", "h", "", ""})->user_id;
  }
  const std::string conv = PrivateConvId(alice, bob);
  std::mt19937 rng(std::random_device{}());
  std::set<int64_t> acked;

  for (int round = 1; round <= 5; ++round) {
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(fds[0]);
      RunChild(options, conv, alice, bob, round, fds[1]);
    }
    close(fds[1]);
    // Kill it after a random number of acknowledgements.
    const size_t kill_after = std::uniform_int_distribution<size_t>(200, 3000)(rng);
    size_t got = 0;
    bool killed = false;
    int64_t seq = 0;
    while (read(fds[0], &seq, sizeof seq) == sizeof seq) {
      acked.insert(seq);
      if (++got == kill_after && !killed) {
        ASSERT_EQ(kill(pid, SIGKILL), 0);
        killed = true;
      }
    }
    close(fds[0]);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(killed) << "child ended on its own, exit status " << status;
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;

    auto store = sqlite::Open(options);
    ASSERT_TRUE(store.ok()) << store.status();
    auto c = Call((*store)->conversations(), &ConversationStore::Get, conv);
    ASSERT_TRUE(c.ok()) << c.status();
    const int64_t last_seq = c->last_seq;
    ASSERT_GE(last_seq, *acked.rbegin()) << "round " << round;
    // Every stored message, in order, seqs 1..last_seq without a gap.
    std::set<int64_t> stored;
    int64_t after = 0;
    for (;;) {
      auto page = Call((*store)->messages(), &MessageStore::Read, conv,
                       RangeQuery{after, std::nullopt, kMaxPageLimit});
      ASSERT_TRUE(page.ok()) << page.status();
      for (const Message& m : page->items) {
        ASSERT_EQ(m.seq, after + 1) << "gap in round " << round;
        after = m.seq;
        stored.insert(m.seq);
      }
      if (!page->has_more) break;
    }
    ASSERT_EQ(after, last_seq);
    for (int64_t s : acked) ASSERT_TRUE(stored.count(s)) << "acknowledged seq " << s << " lost";
  }
}

}  // namespace
}  // namespace mpim::store::testing
