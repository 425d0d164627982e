// Fan-out (service/fanout.h) as the message service drives it, on a real
// SQLite store behind a FaultStore, with groups.fanout_threshold = 3:
// private chats and groups up to the threshold are delivered inline from
// the member cache; larger groups get one durable "fanout" job and nothing
// inline; failures of either hand-off do not fail the (durable) send.
#include "service/fanout.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "support/service_fixture.h"

namespace mpim::service {
namespace {

using std::chrono::milliseconds;
using testing::Await;
using testing::AwaitStatus;

class FanoutTest : public testing::ServiceTest {
 protected:
  static constexpr int64_t kThreshold = 3;

  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* name : {"owner", "u1", "u2", "u3", "u4"}) users_.push_back(MakeUser(name));
    owner_ = Login(users_[0]);
  }
  testing::ServiceOptions Options() const override {
    testing::ServiceOptions o;
    o.groups.fanout_threshold = kThreshold;
    return o;
  }

  // A group of the owner and the next `others` users.
  int64_t Group(size_t others) {
    return MakeGroup(
        users_[0],
        std::vector<int64_t>(users_.begin() + 1, users_.begin() + 1 + static_cast<long>(others)));
  }
  core::StatusOr<MemberList> Recipients(const std::string& conv_id) {
    auto ref = store::ParseConvId(conv_id);
    EXPECT_TRUE(ref.has_value()) << conv_id;
    return Await<MemberList>(
        [&](auto cb) { services().fanout().SmallRecipients(*ref, std::move(cb)); });
  }
  // The jobs queued now (leased, so they stay out of later reads).
  std::vector<store::Job> LeaseJobs() {
    auto jobs = store::Call(store_->jobs(), &store::JobStore::Lease, std::string("test"), 100,
                            int64_t{60'000});
    EXPECT_TRUE(jobs.ok()) << jobs.status();
    return jobs.ok() ? *jobs : std::vector<store::Job>{};
  }
  static bool PayloadHas(const store::Job& job, const std::string& part) {
    return job.payload.find(part) != std::string::npos;
  }

  std::vector<int64_t> users_;
  Principal owner_;
};

TEST_F(FanoutTest, APrivateChatsRecipientsAreItsTwoUsersWithoutAStoreRead) {
  auto r = Recipients(store::PrivateConvId(users_[2], users_[1]));
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_NE(*r, nullptr);
  EXPECT_EQ(Sorted(**r), Sorted({users_[1], users_[2]}));
  EXPECT_EQ(faults().Calls("groups.ListMembers"), 0);
}

TEST_F(FanoutTest, MembersOfASmallGroupAreReadOnceUntilMembershipChanges) {
  const int64_t group = Group(2);  // three members: at the threshold
  const std::string conv = store::GroupConvId(group);
  auto first = Recipients(conv);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_NE(*first, nullptr);
  EXPECT_EQ(**first, (std::vector<int64_t>{users_[0], users_[1], users_[2]}));
  auto second = Recipients(conv);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(faults().Calls("groups.ListMembers"), 1) << "the second answer came from the cache";
  // A fourth member (through the group service, which invalidates) makes
  // the group large.
  auto added = Await<std::vector<int64_t>>(
      [&](auto cb) { services().groups().AddMembers(owner_, group, {users_[3]}, std::move(cb)); });
  ASSERT_TRUE(added.ok()) << added.status();
  auto third = Recipients(conv);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(*third, nullptr) << "over the threshold: no member list";
}

TEST_F(FanoutTest, AMessageToAGroupAtTheThresholdIsDeliveredInline) {
  const int64_t group = Group(2);
  SendRequest req = Text(group, "c1", "hi", /*to_group=*/true);
  req.origin_conn = route::ConnId{1, 99};
  auto sent = Send(owner_, req);
  ASSERT_TRUE(sent.ok()) << sent.status();
  auto calls = deliverer_.messages.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].users, (std::vector<int64_t>{users_[0], users_[1], users_[2]}));
  EXPECT_EQ(calls[0].exclude_conn, (route::ConnId{1, 99}));
  EXPECT_EQ(calls[0].msg.seq, sent->seq);
  EXPECT_EQ(faults().Calls("jobs.Enqueue"), 0);
  EXPECT_TRUE(LeaseJobs().empty());
  EXPECT_EQ(services().jobs_woken(), 0);
}

