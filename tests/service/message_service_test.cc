// MessageService (service/message/message_service_impl.h) on a real SQLite
// store behind a FaultStore, with a recording Deliverer: what a send stores
// and hands out, and what it refuses or fails with (validation, blocks,
// rate limit, membership, storage faults), recall, and the order guarantee.
#include <gtest/gtest.h>

#include <algorithm>
#include <future>

#include "store/conv_id.h"
#include "support/service_fixture.h"

namespace mpim::service {
namespace {

using std::chrono::milliseconds;
using testing::Await;
using testing::AwaitStatus;

class MessageServiceTest : public testing::ThreeUsersTest {
 protected:
  testing::ServiceOptions Options() const override {
    testing::ServiceOptions o;
    o.limits.send_burst = 5;
    o.limits.send_per_sec = 1;
    o.limits.body_max_bytes = 64;
    return o;
  }

  std::string AliceBob() const { return store::PrivateConvId(alice_, bob_); }
  core::Status Block(int64_t blocker, int64_t blocked) {
    return AwaitStatus(
        [&](auto cb) { services().friends().Block(blocker, blocked, std::move(cb)); });
  }
  core::StatusOr<store::Message> Recall(Principal who, int64_t msg_id) {
    return Await<store::Message>(
        [&](auto cb) { services().messages().Recall(who, msg_id, std::move(cb)); });
  }
};

TEST_F(MessageServiceTest, APrivateSendIsStoredThenDeliveredToBothButTheSendingSocket) {
  SendRequest req = Text(bob_, "c1", "hello");
  req.origin_conn = route::ConnId{1, 7};
  req.priority = Priority::kHigh;
  auto sent = Send(a_, req);
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->conv_id, AliceBob());
  EXPECT_EQ(sent->seq, 1);
  EXPECT_GT(sent->msg_id, 0);
  EXPECT_EQ(sent->ts, kStartMs);

  auto stored = Stored(AliceBob());
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].msg_id, sent->msg_id);
  EXPECT_EQ(stored[0].sender, alice_);
  EXPECT_EQ(stored[0].body, "{\"text\":\"hello\"}");

  // Delivered before the answer (a small conversation is delivered inline).
  auto calls = deliverer_.messages.calls();
  ASSERT_EQ(calls.size(), 1u);
  // To the sender's other devices too.
  EXPECT_EQ(Sorted(calls[0].users), Sorted({alice_, bob_}));
  EXPECT_EQ(calls[0].exclude_conn, (route::ConnId{1, 7}));
  EXPECT_EQ(calls[0].msg.msg_id, sent->msg_id);
  EXPECT_EQ(calls[0].priority, Priority::kHigh);
  EXPECT_TRUE(calls[0].qos1);
}

TEST_F(MessageServiceTest, AFailingAppendAnswersUnavailableAndDeliversNothing) {
  faults().FailNext("messages.Append");
  auto failed = Send(a_, Text(bob_, "c1", "lost"));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_TRUE(Stored(AliceBob()).empty());
  // A later send goes through, takes seq 1 (the failed one consumed none),
  // and is the only one delivered.
  auto sent = Send(a_, Text(bob_, "c2", "kept"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(sent->seq, 1);
  auto calls = deliverer_.messages.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].msg.msg_id, sent->msg_id);
}

TEST_F(MessageServiceTest, ARetriedClientMsgIdReturnsTheFirstResultAndIsNotDeliveredAgain) {
  auto first = Send(a_, Text(bob_, "same", "first"));
  ASSERT_TRUE(first.ok()) << first.status();
  clock_.AdvanceMs(5000);
  auto again = Send(a_, Text(bob_, "same", "second"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->msg_id, first->msg_id);
  EXPECT_EQ(again->seq, first->seq);
  EXPECT_EQ(again->ts, first->ts) << "the stored message's time, not the retry's";
  auto stored = Stored(AliceBob());
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].body, "{\"text\":\"first\"}");
  EXPECT_EQ(deliverer_.messages.size(), 1u);
  // The key is the sender's: bob may use the same one.
  auto bobs = Send(b_, Text(alice_, "same", "bob's"));
  ASSERT_TRUE(bobs.ok()) << bobs.status();
  EXPECT_NE(bobs->msg_id, first->msg_id);
  EXPECT_EQ(bobs->seq, 2);
}

TEST_F(MessageServiceTest, ARetryAfterAFailedAppendIsStoredOnce) {
  faults().FailNext("messages.Append");
  ASSERT_FALSE(Send(a_, Text(bob_, "retry", "x")).ok());
  auto retried = Send(a_, Text(bob_, "retry", "x"));
  ASSERT_TRUE(retried.ok()) << retried.status();
  auto dup = Send(a_, Text(bob_, "retry", "x"));
  ASSERT_TRUE(dup.ok()) << dup.status();
  EXPECT_EQ(dup->msg_id, retried->msg_id);
  EXPECT_EQ(Stored(AliceBob()).size(), 1u);
}

