// CallBatcher (service/remote/call_batcher.h): an idle node gets an item
// at once; items that come while the node's calls are all in flight leave
// together in the next call, in order, at most max_items per call; answers
// reach the right items; a failed call answers each of its items; nodes
// are independent. With linger: items wait for others up to the linger,
// a full batch leaves at once, an answer does not send a fresh item before
// its time, Hurry sends a node's items at once, and what lingers leaves
// when the batcher goes.
#include "service/remote/call_batcher.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mpim::service::remote {
namespace {

using Batcher = CallBatcher<int, int>;

// Batch calls as the batcher makes them, answered by the test.
struct Calls {
  struct Call {
    std::string key;
    std::vector<int> items;
    core::Callback<Batcher::Results> done;
  };
  std::deque<Call> open;
  std::vector<std::vector<int>> sent;  // every call's items, in order

  Batcher::SendFn Fn() {
    return [this](const std::string& key, std::vector<int> items,
                  core::Callback<Batcher::Results> done) {
      sent.push_back(items);
      open.push_back({key, std::move(items), std::move(done)});
    };
  }
  // Answers the oldest open call: each item x answers x * 10.
  void AnswerOldest() {
    Call c = std::move(open.front());
    open.pop_front();
    Batcher::Results results;
    for (int x : c.items) results.emplace_back(x * 10);
    std::move(c.done)(std::move(results));
  }
};

// Keys "a..." belong to node A, the others to node B.
std::string Owner(const std::string& key) { return key[0] == 'a' ? "A" : "B"; }

TEST(CallBatcherTest, AnIdleNodeGetsAnItemAtOnceAndBusyOnesCoalesce) {
  Calls calls;
  Batcher batcher({.max_in_flight = 1, .max_items = 3}, Owner, calls.Fn());
  std::map<int, core::StatusOr<int>> answers;
  auto add = [&](std::string key, int x) {
    batcher.Add(std::move(key), x, [&answers, x](core::StatusOr<int> r) { answers.emplace(x, r); });
  };
  add("a1", 1);
  ASSERT_EQ(calls.sent.size(), 1u) << "idle: sent at once";
  EXPECT_EQ(calls.sent[0], std::vector<int>{1});
  for (int x = 2; x <= 6; ++x) add("a" + std::to_string(x), x);
  EXPECT_EQ(calls.sent.size(), 1u) << "the node's one call is in flight: the others wait";
  add("b7", 7);
  ASSERT_EQ(calls.sent.size(), 2u) << "another node is not held up";
  EXPECT_EQ(calls.open.back().key, "b7");

  calls.AnswerOldest();  // a's first call: the next three leave together
  EXPECT_EQ(answers.at(1).value(), 10);
  ASSERT_EQ(calls.sent.size(), 3u);
  EXPECT_EQ(calls.sent[2], (std::vector<int>{2, 3, 4})) << "in order, at most max_items";
  EXPECT_EQ(calls.open.back().key, "a2") << "a batch goes by its first item's key";
  calls.AnswerOldest();  // b7
  EXPECT_EQ(answers.at(7).value(), 70);
  calls.AnswerOldest();  // 2, 3, 4
  ASSERT_EQ(calls.sent.size(), 4u);
  EXPECT_EQ(calls.sent[3], (std::vector<int>{5, 6}));
  calls.AnswerOldest();
  for (int x = 1; x <= 7; ++x) EXPECT_EQ(answers.at(x).value(), x * 10) << x;
  EXPECT_TRUE(calls.open.empty());

  add("a8", 8);
  EXPECT_EQ(calls.sent.size(), 5u) << "idle again: at once";
}

TEST(CallBatcherTest, SeveralCallsPerNodeMayBeInFlight) {
  Calls calls;
  Batcher batcher({.max_in_flight = 2, .max_items = 100}, Owner, calls.Fn());
  for (int x = 1; x <= 5; ++x) batcher.Add("a", x, [](core::StatusOr<int>) {});
  ASSERT_EQ(calls.sent.size(), 2u);
  EXPECT_EQ(calls.sent[1], std::vector<int>{2});
  calls.AnswerOldest();
  ASSERT_EQ(calls.sent.size(), 3u);
  EXPECT_EQ(calls.sent[2], (std::vector<int>{3, 4, 5}));
}

TEST(CallBatcherTest, AFailedCallAnswersEachOfItsItemsAndItemsKeepTheirOwnErrors) {
  Calls calls;
  Batcher batcher({.max_in_flight = 1}, Owner, calls.Fn());
  std::vector<core::StatusOr<int>> answers;
  for (int x = 1; x <= 3; ++x) {
    batcher.Add("a", x, [&](core::StatusOr<int> r) { answers.push_back(r); });
  }
  // The first call (item 1) fails as a whole.
  std::move(calls.open.front().done)(absl::UnavailableError("no logic node"));
  calls.open.pop_front();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status().code(), absl::StatusCode::kUnavailable);
  // The next (items 2 and 3): one item refused, one answered.
  ASSERT_EQ(calls.open.size(), 1u);
  Batcher::Results results;
  results.emplace_back(absl::PermissionDeniedError("blocked"));
  results.emplace_back(30);
  std::move(calls.open.front().done)(std::move(results));
  calls.open.pop_front();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[1].status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(answers[2].value(), 30);

