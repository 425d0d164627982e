// ConversationService (service/conversation/conversation_service_impl.h) on
// a real SQLite store behind a FaultStore, with a recording Deliverer: read
// cursors and receipts, sync pages, who may see which seqs of a group,
// acks and the pending list, typing, mute and pin, and storage failures.
#include <gtest/gtest.h>

#include <algorithm>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "support/service_fixture.h"

namespace mpim::service {
namespace {

using testing::Await;
using testing::AwaitStatus;

class ConversationServiceTest : public testing::ThreeUsersTest {
 protected:
  ConversationService& conversations() { return services().conversations(); }
  std::string AliceBob() const { return store::PrivateConvId(alice_, bob_); }

  // `n` texts from `who` to a user (or group); false if one failed.
  bool SendTexts(Principal who, int64_t to, int n, bool to_group = false) {
    for (int i = 0; i < n; ++i) {
      auto r = Send(who, Text(to, "m" + std::to_string(next_msg_++), "x", to_group));
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        return false;
      }
    }
    return true;
  }
  core::StatusOr<int64_t> Read(Principal who, const std::string& conv_id, int64_t seq,
                               route::ConnId origin = {}) {
    return Await<int64_t>(
        [&](auto cb) { conversations().Read(who, conv_id, seq, origin, std::move(cb)); });
  }
  core::StatusOr<MessagePage> Sync(Principal who, const std::string& conv_id, int64_t after,
                                   int limit = 50) {
    return Await<MessagePage>(
        [&](auto cb) { conversations().Sync(who, conv_id, after, limit, std::move(cb)); });
  }
  // The seqs a sync from 0 returns.
  std::vector<int64_t> SyncSeqs(Principal who, const std::string& conv_id) {
    auto page = Sync(who, conv_id, 0, 200);
    EXPECT_TRUE(page.ok()) << page.status();
    std::vector<int64_t> seqs;
    if (page.ok()) {
      for (const auto& m : page->messages) seqs.push_back(m.seq);
    }
    return seqs;
  }
  core::StatusOr<std::vector<store::PendingConversation>> Pending(Principal who) {
    return Await<std::vector<store::PendingConversation>>(
        [&](auto cb) { conversations().Pending(who, std::move(cb)); });
  }
  core::StatusOr<store::UserConversation> AsSeenBy(int64_t user, const std::string& conv_id) {
    return store::Call(store_->conversations(), &store::ConversationStore::GetForUser, user,
                       conv_id);
  }

  int next_msg_ = 0;
};

TEST_F(ConversationServiceTest, ReadMovesReadSeqAndSendsAReceiptToThePeerAndTheReadersDevices) {
  ASSERT_TRUE(SendTexts(a_, bob_, 3));
  auto read = Read(b_, AliceBob(), 2, route::ConnId{1, 5});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 2);
  auto seen = AsSeenBy(bob_, AliceBob());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->read_seq, 2);
  EXPECT_EQ(seen->unread, 1);

  ASSERT_TRUE(deliverer_.receipts.WaitFor(1));
  auto receipts = deliverer_.receipts.calls();
  ASSERT_EQ(receipts.size(), 1u);
  EXPECT_EQ(Sorted(receipts[0].users), Sorted({alice_, bob_}));
  EXPECT_EQ(receipts[0].exclude_conn, (route::ConnId{1, 5}));
  EXPECT_EQ(receipts[0].conv_id, AliceBob());
  EXPECT_EQ(receipts[0].reader, bob_);
  EXPECT_EQ(receipts[0].read_seq, 2);

  auto clamped = Read(b_, AliceBob(), 100);
  ASSERT_TRUE(clamped.ok()) << clamped.status();
  EXPECT_EQ(*clamped, 3) << "clamped to last_seq";
}

// ConversationService::Read: "on change, receipts go to the other members".
TEST_F(ConversationServiceTest, ReadingAnOlderSeqKeepsReadSeqAndSendsNoReceipt) {
  ASSERT_TRUE(SendTexts(a_, bob_, 3));
  ASSERT_TRUE(Read(b_, AliceBob(), 3).ok());
  ASSERT_TRUE(deliverer_.receipts.WaitFor(1));
  auto older = Read(b_, AliceBob(), 1);
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(*older, 3);
  // A later read that does move the cursor marks where the receipts end.
  ASSERT_TRUE(SendTexts(a_, bob_, 1));
  ASSERT_TRUE(Read(b_, AliceBob(), 4).ok());
  ASSERT_TRUE(deliverer_.receipts.WaitFor(2));
  std::vector<int64_t> seqs;
  for (const auto& r : deliverer_.receipts.calls()) seqs.push_back(r.read_seq);
  EXPECT_EQ(seqs, (std::vector<int64_t>{3, 4}));
}

