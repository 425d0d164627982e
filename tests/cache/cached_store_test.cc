// The cache-aside decorator of the store (cache/cached_store.h), on a real
// SQLite store: reads through it are cached (a change made behind its back
// is not seen), writes through it drop what they changed (seen at once),
// and on the redis engine a write on one node is seen by another.
#include "cache/cached_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store/blocking.h"
#include "support/sqlite_store_fixture.h"
#include "support/await.h"
#include "support/borrowed_store.h"
#include "support/redis_server.h"

namespace mpim::cache {
namespace {

using ::absl::StatusCode;
using store::Call;

using testing::BorrowedStore;

class CachedStoreTest : public testing::SqliteStoreTest {
 protected:
  std::unique_ptr<store::Store> Node(const std::string& engine = "local",
                                     redis::Client* redis = nullptr) {
    core::Config config;
    config.cache.engine = engine;
    config.cache.redis_prefix = "cached_store_test:" + std::to_string(getpid()) + ":";
    auto node = MakeCachedStore(std::make_unique<BorrowedStore>(*store_), config, redis);
    EXPECT_TRUE(node.ok()) << node.status();
    return node.ok() ? std::move(*node) : nullptr;
  }
  int64_t MakeGroup(int64_t owner, std::vector<int64_t> members) {
    auto g = Call(store_->groups(), &store::GroupStore::Create,
                  store::NewGroup{"g", "", owner, false, std::move(members)});
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? g->group_id : 0;
  }
};

TEST_F(CachedStoreTest, MembershipIsCachedAndWritesThroughItDropIt) {
  auto node = Node();
  int64_t owner = MakeUser("owner"), u = MakeUser("u");
  int64_t g = MakeGroup(owner, {});
  auto member = [&](store::Store& s) {
    return Call(s.groups(), &store::GroupStore::GetMember, g, u);
  };
  EXPECT_EQ(member(*node).status().code(), StatusCode::kNotFound);
  // Added behind the cache's back: "not a member" is still cached.
  ASSERT_TRUE(Call(store_->groups(), &store::GroupStore::AddMembers, g,
                   std::vector<int64_t>{u}).ok());
  EXPECT_EQ(member(*node).status().code(), StatusCode::kNotFound);
  // Removed and added again through the cache: seen at once.
  ASSERT_TRUE(Call(node->groups(), &store::GroupStore::RemoveMember, g, u).ok());
  EXPECT_EQ(member(*node).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(Call(node->groups(), &store::GroupStore::AddMembers, g,
                   std::vector<int64_t>{u}).ok());
  ASSERT_TRUE(member(*node).ok());
  EXPECT_EQ(member(*node)->role, store::GroupRole::kMember);
  EXPECT_EQ(Call(node->groups(), &store::GroupStore::Get, g)->member_count, 2);
}

TEST_F(CachedStoreTest, ANewOwnerAndTheOldOneAreBothSeenAtOnce) {
  auto node = Node();
  int64_t owner = MakeUser("owner"), u = MakeUser("u");
  int64_t g = MakeGroup(owner, {u});
  ASSERT_EQ(Call(node->groups(), &store::GroupStore::GetMember, g, owner)->role,
            store::GroupRole::kOwner);
  ASSERT_EQ(Call(node->groups(), &store::GroupStore::Get, g)->owner_id, owner);
  ASSERT_TRUE(Call(node->groups(), &store::GroupStore::SetRole, g, u, store::GroupRole::kOwner)
                  .ok());
  EXPECT_EQ(Call(node->groups(), &store::GroupStore::GetMember, g, owner)->role,
            store::GroupRole::kAdmin);
  EXPECT_EQ(Call(node->groups(), &store::GroupStore::GetMember, g, u)->role,
            store::GroupRole::kOwner);
  EXPECT_EQ(Call(node->groups(), &store::GroupStore::Get, g)->owner_id, u);
}

TEST_F(CachedStoreTest, UsersAreCachedAndUpdatesThroughItAreSeen) {
  auto node = Node();
  int64_t a = MakeUser("a");
  auto name = [&] { return Call(node->users(), &store::UserStore::Get, a)->display_name; };
  EXPECT_EQ(name(), "a");
  ASSERT_TRUE(Call(store_->users(), &store::UserStore::Update, a,
                   store::UserUpdate{std::string("behind"), std::nullopt, std::nullopt})
                  .ok());
  EXPECT_EQ(name(), "a");  // cached
  ASSERT_TRUE(Call(node->users(), &store::UserStore::Update, a,
                   store::UserUpdate{std::string("through"), std::nullopt, std::nullopt})
                  .ok());
  EXPECT_EQ(name(), "through");
  ASSERT_TRUE(store::AwaitStatus([&](store::DoneCallback cb) {
                node->users().TouchLastSeen(a, 12345, std::move(cb));
              }).ok());
  EXPECT_EQ(Call(node->users(), &store::UserStore::Get, a)->last_seen, 12345);
  // An id looked up before it exists, then created through the cache.
  const int64_t next = a + 1;
  EXPECT_EQ(Call(node->users(), &store::UserStore::Get, next).status().code(),
            StatusCode::kNotFound);
  auto created = Call(node->users(), &store::UserStore::Create, store::NewUser{"b", "h", "b", ""});
  ASSERT_TRUE(created.ok());
  ASSERT_EQ(created->user_id, next);
  EXPECT_TRUE(Call(node->users(), &store::UserStore::Get, next).ok());
}

TEST_F(CachedStoreTest, EngineNoneIsTheStoreItself) {
  core::Config config;
  config.cache.engine = "none";
  auto inner = std::make_unique<BorrowedStore>(*store_);
  store::Store* raw = inner.get();
  auto node = MakeCachedStore(std::move(inner), config, nullptr);
  ASSERT_TRUE(node.ok());
  EXPECT_EQ(node->get(), raw);
}

// Warm-up loads the active groups and their members before anyone reads
// them: a change made behind the cache's back afterwards is not seen.
TEST_F(CachedStoreTest, WarmUpLoadsTheActiveGroupsAndTheirMembers) {
  int64_t owner = MakeUser("owner"), u = MakeUser("u");
  int64_t g = MakeGroup(owner, {u});
  auto node = Node();
  auto warmed = testing::Await<size_t>(
      [&](auto cb) { WarmUpCaches(*node, 100, std::move(cb)); });
  ASSERT_TRUE(warmed.ok()) << warmed.status();
  EXPECT_EQ(*warmed, 3u);  // the group and its two members
  ASSERT_TRUE(Call(store_->groups(), &store::GroupStore::RemoveMember, g, u).ok());
  EXPECT_TRUE(Call(node->groups(), &store::GroupStore::GetMember, g, u).ok()) << "not warmed";
  EXPECT_EQ(Call(node->groups(), &store::GroupStore::Get, g)->member_count, 2);
  // A store without caches warms nothing.
  EXPECT_EQ(*testing::Await<size_t>([&](auto cb) { WarmUpCaches(*store_, 100, std::move(cb)); }),
            0u);
}

// Two nodes with their own Redis clients on one Redis and one store: a
// membership change through node 1 reaches node 2's memory tier.
TEST_F(CachedStoreTest, OnRedisAWriteOnOneNodeIsSeenByTheOther) {
  core::Config config;
  config.cache.engine = "redis";
  config.cache.redis_url = testing::SharedRedis().Url();
  auto client1 = MakeRedisClient(config), client2 = MakeRedisClient(config);
  ASSERT_TRUE(client1.ok() && client2.ok());
  auto node1 = Node("redis", client1->get()), node2 = Node("redis", client2->get());
  int64_t owner = MakeUser("owner"), u = MakeUser("u");
  int64_t g = MakeGroup(owner, {});
  auto member_on = [&](store::Store& s) {
    return Call(s.groups(), &store::GroupStore::GetMember, g, u);
  };
  EXPECT_EQ(member_on(*node2).status().code(), StatusCode::kNotFound);  // cached on node 2
  ASSERT_TRUE(Call(node1->groups(), &store::GroupStore::AddMembers, g,
                   std::vector<int64_t>{u}).ok());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!member_on(*node2).ok() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(member_on(*node2).ok()) << "node 2 never saw the new member";
  node1.reset();
  node2.reset();
}

}  // namespace
}  // namespace mpim::cache
