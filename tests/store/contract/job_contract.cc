// Contract: JobStore. Time is the store's injected clock, moved by the test.
#include "store_contract.h"

namespace mpim::store::testing {
namespace {

using absl::StatusCode;

NewJob MakeJob(const std::string& kind, int max_attempts = 3) {
  NewJob j;
  j.kind = kind;
  j.payload = "{\"n\":1}";
  j.max_attempts = max_attempts;
  j.backoff_base_ms = 100;
  j.backoff_max_ms = 250;
  return j;
}

class JobContract : public StoreContractTest {
 protected:
  std::vector<Job> Lease(int n, int64_t lease_ms = 1000, const std::string& worker = "w1") {
    auto jobs = Call(store().jobs(), &JobStore::Lease, worker, n, lease_ms);
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *jobs : std::vector<Job>{};
  }
};

TEST_P(JobContract, EnqueueLeaseAck) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("push"));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_TRUE(Lease(0 + 1, 1000, "w0").size() == 1);
  // Leased: nobody else gets it.
  EXPECT_TRUE(Lease(10).empty());
  AdvanceMs(1);
  auto again = Call(store().jobs(), &JobStore::Enqueue, MakeJob("push"));
  ASSERT_TRUE(again.ok());
  EXPECT_GT(*again, *id);
  auto jobs = Lease(10, 500, "w2");
  ASSERT_EQ(jobs.size(), 1u);
  const Job& j = jobs[0];
  EXPECT_EQ(j.job_id, *again);
  EXPECT_EQ(j.kind, "push");
  EXPECT_EQ(j.payload, "{\"n\":1}");
  EXPECT_EQ(j.state, JobState::kLeased);
  EXPECT_EQ(j.attempts, 1);
  EXPECT_EQ(j.max_attempts, 3);
  EXPECT_EQ(j.lease_owner, "w2");
  EXPECT_EQ(j.run_at, NowMs() + 500);
  EXPECT_EQ(j.created_at, NowMs());
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Ack, j.job_id, j.attempts).ok());
  EXPECT_EQ(Call(store().jobs(), &JobStore::Ack, j.job_id, j.attempts).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().jobs(), &JobStore::Ack, int64_t{4242}, 1).code(), StatusCode::kNotFound);
}

TEST_P(JobContract, DelayAndOrder) {
  NewJob later = MakeJob("later");
  later.delay_ms = 1000;
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Enqueue, later).ok());
  auto now_id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("now"));
  ASSERT_TRUE(now_id.ok());
  constexpr int64_t kLongLease = 1'000'000;
  auto jobs = Lease(10, kLongLease);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, "now");
  AdvanceMs(999);
  EXPECT_TRUE(Lease(10, kLongLease).empty());
  AdvanceMs(1);
  jobs = Lease(10, kLongLease);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, "later");
}

TEST_P(JobContract, LeaseHonoursBatchSize) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(Call(store().jobs(), &JobStore::Enqueue, MakeJob("k")).ok());
  EXPECT_EQ(Lease(2).size(), 2u);
  EXPECT_EQ(Lease(10).size(), 3u);
  EXPECT_TRUE(Lease(10).empty());
  EXPECT_EQ(
      Call(store().jobs(), &JobStore::Lease, std::string("w"), 0, int64_t{10}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().jobs(), &JobStore::Lease, std::string("w"), 1, int64_t{0}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(JobContract, ExpiredLeaseIsHandedOutAgainAndStaleHolderLoses) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("fanout"));
  ASSERT_TRUE(id.ok());
  auto first = Lease(1, 1000, "crashy");
  ASSERT_EQ(first.size(), 1u);
  AdvanceMs(999);
  EXPECT_TRUE(Lease(1, 1000, "other").empty());  // not yet expired
  AdvanceMs(1);
  auto second = Lease(1, 1000, "other");
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].job_id, *id);
  EXPECT_EQ(second[0].attempts, 2);
  EXPECT_EQ(second[0].lease_owner, "other");
  // The first holder's lease is gone: it can neither ack nor fail.
  EXPECT_EQ(Call(store().jobs(), &JobStore::Ack, *id, first[0].attempts).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().jobs(), &JobStore::Fail, *id, first[0].attempts, JobFailure{.error = "x"})
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(Call(store().jobs(), &JobStore::Ack, *id, second[0].attempts).ok());
}