TEST_F(ConversationServiceTest, AFailedMarkReadIsUnavailableAndSendsNoReceipt) {
  ASSERT_TRUE(SendTexts(a_, bob_, 2));
  faults().FailNext("conversations.MarkRead");
  EXPECT_EQ(Read(b_, AliceBob(), 2).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(AsSeenBy(bob_, AliceBob())->read_seq, 0);
  ASSERT_TRUE(Read(b_, AliceBob(), 1).ok());
  ASSERT_TRUE(deliverer_.receipts.WaitFor(1));
  auto receipts = deliverer_.receipts.calls();
  ASSERT_EQ(receipts.size(), 1u);
  EXPECT_EQ(receipts[0].read_seq, 1);
}

TEST_F(ConversationServiceTest, OnlyTheTwoUsersReadAPrivateChatAndOnlyMembersAGroup) {
  ASSERT_TRUE(SendTexts(a_, bob_, 1));
  EXPECT_EQ(Read(c_, AliceBob(), 1).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Sync(c_, AliceBob(), 0).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Sync(a_, "nonsense", 0).status().code(), absl::StatusCode::kInvalidArgument);
  const int64_t group = MakeGroup(alice_, {bob_});
  ASSERT_TRUE(SendTexts(a_, group, 1, /*to_group=*/true));
  EXPECT_EQ(Sync(c_, store::GroupConvId(group), 0).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(Sync(c_, store::GroupConvId(group + 1000), 0).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SyncSeqs(b_, store::GroupConvId(group)), std::vector<int64_t>{1});
}

TEST_F(ConversationServiceTest, SyncPagesThroughEveryMessageInSeqOrder) {
  ASSERT_TRUE(SendTexts(a_, bob_, 4));
  ASSERT_TRUE(SendTexts(b_, alice_, 3));
  std::vector<int64_t> seqs;
  int64_t after = 0;
  int pages = 0;
  for (;;) {
    auto page = Sync(b_, AliceBob(), after, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    ++pages;
    ASSERT_LE(page->messages.size(), 3u);
    for (const auto& m : page->messages) seqs.push_back(m.seq);
    if (!page->has_more) break;
    ASSERT_FALSE(page->messages.empty());
    after = page->messages.back().seq;
  }
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7}));
  auto past_end = Sync(b_, AliceBob(), 7);
  ASSERT_TRUE(past_end.ok());
  EXPECT_TRUE(past_end->messages.empty());
  EXPECT_FALSE(past_end->has_more);
  EXPECT_EQ(Sync(b_, AliceBob(), 0, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sync(b_, AliceBob(), 0, 201).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sync(b_, AliceBob(), -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ConversationServiceTest, AMemberSeesFromJoiningOnAndAFormerMemberWhatTheyWerePresentFor) {
  const int64_t group = MakeGroup(alice_, {bob_});
  const std::string conv = store::GroupConvId(group);
  ASSERT_TRUE(SendTexts(a_, group, 2, true));  // seqs 1-2: before carol
  auto added = Await<std::vector<int64_t>>(
      [&](auto cb) { services().groups().AddMembers(a_, group, {carol_}, std::move(cb)); });
  ASSERT_TRUE(added.ok()) << added.status();   // seq 3: "joined"
  ASSERT_TRUE(SendTexts(b_, group, 1, true));  // seq 4
  EXPECT_EQ(SyncSeqs(c_, conv), (std::vector<int64_t>{3, 4}));

  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                services().groups().RemoveMember(c_, group, carol_, std::move(cb));
              }).ok());                        // seq 5: "left", after carol's span
  ASSERT_TRUE(SendTexts(a_, group, 1, true));  // seq 6
  EXPECT_EQ(SyncSeqs(a_, conv), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(SyncSeqs(c_, conv), (std::vector<int64_t>{3, 4})) << "a former member";
  auto history = Await<MessagePage>([&](auto cb) {
    conversations().History(c_, conv, std::nullopt, std::nullopt, 50, std::move(cb));
  });
  ASSERT_TRUE(history.ok()) << history.status();
  ASSERT_EQ(history->messages.size(), 2u);
  EXPECT_EQ(history->messages.front().seq, 3);
  EXPECT_EQ(Read(c_, conv, 4).status().code(), absl::StatusCode::kPermissionDenied)
      << "former members only read history";
}

TEST_F(ConversationServiceTest, FailedStoreReadsAreUnavailable) {
  const int64_t group = MakeGroup(alice_, {bob_});
  ASSERT_TRUE(SendTexts(a_, group, 1, true));
  ASSERT_TRUE(SendTexts(a_, bob_, 1));
  faults().FailNext("messages.Read");
  EXPECT_EQ(Sync(b_, AliceBob(), 0).status().code(), absl::StatusCode::kUnavailable);
  faults().FailNext("groups.GetMember");
  EXPECT_EQ(Sync(b_, store::GroupConvId(group), 0).status().code(), absl::StatusCode::kUnavailable);
  faults().FailNext("conversations.ListPending");
  EXPECT_EQ(Pending(b_).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(SyncSeqs(b_, AliceBob()), std::vector<int64_t>{1}) << "faults were one-shot";
}

// A former member's access comes from their past spans; if those cannot be
// read, the answer must be the storage error, not "not a member".
TEST_F(ConversationServiceTest, AFormerMembersSyncIsUnavailableWhenTheirSpansCannotBeRead) {
  const int64_t group = MakeGroup(alice_, {bob_, carol_});
  ASSERT_TRUE(SendTexts(a_, group, 1, true));
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                services().groups().RemoveMember(c_, group, carol_, std::move(cb));
              }).ok());
  ASSERT_EQ(SyncSeqs(c_, store::GroupConvId(group)), std::vector<int64_t>{1});
  faults().FailNext("groups.ListPastSpans");
  auto r = Sync(c_, store::GroupConvId(group), 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
}