  // A reply with the wrong number of answers fails every item, none left hanging.
  answers.clear();
  batcher.Add("a", 4, [&](core::StatusOr<int> r) { answers.push_back(r); });
  Batcher::Results short_reply;
  std::move(calls.open.front().done)(std::move(short_reply));
  calls.open.pop_front();
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].status().code(), absl::StatusCode::kInternal);
}

TEST(CallBatcherTest, CallsInFlightMayOutliveTheBatcher) {
  Calls calls;
  std::vector<int> got;
  {
    Batcher batcher({.max_in_flight = 1}, Owner, calls.Fn());
    batcher.Add("a", 1, [&](core::StatusOr<int> r) { got.push_back(r.value()); });
    batcher.Add("a", 2, [&](core::StatusOr<int> r) { got.push_back(r.value()); });
  }
  calls.AnswerOldest();
  calls.AnswerOldest();
  EXPECT_EQ(got, (std::vector<int>{10, 20})) << "the waiting item still went";
}

// Batch calls made from any thread (the lingering one sends), answered by
// the test.
struct LockedCalls {
  std::mutex mu;
  std::condition_variable changed;
  std::vector<std::vector<int>> sent;
  std::vector<std::chrono::steady_clock::time_point> sent_at;
  std::deque<core::Callback<Batcher::Results>> open;
  std::deque<std::vector<int>> open_items;

  Batcher::SendFn Fn() {
    return
        [this](const std::string&, std::vector<int> items, core::Callback<Batcher::Results> done) {
          std::lock_guard lock(mu);
          sent.push_back(items);
          sent_at.push_back(std::chrono::steady_clock::now());
          open.push_back(std::move(done));
          open_items.push_back(std::move(items));
          changed.notify_all();
        };
  }
  size_t Sent() {
    std::lock_guard lock(mu);
    return sent.size();
  }
  // Waits (5 s at most) until `n` calls were made.
  bool AwaitSent(size_t n) {
    std::unique_lock lock(mu);
    return changed.wait_for(lock, std::chrono::seconds(5), [&] { return sent.size() >= n; });
  }
  void AnswerOldest() {
    core::Callback<Batcher::Results> done;
    std::vector<int> items;
    {
      std::lock_guard lock(mu);
      done = std::move(open.front());
      items = std::move(open_items.front());
      open.pop_front();
      open_items.pop_front();
    }
    Batcher::Results results;
    for (int x : items) results.emplace_back(x * 10);
    std::move(done)(std::move(results));
  }
};