TEST_P(JobContract, FailRetriesWithBackoffThenDeadLetter) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("push", 3));
  ASSERT_TRUE(id.ok());
  // Attempt 1 fails: ready again after 100 ms.
  auto jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  auto failed =
      Call(store().jobs(), &JobStore::Fail, *id, jobs[0].attempts, JobFailure{.error = "boom 1"});
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, JobState::kReady);
  EXPECT_EQ(failed->run_at, NowMs() + 100);
  EXPECT_EQ(failed->last_error, "boom 1");
  AdvanceMs(99);
  EXPECT_TRUE(Lease(1).empty());
  AdvanceMs(1);
  // Attempt 2 fails: back-off doubles to 200 ms.
  jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].attempts, 2);
  failed = Call(store().jobs(), &JobStore::Fail, *id, 2, JobFailure{.error = "boom 2"});
  EXPECT_EQ(failed->run_at, NowMs() + 200);
  AdvanceMs(200);
  // Attempt 3 (the last) fails: dead letter.
  jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  failed = Call(store().jobs(), &JobStore::Fail, *id, 3, JobFailure{.error = "boom 3"});
  EXPECT_EQ(failed->state, JobState::kDead);
  AdvanceMs(1'000'000);
  EXPECT_TRUE(Lease(10).empty());
  auto dead = Call(store().jobs(), &JobStore::ListDead, int64_t{0}, 10);
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->items.size(), 1u);
  EXPECT_EQ(dead->items[0].job_id, *id);
  EXPECT_EQ(dead->items[0].last_error, "boom 3");
  EXPECT_EQ(dead->items[0].attempts, 3);
  EXPECT_EQ(dead->items[0].state, JobState::kDead);

  // Requeue gives it a fresh budget.
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Requeue, *id).ok());
  EXPECT_EQ(Call(store().jobs(), &JobStore::Requeue, *id).code(), StatusCode::kNotFound);
  EXPECT_TRUE(Call(store().jobs(), &JobStore::ListDead, int64_t{0}, 10)->items.empty());
  jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].attempts, 1);
}

TEST_P(JobContract, BackoffIsCapped) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("push", 10));
  ASSERT_TRUE(id.ok());
  int64_t last_delay = 0;
  for (int attempt = 1; attempt <= 4; ++attempt) {
    auto jobs = Lease(1);
    ASSERT_EQ(jobs.size(), 1u);
    auto failed = Call(store().jobs(), &JobStore::Fail, *id, attempt, JobFailure{.error = "e"});
    last_delay = failed->run_at - NowMs();
    AdvanceMs(last_delay);
  }
  EXPECT_EQ(last_delay, 250);  // 100, 200, then capped at 250
}

TEST_P(JobContract, ExpiredLastLeaseBecomesDeadLetter) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("poison", 2));
  ASSERT_TRUE(id.ok());
  ASSERT_EQ(Lease(1, 100).size(), 1u);
  AdvanceMs(100);
  ASSERT_EQ(Lease(1, 100).size(), 1u);  // attempt 2, the last
  AdvanceMs(100);
  EXPECT_TRUE(Lease(1, 100).empty());
  auto dead = Call(store().jobs(), &JobStore::ListDead, int64_t{0}, 10);
  ASSERT_EQ(dead->items.size(), 1u);
  EXPECT_EQ(dead->items[0].last_error, "lease expired");
}