TEST_F(MessageServiceTest, ABlockedSenderIsRefusedUntilUnblocked) {
  ASSERT_TRUE(Send(a_, Text(bob_, "before", "hi")).ok());  // the pair is now cached
  ASSERT_TRUE(Block(bob_, alice_).ok());
  auto refused = Send(a_, Text(bob_, "after", "hi"));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  EXPECT_EQ(Stored(AliceBob()).size(), 1u);
  EXPECT_EQ(faults().Calls("messages.Append"), 1);
  // A block has a direction: bob still writes to alice.
  EXPECT_TRUE(Send(b_, Text(alice_, "back", "hi")).ok());
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                services().friends().Unblock(bob_, alice_, std::move(cb));
              }).ok());
  EXPECT_TRUE(Send(a_, Text(bob_, "again", "hi")).ok());
}

TEST_F(MessageServiceTest, AFailedBlockReadFailsTheSendBeforeTheStoreWrite) {
  faults().FailNext("friends.IsBlocked");
  auto failed = Send(a_, Text(bob_, "c1"));
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_EQ(faults().Calls("messages.Append"), 0);
  // Errors are not cached: the next send reads again and goes through.
  EXPECT_TRUE(Send(a_, Text(bob_, "c2")).ok());
}

TEST_F(MessageServiceTest, SendsBeyondTheBurstAreRateLimitedPerSender) {
  // Burst 5, 1 per second, on a clock that does not move: the sixth send
  // is refused with a retry hint, without touching the store.
  std::vector<std::future<core::StatusOr<SendResult>>> sends;
  for (int i = 0; i < 7; ++i) {
    sends.push_back(store::Begin<SendResult>([&](auto cb) {
      services().messages().Send(a_, Text(bob_, "m" + std::to_string(i)), std::move(cb), nullptr);
    }));
  }
  int ok = 0, limited = 0;
  for (auto& f : sends) {
    ASSERT_EQ(f.wait_for(testing::kAwaitTimeout), std::future_status::ready);
    auto r = f.get();
    if (r.ok()) ++ok;
    if (r.status().code() == absl::StatusCode::kResourceExhausted) {
      ++limited;
      EXPECT_EQ(core::RetryAfterMs(r.status()), 1000);
    }
  }
  EXPECT_EQ(ok, 5);
  EXPECT_EQ(limited, 2);
  EXPECT_EQ(faults().Calls("messages.Append"), 5);
  EXPECT_TRUE(Send(b_, Text(alice_, "other")).ok()) << "another sender has a bucket of its own";
  clock_.AdvanceMs(1000);
  EXPECT_TRUE(Send(a_, Text(bob_, "refilled")).ok()) << "a token a second";
}

TEST_F(MessageServiceTest, BadRequestsAreRefusedBeforeAnyStoreCall) {
  struct Case {
    const char* what;
    SendRequest request;
    absl::StatusCode code;
  };
  SendRequest system = Text(bob_, "s");
  system.type = "system";
  SendRequest odd_type = Text(bob_, "t");
  odd_type.type = "image";
  SendRequest large = Text(bob_, "l", std::string(100, 'x'));
  SendRequest control = Text(bob_, std::string("a\x01", 2));
  const std::vector<Case> cases = {
      {"no client_msg_id", Text(bob_, ""), absl::StatusCode::kInvalidArgument},
      {"client_msg_id too long", Text(bob_, std::string(65, 'k')),
       absl::StatusCode::kInvalidArgument},
      {"client_msg_id with a control character", control, absl::StatusCode::kInvalidArgument},
      {"system type", system, absl::StatusCode::kInvalidArgument},
      {"unknown type", odd_type, absl::StatusCode::kInvalidArgument},
      {"body over limits.body_max_bytes", large, absl::StatusCode::kOutOfRange},
      {"to self", Text(alice_, "me"), absl::StatusCode::kInvalidArgument},
      {"to id 0", Text(0, "zero"), absl::StatusCode::kInvalidArgument},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Send(a_, c.request).status().code(), c.code) << c.what;
  }
  EXPECT_EQ(faults().Calls("friends.IsBlocked"), 0);
  EXPECT_EQ(faults().Calls("messages.Append"), 0);
  EXPECT_EQ(deliverer_.messages.size(), 0u);
}

