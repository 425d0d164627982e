// Where the SQLite executor runs a write's callback: on the loop of the
// thread that queued it (an io thread: core::CurrentLoop()), in commit
// order, one post per loop and batch; on the completion thread for a thread
// without a loop, or once that loop has stopped.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/loop.h"
#include "store/sqlite/executor.h"
#include "support/temp_dir.h"

namespace mpim::store::sqlite {
namespace {

using ::mpim::testing::TempDir;

// A loop on a thread of its own, as an io thread runs one: names itself
// the thread's core::CurrentLoop(); refuses posts once stopped.
class ThreadLoop final : public core::Loop {
 public:
  ThreadLoop() {
    thread_ = std::thread([this] {
      core::LoopScope scope(this);
      for (;;) {
        absl::AnyInvocable<void() &&> fn;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [this] { return !queue_.empty() || stopped_; });
          if (queue_.empty()) return;
          fn = std::move(queue_.front());
          queue_.pop_front();
        }
        std::move(fn)();
      }
    });
  }
  ~ThreadLoop() override { Stop(); }

  bool Post(absl::AnyInvocable<void() &&>& fn) override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return false;
      queue_.push_back(std::move(fn));
      ++posts_;
    }
    cv_.notify_one();
    return true;
  }

  // Runs `fn` on the loop and waits for it.
  void RunHere(absl::AnyInvocable<void() &&> fn) {
    std::promise<void> ran;
    absl::AnyInvocable<void()&&> task = [&ran, fn = std::move(fn)]() mutable {
      std::move(fn)();
      ran.set_value();
    };
    ASSERT_TRUE(Post(task));
    ran.get_future().wait();
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopped_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  std::thread::id id() const { return thread_.get_id(); }
  int posts() {
    std::lock_guard lock(mu_);
    return posts_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<absl::AnyInvocable<void() &&>> queue_;
  bool stopped_ = false;
  int posts_ = 0;
  std::thread thread_;
};

class ExecutorLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SqliteOptions options;
    options.path = dir_.File("loop.db");
    auto exec = Executor::Start(options);
    ASSERT_TRUE(exec.ok()) << exec.status();
    exec_ = std::move(*exec);
    std::promise<core::Status> made;
    exec_->Write<core::Status>(
        [](Connection& c) { return c.Exec("CREATE TABLE t (x INTEGER NOT NULL)"); },
        [&made](core::Status s) { made.set_value(s); });
    ASSERT_TRUE(made.get_future().get().ok());
    // That callback ran on the completion thread, which notes that it is
    // idle again just after: a batch committed before would still go
    // through it.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // Queues an insert of `x`; its callback records where and in what order
  // it ran.
  void Insert(int x, std::vector<int>* order, std::vector<std::thread::id>* threads,
              std::latch* done) {
    exec_->Write<core::Status>([x](Connection& c) { return c.Exec("INSERT INTO t VALUES (?)", x); },
                               [=](core::Status s) {
                                 EXPECT_TRUE(s.ok()) << s;
                                 order->push_back(x);
                                 threads->push_back(std::this_thread::get_id());
                                 done->count_down();
                               });
  }

  TempDir dir_;
  std::unique_ptr<Executor> exec_;
};

TEST_F(ExecutorLoopTest, ASmallBatchsCallbacksRunOnTheCallersLoop) {
  ThreadLoop loop;
  // One write at a time: batches of one.
  for (int i = 0; i < 20; ++i) {
    std::vector<int> order;
    std::vector<std::thread::id> threads;
    std::latch done(1);
    loop.RunHere([&] { Insert(i, &order, &threads, &done); });
    done.wait();
    ASSERT_EQ(threads.size(), 1u);
    EXPECT_EQ(threads[0], loop.id());
  }
  EXPECT_GE(loop.posts(), 20 + 20);  // RunHere's and the callbacks'
}

TEST_F(ExecutorLoopTest, ALoopsCallbacksKeepCommitOrderAcrossBothRoutes) {
  ThreadLoop loop;
  constexpr int kRounds = 10;
  constexpr int kBurst = 200;
  constexpr int kWrites = kRounds * (kBurst + 2);
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::latch done(kWrites);
  int next = 0;
  auto queue = [&](int n, std::chrono::microseconds callback_time) {
    loop.RunHere([&, n, callback_time] {
      for (int i = 0; i < n; ++i) {
        Insert(next++, &order, &threads, &done);
        // Slow callbacks keep the completion thread busy for a while.
        exec_->Write<core::Status>(
            [](Connection&) { return core::Status(); },
            [callback_time](core::Status) { std::this_thread::sleep_for(callback_time); });
      }
    });
  };
  for (int round = 0; round < kRounds; ++round) {
    // A burst: large batches, whose callbacks go to the completion thread
    // and keep it busy for a few milliseconds.
    queue(kBurst, std::chrono::microseconds(10));
    // A lone write committed meanwhile: a batch of one, which must wait
    // for the completion thread all the same to keep its order.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    queue(1, std::chrono::microseconds(0));
    // Another once all is done: straight to the loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    queue(1, std::chrono::microseconds(0));
  }
  done.wait();
  loop.RunHere([&] {
    ASSERT_EQ(order.size(), static_cast<size_t>(kWrites));
    for (int i = 0; i < kWrites; ++i) ASSERT_EQ(order[i], i);
    const auto on_loop = std::count(threads.begin(), threads.end(), loop.id());
    EXPECT_GT(on_loop, 0);
    EXPECT_LT(on_loop, kWrites);
  });
}

TEST_F(ExecutorLoopTest, CallbacksOfOtherThreadsRunOnTheCompletionThread) {
  ThreadLoop loop;
  std::vector<int> order;
  std::vector<std::thread::id> threads;
  std::latch done(100);
  for (int i = 0; i < 100; ++i) Insert(i, &order, &threads, &done);
  done.wait();
  ASSERT_EQ(threads.size(), 100u);
  for (size_t i = 0; i < threads.size(); ++i) {
    EXPECT_EQ(order[i], static_cast<int>(i));
    EXPECT_NE(threads[i], std::this_thread::get_id());
    EXPECT_NE(threads[i], loop.id());
    EXPECT_EQ(threads[i], threads[0]);  // the one completion thread
  }
  EXPECT_EQ(loop.posts(), 0);
}

TEST_F(ExecutorLoopTest, AStoppedLoopsCallbacksStillRun) {
  auto loop = std::make_unique<ThreadLoop>();
  // The write waits on the writer until the loop has stopped.
  std::promise<void> stopped;
  std::shared_future<void> stopped_f = stopped.get_future().share();
  std::promise<std::thread::id> completed;
  loop->RunHere([&] {
    exec_->Write<core::Status>(
        [stopped_f](Connection& c) {
          stopped_f.wait();
          return c.Exec("INSERT INTO t VALUES (1)");
        },
        [&completed](core::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          completed.set_value(std::this_thread::get_id());
        });
  });
  const std::thread::id loop_id = loop->id();
  loop->Stop();
  stopped.set_value();
  auto f = completed.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_NE(f.get(), loop_id);
}

}  // namespace
}  // namespace mpim::store::sqlite