TEST_P(JobContract, EnqueueValidationAndDeadPaging) {
  NewJob bad = MakeJob("");
  EXPECT_EQ(Call(store().jobs(), &JobStore::Enqueue, bad).status().code(),
            StatusCode::kInvalidArgument);
  bad = MakeJob("k", 0);
  EXPECT_EQ(Call(store().jobs(), &JobStore::Enqueue, bad).status().code(),
            StatusCode::kInvalidArgument);
  bad = MakeJob("k");
  bad.delay_ms = -1;
  EXPECT_EQ(Call(store().jobs(), &JobStore::Enqueue, bad).status().code(),
            StatusCode::kInvalidArgument);

  std::vector<int64_t> ids;
  for (int i = 0; i < 3; ++i)
    ids.push_back(*Call(store().jobs(), &JobStore::Enqueue, MakeJob("k", 1)));
  for (const Job& j : Lease(10)) {
    ASSERT_TRUE(
        Call(store().jobs(), &JobStore::Fail, j.job_id, j.attempts, JobFailure{.error = "x"}).ok());
  }
  auto page = Call(store().jobs(), &JobStore::ListDead, int64_t{0}, 2);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->has_more);
  page = Call(store().jobs(), &JobStore::ListDead, page->items.back().job_id, 2);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].job_id, ids[2]);
  EXPECT_FALSE(page->has_more);
}

TEST_P(JobContract, FailureWithItsOwnDelayOrFinal) {
  auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob("push", 5));
  ASSERT_TRUE(id.ok());
  auto jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  auto failed =
      Call(store().jobs(), &JobStore::Fail, *id, 1, JobFailure{.error = "429", .delay_ms = 7000});
  ASSERT_TRUE(failed.ok()) << failed.status();
  EXPECT_EQ(failed->state, JobState::kReady);
  EXPECT_EQ(failed->run_at, NowMs() + 7000);
  AdvanceMs(7000);
  jobs = Lease(1);
  ASSERT_EQ(jobs.size(), 1u);
  failed = Call(store().jobs(), &JobStore::Fail, *id, 2, JobFailure{.error = "400", .final = true});
  ASSERT_TRUE(failed.ok());
  EXPECT_EQ(failed->state, JobState::kDead);
  EXPECT_EQ(failed->attempts, 2);
  EXPECT_EQ(failed->last_error, "400");
}

TEST_P(JobContract, ListGetDeleteCount) {
  std::vector<int64_t> ids;
  for (const char* kind : {"push", "fanout", "push", "index"}) {
    auto id = Call(store().jobs(), &JobStore::Enqueue, MakeJob(kind, 1));
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  // ids[0] leased, ids[1] dead, ids[2] and ids[3] ready.
  auto leased = Lease(1, 5000);
  ASSERT_EQ(leased.size(), 1u);
  ASSERT_EQ(leased[0].job_id, ids[0]);
  auto fanout = Call(store().jobs(), &JobStore::List, JobFilter{.kind = "fanout"});
  ASSERT_TRUE(fanout.ok());
  ASSERT_EQ(fanout->items.size(), 1u);
  // Fail the fan-out job: lease it (the due ones come oldest first).
  auto next = Lease(1, 5000);
  ASSERT_EQ(next.size(), 1u);
  ASSERT_EQ(next[0].job_id, ids[1]);
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Fail, ids[1], 1, JobFailure{.error = "x"}).ok());
  auto next2 = Lease(2, 5000);  // and put the others back by deleting/keeping
  for (const Job& j : next2) {
    ASSERT_TRUE(
        Call(store().jobs(), &JobStore::Fail, j.job_id, 1, JobFailure{.error = "y", .delay_ms = 0})
            .ok());
  }
  // The two ready ones were leased and failed with attempts used up: dead too.
  auto all = Call(store().jobs(), &JobStore::List, JobFilter{});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->items.size(), 4u);
  EXPECT_EQ(all->items[0].job_id, ids[0]);
  EXPECT_EQ(all->items[0].state, JobState::kLeased);

  auto dead_push =
      Call(store().jobs(), &JobStore::List, JobFilter{.state = JobState::kDead, .kind = "push"});
  ASSERT_TRUE(dead_push.ok());
  ASSERT_EQ(dead_push->items.size(), 1u);
  EXPECT_EQ(dead_push->items[0].job_id, ids[2]);
  auto paged = Call(store().jobs(), &JobStore::List,
                    JobFilter{.state = JobState::kDead, .after_job = ids[1], .limit = 1});
  ASSERT_TRUE(paged.ok());
  ASSERT_EQ(paged->items.size(), 1u);
  EXPECT_EQ(paged->items[0].job_id, ids[2]);
  EXPECT_TRUE(paged->has_more);
  EXPECT_EQ(Call(store().jobs(), &JobStore::List, JobFilter{.limit = 0}).status().code(),
            StatusCode::kInvalidArgument);

  auto counts = Call(store().jobs(), &JobStore::Count);
  ASSERT_TRUE(counts.ok());
  ASSERT_EQ(counts->size(), 4u);  // fanout dead, index dead, push leased, push dead
  EXPECT_EQ((*counts)[0].kind, "fanout");
  EXPECT_EQ((*counts)[0].state, JobState::kDead);
  EXPECT_EQ((*counts)[0].count, 1);
  EXPECT_EQ((*counts)[2].kind, "push");
  EXPECT_EQ((*counts)[2].state, JobState::kLeased);
  EXPECT_EQ((*counts)[2].oldest_run_at, leased[0].run_at);

  auto one = Call(store().jobs(), &JobStore::Get, ids[1]);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->kind, "fanout");
  EXPECT_EQ(one->payload, "{\"n\":1}");
  EXPECT_EQ(one->state, JobState::kDead);
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Delete, ids[1]).ok());
  EXPECT_EQ(Call(store().jobs(), &JobStore::Get, ids[1]).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(Call(store().jobs(), &JobStore::Delete, ids[1]).code(), StatusCode::kNotFound);
  // Deleting a leased job: its holder's lease is lost.
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Delete, ids[0]).ok());
  EXPECT_EQ(Call(store().jobs(), &JobStore::Ack, ids[0], 1).code(), StatusCode::kNotFound);
}

