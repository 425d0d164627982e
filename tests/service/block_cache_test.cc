// BlockCache on a real SQLite store: a pair is read once and then answered
// from memory until it is invalidated.
#include "service/friend/block_cache.h"

#include <gtest/gtest.h>

#include "support/sqlite_store_fixture.h"

namespace mpim::service {
namespace {

using store::Call;
using store::FriendStore;

class BlockCacheTest : public testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    for (const char* name : {"alice", "bob", "carol"}) ids_.push_back(MakeUser(name));
  }

  core::StatusOr<bool> Blocked(BlockCache& cache, int64_t blocker, int64_t blocked) {
    return store::Await<bool>([&](auto cb) { cache.IsBlocked(blocker, blocked, std::move(cb)); });
  }
  core::Status Block(int64_t blocker, int64_t blocked) {
    return Call(store_->friends(), &FriendStore::Block, blocker, blocked);
  }

  std::vector<int64_t> ids_;
};

TEST_F(BlockCacheTest, AnswersFromMemoryUntilInvalidated) {
  BlockCache cache(store_->friends());
  const int64_t alice = ids_[0], bob = ids_[1];
  EXPECT_FALSE(*Blocked(cache, alice, bob));
  ASSERT_TRUE(Block(alice, bob).ok());  // behind the cache's back
  EXPECT_FALSE(*Blocked(cache, alice, bob)) << "answered from memory";
  cache.Invalidate(alice, bob, [] {});  // what the friend service does after a block
  EXPECT_TRUE(*Blocked(cache, alice, bob));
  EXPECT_FALSE(*Blocked(cache, bob, alice));  // a block has a direction
  ASSERT_TRUE(Call(store_->friends(), &FriendStore::Unblock, alice, bob).ok());
  cache.Invalidate(alice, bob, [] {});
  EXPECT_FALSE(*Blocked(cache, alice, bob));
}

TEST_F(BlockCacheTest, StartsOverPastItsSize) {
  BlockCache cache(store_->friends(), /*max_pairs=*/2);
  const int64_t alice = ids_[0], bob = ids_[1], carol = ids_[2];
  EXPECT_FALSE(*Blocked(cache, alice, bob));
  EXPECT_FALSE(*Blocked(cache, alice, carol));
  ASSERT_TRUE(Block(alice, bob).ok());
  EXPECT_FALSE(*Blocked(cache, bob, carol));  // a third pair: the cache starts over
  EXPECT_TRUE(*Blocked(cache, alice, bob));   // so this one is read again
}

TEST_F(BlockCacheTest, StoreErrorsAreNotKept) {
  BlockCache cache(store_->friends());
  store_->Close();
  EXPECT_EQ(Blocked(cache, ids_[0], ids_[1]).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mpim::service
