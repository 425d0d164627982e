// LocalPresence: online counts per user, followers told on the first
// connection and the last disconnection only, last_seen kept here and in
// the store.
#include "route/local_presence.h"
#include "route/registry.h"

#include <gtest/gtest.h>

#include <mutex>

#include "support/sqlite_store_fixture.h"

namespace mpim::route {
namespace {

struct Event {
  std::vector<ConnId> followers;
  int64_t user;
  bool online;
  int64_t last_seen;
};

class LocalPresenceTest : public mpim::testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    user_ = MakeUser("alice");
    presence_ = std::make_unique<LocalPresence>(
        LastSeenInStore(store_->users()), [this](const std::vector<ConnId>& f, int64_t u, bool on, int64_t seen) {
          std::lock_guard lock(mu_);
          events_.push_back({f, u, on, seen});
        });
  }
  std::vector<Event> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }

  int64_t user_ = 0;
  std::unique_ptr<LocalPresence> presence_;
  std::mutex mu_;
  std::vector<Event> events_;
};

TEST_F(LocalPresenceTest, FollowersHearFirstAndLastConnectionOnly) {
  const ConnId follower{1, 77};
  presence_->Subscribe(follower, {user_});
  EXPECT_FALSE(presence_->Get(user_).online);
  presence_->Connected(user_, 1000);
  presence_->Connected(user_, 1001);  // a second device: no event
  EXPECT_TRUE(presence_->Get(user_).online);
  presence_->Disconnected(user_, 2000);  // one left: still online
  EXPECT_TRUE(presence_->Get(user_).online);
  EXPECT_EQ(presence_->Get(user_).last_seen, 2000);
  presence_->Disconnected(user_, 3000);
  EXPECT_FALSE(presence_->Get(user_).online);
  auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].online);
  EXPECT_EQ(events[0].followers, std::vector<ConnId>{follower});
  EXPECT_FALSE(events[1].online);
  EXPECT_EQ(events[1].last_seen, 3000);
}

TEST_F(LocalPresenceTest, UnsubscribedConnectionsHearNothing) {
  const ConnId a{1, 1}, b{2, 1};  // same local id on two nodes: two followers
  presence_->Subscribe(a, {user_});
  presence_->Subscribe(b, {user_});
  presence_->Connected(user_, 10);
  presence_->DropConnection(a, {user_});
  presence_->Disconnected(user_, 20);
  auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].followers.size(), 2u);
  EXPECT_EQ(events[1].followers, std::vector<ConnId>{b});
}

TEST_F(LocalPresenceTest, LastSeenReachesTheStore) {
  presence_->Connected(user_, 10);
  presence_->Disconnected(user_, 5000);
  // TouchLastSeen is best effort and asynchronous: wait for it, bounded.
  int64_t seen = 0;
  for (int i = 0; i < 500 && seen != 5000; ++i) {
    auto u = store::Call(store_->users(), &store::UserStore::Get, user_);
    ASSERT_TRUE(u.ok()) << u.status();
    seen = u->last_seen;
    if (seen != 5000) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(seen, 5000);
}

}  // namespace
}  // namespace mpim::route