TEST_P(JobContract, EnqueueManyAndCoalescing) {
  NewJob a = MakeJob("push");
  a.coalesce_key = "push:1";
  a.coalesce_ms = 1000;
  a.payload = "first";
  NewJob b = a;
  b.payload = "second";
  NewJob other = MakeJob("push");
  other.coalesce_key = "push:2";
  other.coalesce_ms = 1000;
  auto ids = Call(store().jobs(), &JobStore::EnqueueMany, std::vector<NewJob>{a, b, other});
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->size(), 3u);
  EXPECT_EQ((*ids)[0], (*ids)[1]);  // merged into the ready twin
  EXPECT_NE((*ids)[0], (*ids)[2]);
  auto jobs = Lease(10, 5000);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].payload, "second");
  EXPECT_EQ(jobs[0].run_at, NowMs() + 5000);
  // While push:1 is leased, another one waits the window from now.
  a.payload = "third";
  auto third = Call(store().jobs(), &JobStore::Enqueue, a);
  ASSERT_TRUE(third.ok());
  AdvanceMs(400);
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Ack, jobs[0].job_id, 1).ok());
  EXPECT_TRUE(Lease(10).empty());
  AdvanceMs(600);
  auto later = Lease(10, 5000);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].payload, "third");
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Ack, later[0].job_id, 1).ok());
  // Acked just now: the next one waits the window from the ack.
  AdvanceMs(300);
  a.payload = "fourth";
  ASSERT_TRUE(Call(store().jobs(), &JobStore::Enqueue, a).ok());
  AdvanceMs(699);
  EXPECT_TRUE(Lease(10).empty());
  AdvanceMs(1);
  auto fourth = Lease(10);
  ASSERT_EQ(fourth.size(), 1u);
  EXPECT_EQ(fourth[0].payload, "fourth");
  // A key is per kind: the same key of another kind is not merged.
  NewJob x = MakeJob("other");
  x.coalesce_key = "push:2";
  auto xid = Call(store().jobs(), &JobStore::Enqueue, x);
  ASSERT_TRUE(xid.ok());
  EXPECT_NE(*xid, (*ids)[2]);
  // A bad job fails the whole batch.
  NewJob bad = MakeJob("");
  EXPECT_EQ(
      Call(store().jobs(), &JobStore::EnqueueMany, std::vector<NewJob>{other, bad}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().jobs(), &JobStore::List, JobFilter{.kind = "push"})->items.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Contract, JobContract, ::testing::ValuesIn(AllStoreFactories()),
                         StoreFactoryName);

}  // namespace
}  // namespace mpim::store::testing
