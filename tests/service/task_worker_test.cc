// TaskWorker (service/task/task_worker.h) on a real SQLite job queue: a
// handler gets every leased job of its kind in one call, in job order; the
// jobs it says succeeded are acked (gone), the others failed (retried, or
// dead letters once their attempts are used up).
#include "service/task/task_worker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "support/sqlite_store_fixture.h"

namespace mpim::service {
namespace {

using Clock = std::chrono::steady_clock;

class TaskWorkerTest : public testing::SqliteStoreTest {
 protected:
  void Enqueue(const std::string& kind, const std::string& payload, int max_attempts = 5) {
    store::NewJob job;
    job.kind = kind;
    job.payload = payload;
    job.max_attempts = max_attempts;
    auto id = store::Call(store_->jobs(), &store::JobStore::Enqueue, job);
    ASSERT_TRUE(id.ok()) << id.status();
  }
  // Waits (at most 10 s) until `done` holds.
  template <typename Fn>
  static bool WaitFor(Fn done) {
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }
  // What a lease finds now (leases it for a minute).
  std::vector<store::Job> Due() {
    auto jobs = store::Call(store_->jobs(), &store::JobStore::Lease, std::string("probe"), 100,
                            int64_t{60000});
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *jobs : std::vector<store::Job>{};
  }

  std::mutex mu_;
  std::vector<std::pair<std::string, std::vector<std::string>>> calls_;  // kind, payloads
  std::atomic<int> handled_{0};

  TaskWorker::Handler Recorder(const std::string& kind) {
    return [this, kind](const std::vector<store::Job>& jobs) {
      std::vector<std::string> payloads;
      std::vector<core::Status> results;
      for (const auto& j : jobs) {
        payloads.push_back(j.payload);
        results.push_back(j.payload == "bad" ? absl::InternalError("bad job") : core::Status());
      }
      {
        std::lock_guard lock(mu_);
        calls_.emplace_back(kind, std::move(payloads));
      }
      handled_ += static_cast<int>(jobs.size());
      return results;
    };
  }
};

TEST_F(TaskWorkerTest, AHandlerGetsEveryLeasedJobOfItsKindInOneCallInJobOrder) {
  for (int i = 1; i <= 5; ++i) Enqueue("a", "a" + std::to_string(i));
  Enqueue("b", "b1");
  Enqueue("b", "b2");
  TaskWorker worker(*store_, "w");
  worker.Register("a", Recorder("a"));
  worker.Register("b", Recorder("b"));
  worker.Start();
  ASSERT_TRUE(WaitFor([&] { return handled_.load() == 7; })) << handled_.load();
  worker.Stop();
  using Call = std::pair<std::string, std::vector<std::string>>;
  EXPECT_EQ(calls_,
            (std::vector<Call>{{"a", {"a1", "a2", "a3", "a4", "a5"}}, {"b", {"b1", "b2"}}}));
  EXPECT_TRUE(Due().empty()) << "every job acked";
}

TEST_F(TaskWorkerTest, TheFailedJobsOfABatchAreFailedAndTheOthersAcked) {
  Enqueue("a", "ok1");
  Enqueue("a", "bad", /*max_attempts=*/1);
  Enqueue("a", "ok2");
  Enqueue("c", "no handler", /*max_attempts=*/1);
  TaskWorker worker(*store_, "w");
  worker.Register("a", Recorder("a"));
  worker.Start();
  ASSERT_TRUE(WaitFor([&] {
    auto dead = store::Call(store_->jobs(), &store::JobStore::ListDead, int64_t{0}, 10);
    return handled_.load() == 3 && dead.ok() && dead->items.size() == 2;
  }));
  worker.Stop();
  auto dead = store::Call(store_->jobs(), &store::JobStore::ListDead, int64_t{0}, 10);
  ASSERT_TRUE(dead.ok()) << dead.status();
  ASSERT_EQ(dead->items.size(), 2u);
  EXPECT_EQ(dead->items[0].payload, "bad");
  EXPECT_EQ(dead->items[0].last_error, "bad job");
  EXPECT_EQ(dead->items[1].payload, "no handler");
  EXPECT_TRUE(Due().empty()) << "the good ones acked";
}

TEST_F(TaskWorkerTest, AHandlerMayMakeAFailureFinalOrChooseItsDelay) {
  Enqueue("a", "final", /*max_attempts=*/5);
  Enqueue("a", "later", /*max_attempts=*/5);
  TaskWorker worker(*store_, "w");
  worker.Register("a", [](const std::vector<store::Job>& jobs) {
    std::vector<core::Status> results;
    for (const auto& j : jobs) {
      results.push_back(j.payload == "final"
                            ? FinalFailure(absl::FailedPreconditionError("HTTP 400"))
                            : RetryAfter(absl::UnavailableError("HTTP 429"), 3600000));
    }
    return results;
  });
  worker.Start();
  auto settled = [&] {
    auto all = store::Call(store_->jobs(), &store::JobStore::List, store::JobFilter{});
    if (!all.ok() || all->items.size() != 2) return false;
    return all->items[0].state == store::JobState::kDead &&
           all->items[1].state == store::JobState::kReady && all->items[1].attempts == 1;
  };
  ASSERT_TRUE(WaitFor(settled));
  worker.Stop();
  auto all = store::Call(store_->jobs(), &store::JobStore::List, store::JobFilter{});
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items[0].attempts, 1) << "dead at the first failure, 4 attempts left";
  EXPECT_EQ(all->items[0].last_error, "HTTP 400");
  EXPECT_GE(all->items[1].run_at - all->items[1].created_at, 3600000 - 1000)
      << "ready again after the handler's hour, not the job's back-off";
}

}  // namespace
}  // namespace mpim::service