TEST_F(MessageServiceTest, ASendToAnUnknownUserIsNotFound) {
  auto r = Send(a_, Text(999999, "c1"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_EQ(deliverer_.messages.size(), 0u);
}

TEST_F(MessageServiceTest, AGroupSendByANonMemberIsRefusedAndToNoGroupIsNotFound) {
  const int64_t group = MakeGroup(alice_, {bob_});
  auto refused = Send(c_, Text(group, "c1", "let me in", /*to_group=*/true));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied) << refused.status();
  auto none = Send(c_, Text(group + 1000, "c2", "anyone?", /*to_group=*/true));
  EXPECT_EQ(none.status().code(), absl::StatusCode::kNotFound) << none.status();
  EXPECT_EQ(faults().Calls("messages.Append"), 0);
  auto member = Send(b_, Text(group, "c3", "hi all", /*to_group=*/true));
  ASSERT_TRUE(member.ok()) << member.status();
  EXPECT_EQ(member->conv_id, store::GroupConvId(group));
  EXPECT_EQ(Stored(store::GroupConvId(group)).size(), 1u);
}

TEST_F(MessageServiceTest, AFailedMembershipReadFailsTheGroupSend) {
  const int64_t group = MakeGroup(alice_, {bob_});
  faults().FailNext("groups.GetMember");
  auto r = Send(b_, Text(group, "c1", "hi", /*to_group=*/true));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_EQ(faults().Calls("messages.Append"), 0);
  EXPECT_TRUE(Stored(store::GroupConvId(group)).empty());
}

// A non-member's send looks the group up to tell "not a member" (403) from
// "no such group" (404); when that read fails, the answer must be the
// storage error, not a verdict on permission.
TEST_F(MessageServiceTest, ANonMembersSendIsUnavailableWhenTheGroupReadFails) {
  const int64_t group = MakeGroup(alice_, {bob_});
  faults().FailNext("groups.Get");
  auto r = Send(c_, Text(group, "c1", "hi", /*to_group=*/true));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(MessageServiceTest, TheAnswerWaitsForTheStoreAndOrderedRunsOnceTheSendIsQueued) {
  faults().HoldNext("messages.Append");
  std::promise<void> ordered;
  auto first = store::Begin<SendResult>([&](auto cb) {
    services().messages().Send(a_, Text(bob_, "first"), std::move(cb),
                               [&ordered] { ordered.set_value(); });
  });
  ASSERT_EQ(ordered.get_future().wait_for(testing::kAwaitTimeout), std::future_status::ready);
  ASSERT_TRUE(faults().WaitHeld("messages.Append", 1, testing::kAwaitTimeout));
  EXPECT_EQ(first.wait_for(milliseconds(50)), std::future_status::timeout)
      << "answered before the store did";
  EXPECT_EQ(deliverer_.messages.size(), 0u);
  // A send started after `ordered` is stored after the first, though the
  // first's answer is still held.
  auto second = Send(a_, Text(bob_, "second"));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->seq, 2);
  faults().Release("messages.Append");
  ASSERT_EQ(first.wait_for(testing::kAwaitTimeout), std::future_status::ready);
  auto r = first.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->seq, 1);
  EXPECT_TRUE(deliverer_.messages.WaitFor(2));
}

TEST_F(MessageServiceTest, TheSenderRecallsWithinTheWindowOnly) {
  auto early = Send(a_, Text(bob_, "early", "oops"));
  ASSERT_TRUE(early.ok()) << early.status();
  EXPECT_EQ(Recall(b_, early->msg_id).status().code(), absl::StatusCode::kPermissionDenied)
      << "only the sender recalls a private message";
  auto recalled = Recall(a_, early->msg_id);
  ASSERT_TRUE(recalled.ok()) << recalled.status();
  EXPECT_TRUE(recalled->recalled);
  EXPECT_EQ(Stored(AliceBob())[0].body, "{}");
  auto recalls = deliverer_.recalls.calls();
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].msg_id, early->msg_id);
  EXPECT_EQ(recalls[0].seq, early->seq);

  auto late = Send(a_, Text(bob_, "late", "too late"));
  ASSERT_TRUE(late.ok()) << late.status();
  clock_.AdvanceMs(core::MessagesConfig{}.recall_window_ms + 1);
  EXPECT_EQ(Recall(a_, late->msg_id).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Stored(AliceBob())[1].body, "{\"text\":\"too late\"}");
  EXPECT_EQ(Recall(a_, 424242).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(MessageServiceTest, AGroupOwnerRecallsAnyMessageAtAnyTime) {
  const int64_t group = MakeGroup(alice_, {bob_, carol_});
  auto sent = Send(b_, Text(group, "g1", "spam", /*to_group=*/true));
  ASSERT_TRUE(sent.ok()) << sent.status();
  clock_.AdvanceMs(core::MessagesConfig{}.recall_window_ms + 1);
  EXPECT_EQ(Recall(c_, sent->msg_id).status().code(), absl::StatusCode::kPermissionDenied);
  auto recalled = Recall(a_, sent->msg_id);
  ASSERT_TRUE(recalled.ok()) << recalled.status();
  EXPECT_TRUE(recalled->recalled);
  auto recalls = deliverer_.recalls.calls();
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].users.size(), 3u);
}

}  // namespace
}  // namespace mpim::service
