// Contract: appends under concurrency. Callers use the async API directly
// (many appends in flight per thread), as services do.
#include <chrono>
#include <condition_variable>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <semaphore>
#include <thread>

#include "store/conv_id.h"
#include "store_contract.h"

namespace mpim::store::testing {
namespace {

// How long the appends of one test may take to complete, all told. Far
// beyond what they need (seconds); a store that loses a callback or stalls
// fails the test here instead of hanging it.
constexpr std::chrono::seconds kCompletionDeadline{90};

// Counts completions. Shared with the callbacks (a shared_ptr), so that
// one that comes after a test gave up does no harm.
class Completions {
 public:
  void Add(const core::StatusOr<AppendResult>& r) {
    std::lock_guard lock(mu_);
    if (r.ok()) {
      results_.push_back(r->message);
      if (r->duplicate) ++duplicates_;
    } else {
      errors_.push_back(r.status());
    }
    cv_.notify_all();
  }
  // Waits until `expected` arrived, or fails at `deadline`.
  ::testing::AssertionResult Wait(size_t expected, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    if (cv_.wait_until(lock, deadline,
                       [&] { return results_.size() + errors_.size() >= expected; })) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "only " << results_.size() + errors_.size() << " of " << expected
           << " appends completed within " << kCompletionDeadline.count() << " s";
  }
  std::vector<Message> results_;
  std::vector<core::Status> errors_;
  size_t duplicates_ = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
};

class ConcurrencyContract : public StoreContractTest {
 protected:
  // Each of `threads` threads appends `per_thread` messages, keeping at most
  // `window` of its own in flight; conv_for(thread, i) picks the conversation.
  // A thread that cannot get a slot by `deadline` (its appends do not
  // complete) stops and fails the test.
  template <typename ConvFor>
  void AppendConcurrently(int threads, int per_thread, int window,
                          const std::shared_ptr<Completions>& done,
                          const std::vector<int64_t>& senders, ConvFor conv_for,
                          std::chrono::steady_clock::time_point deadline) {
    std::latch start(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        // Shared with the callbacks: the last release may still be running
        // when this thread has acquired everything.
        auto slots = std::make_shared<std::counting_semaphore<>>(window);
        start.arrive_and_wait();
        for (int i = 0; i < per_thread; ++i) {
          if (!slots->try_acquire_until(deadline)) {
            ADD_FAILURE() << "thread " << t << ": append " << i << " found no free slot in time";
            return;
          }
          // (Appended piecewise: g++ 12 warns falsely on a + ":" + b here.)
          std::string key = std::to_string(t);
          key += ':';
          key += std::to_string(i);
          AppendRequest r =
              TextMessage(conv_for(t, i), senders[static_cast<size_t>(t)], 0, "m", key);
          store().messages().Append(r, [done, slots](core::StatusOr<AppendResult> res) {
            done->Add(res);
            slots->release();
          });
        }
        for (int i = 0; i < window; ++i) {  // all of ours completed
          if (!slots->try_acquire_until(deadline)) {
            ADD_FAILURE() << "thread " << t << ": appends still running at the deadline";
            return;
          }
        }
      });
    }
    for (auto& w : workers) w.join();
  }
};

TEST_P(ConcurrencyContract, EightThreadsOneConversationSeqsAreExactlyOneToN) {
  constexpr int kThreads = 8, kPerThread = 10'000;
  int64_t a = MakeUser("a"), b = MakeUser("b");
  std::string conv = PrivateConvId(a, b);
  std::vector<int64_t> senders;
  for (int t = 0; t < kThreads; ++t) senders.push_back(t % 2 == 0 ? a : b);
  auto done = std::make_shared<Completions>();
  const auto deadline = std::chrono::steady_clock::now() + kCompletionDeadline;
  AppendConcurrently(
      kThreads, kPerThread, 64, done, senders, [&](int, int) { return conv; }, deadline);
  ASSERT_TRUE(done->Wait(kThreads * kPerThread, deadline));
  ASSERT_TRUE(done->errors_.empty()) << done->errors_.front();
  std::vector<int64_t> seqs;
  for (const Message& m : done->results_) seqs.push_back(m.seq);
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kThreads * kPerThread));
  // Callbacks run in commit order (store/common.h): one conversation's
  // appends complete in seq order, whichever threads sent them. Delivery
  // order rests on this.
  for (size_t i = 1; i < seqs.size(); ++i) {
    ASSERT_LT(seqs[i - 1], seqs[i]) << "completion #" << i << " ran before an earlier commit's";
  }
  for (size_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], static_cast<int64_t>(i + 1));
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, conv)->last_seq,
            kThreads * kPerThread);
  // What the store holds agrees with what it acknowledged.
  int64_t after = 0, count = 0;
  for (;;) {
    auto page = Call(store().messages(), &MessageStore::Read, conv,
                     RangeQuery{after, std::nullopt, kMaxPageLimit});
    ASSERT_TRUE(page.ok());
    for (const Message& m : page->items) ASSERT_EQ(m.seq, ++count);
    if (!page->has_more) break;
    after = page->items.back().seq;
  }
  EXPECT_EQ(count, kThreads * kPerThread);
}