TEST(CallBatcherTest, LingeringItemsLeaveTogetherWhenDue) {
  using namespace std::chrono_literals;
  LockedCalls calls;
  Batcher batcher({.max_in_flight = 2, .max_items = 100, .linger = 300ms}, Owner, calls.Fn());
  std::mutex mu;
  std::map<int, int> answers;
  const auto first = std::chrono::steady_clock::now();
  for (int x = 1; x <= 4; ++x) {
    batcher.Add(x % 2 ? "a" : "b", x, [&, x](core::StatusOr<int> r) {
      std::lock_guard lock(mu);
      answers[x] = r.value();
    });
  }
  EXPECT_EQ(calls.Sent(), 0u) << "a free slot, but the items linger";
  ASSERT_TRUE(calls.AwaitSent(2)) << "they leave when due";
  {
    std::lock_guard lock(calls.mu);
    std::map<int, std::vector<int>> by_first;
    for (const auto& items : calls.sent) by_first[items.front()] = items;
    EXPECT_EQ(by_first.at(1), (std::vector<int>{1, 3})) << "node A's items in one call";
    EXPECT_EQ(by_first.at(2), (std::vector<int>{2, 4})) << "node B's";
    for (auto at : calls.sent_at) EXPECT_GE(at - first, 300ms) << "not before the linger";
  }
  calls.AnswerOldest();
  calls.AnswerOldest();
  std::lock_guard lock(mu);
  EXPECT_EQ(answers, (std::map<int, int>{{1, 10}, {2, 20}, {3, 30}, {4, 40}}));
}

TEST(CallBatcherTest, AFullBatchLeavesAtOnceAndAnAnswerDoesNotHurryAFreshItem) {
  using namespace std::chrono_literals;
  LockedCalls calls;
  Batcher batcher({.max_in_flight = 1, .max_items = 3, .linger = 1h}, Owner, calls.Fn());
  for (int x = 1; x <= 3; ++x) batcher.Add("a", x, [](core::StatusOr<int>) {});
  ASSERT_EQ(calls.Sent(), 1u) << "a full batch does not linger";
  batcher.Add("a", 4, [](core::StatusOr<int>) {});
  calls.AnswerOldest();
  EXPECT_EQ(calls.Sent(), 1u) << "the slot is free again, but item 4 lingers its time";
  for (int x = 5; x <= 7; ++x) batcher.Add("a", x, [](core::StatusOr<int>) {});
  ASSERT_EQ(calls.Sent(), 2u);
  EXPECT_EQ(calls.sent[1], (std::vector<int>{4, 5, 6}));
  batcher.Add("a", 8, [](core::StatusOr<int>) {});
  calls.AnswerOldest();
  EXPECT_EQ(calls.Sent(), 2u) << "7 and 8 linger";
}

TEST(CallBatcherTest, HurryingSendsANodesLingeringItemsNow) {
  using namespace std::chrono_literals;
  LockedCalls calls;
  Batcher batcher({.max_in_flight = 1, .max_items = 100, .linger = 1h}, Owner, calls.Fn());
  batcher.Add("a1", 1, [](core::StatusOr<int>) {});
  batcher.Add("b2", 2, [](core::StatusOr<int>) {});
  batcher.Add("a3", 3, [](core::StatusOr<int>) {});
  batcher.Hurry("a9");  // another key of node A
  ASSERT_EQ(calls.Sent(), 1u) << "node A's items, not B's";
  EXPECT_EQ(calls.sent[0], (std::vector<int>{1, 3}));
  batcher.Add("a4", 4, [](core::StatusOr<int>) {});
  batcher.Hurry("a4");
  EXPECT_EQ(calls.Sent(), 1u) << "no slot free: it waits for the answer";
  calls.AnswerOldest();
  ASSERT_EQ(calls.Sent(), 2u) << "hurried items leave with the answer, not an hour later";
  EXPECT_EQ(calls.sent[1], std::vector<int>{4});
  batcher.Hurry("b");
  ASSERT_EQ(calls.Sent(), 3u);
  EXPECT_EQ(calls.sent[2], std::vector<int>{2});
  calls.AnswerOldest();
  batcher.Hurry("a");  // nothing waits
  EXPECT_EQ(calls.Sent(), 3u);
}

TEST(CallBatcherTest, WhatLingersLeavesWhenTheBatcherGoes) {
  using namespace std::chrono_literals;
  LockedCalls calls;
  {
    Batcher batcher({.max_in_flight = 1, .max_items = 100, .linger = 1h}, Owner, calls.Fn());
    batcher.Add("a", 1, [](core::StatusOr<int>) {});
    batcher.Add("b", 2, [](core::StatusOr<int>) {});
    EXPECT_EQ(calls.Sent(), 0u);
  }
  ASSERT_EQ(calls.Sent(), 2u) << "sent as the batcher went, not an hour later";
  calls.AnswerOldest();
  calls.AnswerOldest();
}

}  // namespace
}  // namespace mpim::service::remote
