// DeliveredCursors on a real SQLite store in a temp dir: acks stay in
// memory until a flush, reads through Snapshot + Overlay see them at once,
// a flush writes them (coalesced), and a failed flush keeps them pending.
#include "service/conversation/delivered_cursors.h"

#include <gtest/gtest.h>

#include "store/conv_id.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::service {
namespace {

using store::Call;
using store::ConversationStore;

class DeliveredCursorsTest : public testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    alice_ = MakeUser("alice");
    bob_ = MakeUser("bob");
    conv_ = store::PrivateConvId(alice_, bob_);
    for (int i = 0; i < 5; ++i) {
      store::AppendRequest r;
      r.msg_id = 100 + i;
      r.conv_id = conv_;
      r.sender = alice_;
      r.recipient = bob_;
      r.body = "{}";
      r.client_msg_id = "m" + std::to_string(i);
      ASSERT_TRUE(Call(store_->messages(), &store::MessageStore::Append, r).ok());
    }
  }
  // What hello would report for bob's session: the store's list, read
  // through the unwritten cursors.
  std::vector<store::PendingConversation> Pending(DeliveredCursors& cursors, int64_t session) {
    auto unwritten = cursors.Snapshot(session);
    auto stored = Call(store_->conversations(), &ConversationStore::ListPending, bob_, session);
    EXPECT_TRUE(stored.ok()) << stored.status();
    if (!stored.ok()) return {};
    DeliveredCursors::Overlay(unwritten, *stored);
    return *stored;
  }
  // The cursor as stored (0 when not written yet).
  int64_t Stored(int64_t session) {
    auto stored = Call(store_->conversations(), &ConversationStore::ListPending, bob_, session);
    EXPECT_TRUE(stored.ok());
    return stored.ok() && !stored->empty() ? (*stored)[0].delivered_seq : -1;
  }

  int64_t alice_ = 0;
  int64_t bob_ = 0;
  std::string conv_;
};

TEST_F(DeliveredCursorsTest, ReadsSeeAcksBeforeTheyAreWritten) {
  DeliveredCursors cursors(store_->conversations(), std::chrono::hours(1));
  cursors.Advance(7, conv_, 2);
  cursors.Advance(7, conv_, 3);
  cursors.Advance(7, conv_, 1);  // regression ignored
  EXPECT_EQ(Stored(7), 0);       // nothing written yet
  auto p = Pending(cursors, 7);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].delivered_seq, 3);
  cursors.Advance(7, conv_, 5);
  EXPECT_TRUE(Pending(cursors, 7).empty());   // everything acked
  EXPECT_EQ(Pending(cursors, 8).size(), 1u);  // another session: its own cursor

  ASSERT_TRUE(cursors.Flush().ok());
  EXPECT_TRUE(cursors.Snapshot(7).empty());
  EXPECT_EQ(Stored(7), -1);  // written: nothing pending in the store either
  EXPECT_TRUE(Pending(cursors, 7).empty());
}

TEST_F(DeliveredCursorsTest, AFlushClampsAndSkipsUnknownConversations) {
  DeliveredCursors cursors(store_->conversations(), std::chrono::hours(1));
  cursors.Advance(7, conv_, 2);
  cursors.Advance(7, "g:4242", 9);
  cursors.Advance(8, conv_, 99);  // beyond last_seq: written as 5
  ASSERT_TRUE(cursors.Flush().ok());
  EXPECT_EQ(Stored(7), 2);
  EXPECT_EQ(Stored(8), -1);
  EXPECT_TRUE(cursors.Flush().ok());  // nothing pending: nothing to do
}

TEST_F(DeliveredCursorsTest, AFailedFlushKeepsTheCursors) {
  DeliveredCursors cursors(store_->conversations(), std::chrono::hours(1));
  cursors.Advance(7, conv_, 4);
  store_->Close();  // every write now fails with unavailable
  EXPECT_EQ(cursors.Flush().code(), absl::StatusCode::kUnavailable);
  auto kept = cursors.Snapshot(7);
  ASSERT_EQ(kept.count(conv_), 1u);
  EXPECT_EQ(kept[conv_], 4);
}

TEST_F(DeliveredCursorsTest, StopWritesWhatIsPending) {
  {
    DeliveredCursors cursors(store_->conversations(), std::chrono::hours(1));
    cursors.Start();
    cursors.Advance(7, conv_, 4);
    cursors.Stop();
  }
  EXPECT_EQ(Stored(7), 4);
}

}  // namespace
}  // namespace mpim::service