TEST_F(ConversationServiceTest, AnAckHidesTheConversationFromPendingBeforeAndAfterItIsWritten) {
  ASSERT_TRUE(SendTexts(a_, bob_, 2));
  auto before = Pending(b_);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_EQ(before->size(), 1u);
  EXPECT_EQ((*before)[0].conv_id, AliceBob());
  EXPECT_EQ((*before)[0].last_seq, 2);
  EXPECT_EQ((*before)[0].delivered_seq, 0);

  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { conversations().Ack(b_, AliceBob(), 1, std::move(cb)); }).ok());
  auto partly = Pending(b_);
  ASSERT_TRUE(partly.ok());
  ASSERT_EQ(partly->size(), 1u);
  EXPECT_EQ((*partly)[0].delivered_seq, 1) << "the unwritten ack is overlaid";

  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { conversations().Ack(b_, AliceBob(), 2, std::move(cb)); }).ok());
  EXPECT_TRUE(Pending(b_)->empty());
  EXPECT_EQ(faults().Calls("conversations.MarkDeliveredMany"), 0) << "acks wait in memory";
  ASSERT_TRUE(services().cursors().Flush().ok());
  EXPECT_EQ(faults().Calls("conversations.MarkDeliveredMany"), 1);
  EXPECT_TRUE(Pending(b_)->empty());
  // The cursor is the session's: bob's other device still has it pending.
  auto other = Pending(Login(bob_));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), 1u);
  EXPECT_EQ(
      AwaitStatus([&](auto cb) { conversations().Ack(c_, AliceBob(), 2, std::move(cb)); }).code(),
      absl::StatusCode::kPermissionDenied);
}

TEST_F(ConversationServiceTest, TypingGoesToTheOtherMembersOnly) {
  const int64_t group = MakeGroup(alice_, {bob_, carol_});
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                conversations().Typing(a_, store::GroupConvId(group), std::move(cb));
              }).ok());
  ASSERT_TRUE(deliverer_.typing.WaitFor(1));
  auto typing = deliverer_.typing.calls();
  ASSERT_EQ(typing.size(), 1u);
  EXPECT_EQ(Sorted(typing[0].users), Sorted({bob_, carol_}));
  EXPECT_EQ(typing[0].user, alice_);
  EXPECT_EQ(
      AwaitStatus([&](auto cb) { conversations().Typing(c_, AliceBob(), std::move(cb)); }).code(),
      absl::StatusCode::kPermissionDenied);
}

TEST_F(ConversationServiceTest, MuteAndPinAreStoredAndTheUsersDevicesAreTold) {
  ASSERT_TRUE(SendTexts(a_, bob_, 1));
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                conversations().Update(a_, AliceBob(), true, true, std::move(cb));
              }).ok());
  auto seen = AsSeenBy(alice_, AliceBob());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_TRUE(seen->muted);
  EXPECT_TRUE(seen->pinned);
  EXPECT_FALSE(AsSeenBy(bob_, AliceBob())->muted) << "bob's view is his own";
  auto convs = deliverer_.convs.calls();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(convs[0].users, std::vector<int64_t>{alice_});
  EXPECT_EQ(convs[0].event, "updated");

  faults().FailNext("conversations.SetPinned");
  EXPECT_EQ(AwaitStatus([&](auto cb) {
              conversations().Update(a_, AliceBob(), false, false, std::move(cb));
            }).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(deliverer_.convs.size(), 1u) << "a failed update tells nobody";
}

}  // namespace
}  // namespace mpim::service