TEST_P(ConcurrencyContract, ThousandConversationsAtOnce) {
  constexpr int kThreads = 8, kConvs = 1000, kPerThread = 2500;
  std::vector<int64_t> users;
  for (int i = 0; i < kConvs + 1; ++i) users.push_back(MakeUser(Numbered("u", i)));
  const int64_t hub = users[0];
  std::vector<int64_t> senders(kThreads, hub);
  auto done = std::make_shared<Completions>();
  // Message i of thread t goes to conversation (t * kPerThread + i) % kConvs.
  auto conv_for = [&](int t, int i) {
    return PrivateConvId(hub, users[1 + static_cast<size_t>((t * kPerThread + i) % kConvs)]);
  };
  const auto deadline = std::chrono::steady_clock::now() + kCompletionDeadline;
  AppendConcurrently(kThreads, kPerThread, 32, done, senders, conv_for, deadline);
  ASSERT_TRUE(done->Wait(kThreads * kPerThread, deadline));
  ASSERT_TRUE(done->errors_.empty()) << done->errors_.front();
  std::map<std::string, std::vector<int64_t>> by_conv;
  for (const Message& m : done->results_) by_conv[m.conv_id].push_back(m.seq);
  ASSERT_EQ(by_conv.size(), static_cast<size_t>(kConvs));
  for (auto& [conv, seqs] : by_conv) {
    std::sort(seqs.begin(), seqs.end());
    for (size_t i = 0; i < seqs.size(); ++i)
      ASSERT_EQ(seqs[i], static_cast<int64_t>(i + 1)) << conv;
    EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, conv)->last_seq,
              static_cast<int64_t>(seqs.size()));
  }
  auto list = Call(store().conversations(), &ConversationStore::ListForUser, hub,
                   std::optional<ConversationCursor>(), kMaxPageLimit);
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->items.size(), static_cast<size_t>(kConvs));
}

TEST_P(ConcurrencyContract, SameClientMsgIdFromEightThreadsYieldsOneMessage) {
  int64_t a = MakeUser("a"), b = MakeUser("b");
  std::string conv = PrivateConvId(a, b);
  for (int round = 0; round < 20; ++round) {
    auto done = std::make_shared<Completions>();
    std::latch start(8);
    std::vector<std::thread> threads;
    const std::string key = Numbered("retry-", round);
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        AppendRequest r = TextMessage(conv, a, b, "once", key);  // distinct msg_ids
        start.arrive_and_wait();
        store().messages().Append(r, [done](core::StatusOr<AppendResult> res) { done->Add(res); });
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_TRUE(done->Wait(8, std::chrono::steady_clock::now() + kCompletionDeadline));
    ASSERT_TRUE(done->errors_.empty()) << done->errors_.front();
    EXPECT_EQ(done->duplicates_, 7u);
    for (const Message& m : done->results_) {
      EXPECT_EQ(m.msg_id, done->results_[0].msg_id);
      EXPECT_EQ(m.seq, round + 1);
    }
  }
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, conv)->last_seq, 20);
}

INSTANTIATE_TEST_SUITE_P(Contract, ConcurrencyContract, ::testing::ValuesIn(AllStoreFactories()),
                         StoreFactoryName);

}  // namespace
}  // namespace mpim::store::testing