TEST_F(FanoutTest, AMessageToAGroupOverTheThresholdIsOneDurableJobAndNothingInline) {
  const int64_t group = Group(3);  // four members
  // The answer waits until the job is durable.
  faults().HoldNext("jobs.Enqueue");
  auto pending = store::Begin<SendResult>([&](auto cb) {
    services().messages().Send(owner_, Text(group, "c1", "hi", true), std::move(cb), nullptr);
  });
  ASSERT_TRUE(faults().WaitHeld("jobs.Enqueue", 1, testing::kAwaitTimeout));
  EXPECT_EQ(pending.wait_for(milliseconds(50)), std::future_status::timeout);
  faults().Release("jobs.Enqueue");
  ASSERT_EQ(pending.wait_for(testing::kAwaitTimeout), std::future_status::ready);
  auto sent = pending.get();
  ASSERT_TRUE(sent.ok()) << sent.status();

  EXPECT_EQ(deliverer_.messages.size(), 0u);
  EXPECT_EQ(services().jobs_woken(), 1);
  auto jobs = LeaseJobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].kind, Fanout::kJobKind);
  EXPECT_TRUE(PayloadHas(jobs[0], "\"msg_id\":" + std::to_string(sent->msg_id))) << jobs[0].payload;
  EXPECT_TRUE(PayloadHas(jobs[0], "\"recall\":false")) << jobs[0].payload;
}

TEST_F(FanoutTest, AFailedJobEnqueueDoesNotFailTheDurableSend) {
  const int64_t group = Group(4);
  faults().FailNext("jobs.Enqueue");
  auto sent = Send(owner_, Text(group, "c1", "hi", true));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(Stored(store::GroupConvId(group)).size(), 1u) << "members find it by sync";
  EXPECT_EQ(services().jobs_woken(), 0);
  EXPECT_TRUE(LeaseJobs().empty());
  EXPECT_EQ(deliverer_.messages.size(), 0u);
}

TEST_F(FanoutTest, AFailedMemberReadDeliversNothingAndDoesNotFailTheSend) {
  const int64_t group = Group(2);
  faults().FailNext("groups.ListMembers");
  auto sent = Send(owner_, Text(group, "c1", "hi", true));
  ASSERT_TRUE(sent.ok()) << sent.status();
  EXPECT_EQ(deliverer_.messages.size(), 0u);
  EXPECT_EQ(Stored(store::GroupConvId(group)).size(), 1u);
  // The failure was not cached: the next message is delivered.
  ASSERT_TRUE(Send(owner_, Text(group, "c2", "again", true)).ok());
  EXPECT_EQ(deliverer_.messages.size(), 1u);
}

TEST_F(FanoutTest, TheHandOffReportsAMemberReadFailure) {
  const int64_t group = Group(2);
  auto sent = Send(owner_, Text(group, "c1", "hi", true));
  ASSERT_TRUE(sent.ok()) << sent.status();
  services().member_cache().Invalidate(group, [] {});
  faults().FailNext("groups.ListMembers");
  store::Message m = Stored(store::GroupConvId(group)).at(0);
  auto s = AwaitStatus([&](auto cb) {
    services().fanout().Message(m, route::ConnId{}, true, Priority::kNormal, std::move(cb));
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(deliverer_.messages.size(), 1u) << "only the send's own delivery";
}

TEST_F(FanoutTest, ARecallGoesInlineToASmallGroupAndAsAJobToALargeOne) {
  const int64_t small = Group(2), large = Group(4);
  auto in_small = Send(owner_, Text(small, "s", "x", true));
  auto in_large = Send(owner_, Text(large, "l", "x", true));
  ASSERT_TRUE(in_small.ok() && in_large.ok());
  LeaseJobs();  // the large group's message job

  store::Message small_msg = Stored(store::GroupConvId(small)).at(0);
  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { services().fanout().Recall(small_msg, std::move(cb)); }).ok());
  auto recalls = deliverer_.recalls.calls();
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].users, (std::vector<int64_t>{users_[0], users_[1], users_[2]}));
  EXPECT_EQ(recalls[0].msg_id, small_msg.msg_id);

  store::Message large_msg = Stored(store::GroupConvId(large)).at(0);
  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { services().fanout().Recall(large_msg, std::move(cb)); }).ok());
  EXPECT_EQ(deliverer_.recalls.size(), 1u);
  auto jobs = LeaseJobs();
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_TRUE(PayloadHas(jobs[0], "\"msg_id\":" + std::to_string(large_msg.msg_id)))
      << jobs[0].payload;
  EXPECT_TRUE(PayloadHas(jobs[0], "\"recall\":true")) << jobs[0].payload;
}

}  // namespace
}  // namespace mpim::service
