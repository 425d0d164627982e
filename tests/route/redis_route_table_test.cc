// The route table contract (route_table_contract.cc) on RedisRouteTable
// with a real redis-server, and what a table shared by several nodes adds:
// counts and lookups across nodes, presence heard on another node, a node
// that dies (its routes swept, offline told), a node that restarts (its old
// routes invisible at once), Redis restarted empty (routes registered
// again; calls during the outage fail kUnavailable, never ok).
#include "route/redis_route_table.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>

#include "redis/test_util.h"
#include "route/redis_presence.h"
#include "route/registry.h"
#include "route/route_table_contract.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::route::testing {
namespace {

using Clock = std::chrono::steady_clock;
using mpim::redis::WaitUntil;
using mpim::testing::RedisServer;
using mpim::testing::SharedRedis;
using std::chrono::milliseconds;

// A key prefix no other table of this process uses.
std::string FreshPrefix() {
  static std::atomic<int> n{0};
  return "t:route:" + std::to_string(n.fetch_add(1)) + ":";
}

std::shared_ptr<redis::Client> ClientOf(const RedisServer& server,
                                        milliseconds timeout = milliseconds(1000)) {
  return redis::Connect(server, timeout);
}

std::unique_ptr<RedisRouteTable> MakeTable(std::shared_ptr<redis::Client> client, uint32_t node,
                                           const std::string& prefix,
                                           milliseconds ttl = milliseconds(10000),
                                           RedisRouteOptions::SweptHandler on_swept = nullptr,
                                           milliseconds sweep_every = milliseconds(0)) {
  RedisRouteOptions options;
  options.sweep_every = sweep_every;
  options.node = node;
  options.prefix = prefix;
  options.node_ttl = ttl;
  options.on_swept = std::move(on_swept);
  return std::make_unique<RedisRouteTable>(std::move(client), std::move(options));
}

INSTANTIATE_TEST_SUITE_P(Redis, RouteTableContract,
                         ::testing::Values(RouteTableFactory{
                             "redis",
                             [] {
                               return std::unique_ptr<RouteTable>(
                                   MakeTable(ClientOf(SharedRedis()), 1, FreshPrefix()));
                             }}),
                         [](const auto& info) { return info.param.name; });

// The routes of `users`, or a marker set when the lookup failed.
RouteKeys LookupKeys(RouteTable& t, std::vector<int64_t> users) {
  auto routes = Lookup(t, std::move(users));
  if (!routes.ok()) return {{-1, 0, 0, 0}};
  return Keys(*routes);
}

// Adds users [first, first + n) on `t` (connection {node, user}, session
// = user), all at once (pipelined); whether every Add succeeded.
bool AddMany(RouteTable& t, uint32_t node, int64_t first, int64_t n) {
  std::atomic<int64_t> left{n}, failed{0};
  for (int64_t u = first; u < first + n; ++u) {
    t.Add({u, {node, static_cast<uint64_t>(u)}, u}, [&](core::StatusOr<size_t> added) {
      if (!added.ok()) ++failed;
      --left;
    });
  }
  return WaitUntil([&] { return left == 0; }) && failed == 0;
}

std::vector<int64_t> Range(int64_t first, int64_t n) {
  std::vector<int64_t> out;
  for (int64_t u = first; u < first + n; ++u) out.push_back(u);
  return out;
}

struct Event {
  std::vector<ConnId> followers;
  int64_t user = 0;
  bool online = false;
  int64_t last_seen = 0;
};

// Presence events, as a listener hears them.
class Recorder {
 public:
  Presence::Listener Listener() {
    return [this](const std::vector<ConnId>& f, int64_t u, bool on, int64_t seen) {
      std::lock_guard lock(mu_);
      events_.push_back({f, u, on, seen});
    };
  }
  std::vector<Event> Events() {
    std::lock_guard lock(mu_);
    return events_;
  }
  // Events about `user`, in order: true online, false offline.
  std::vector<bool> Of(int64_t user) {
    std::vector<bool> out;
    for (const Event& e : Events()) {
      if (e.user == user) out.push_back(e.online);
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::vector<Event> events_;
};

class RedisRoutesTest : public mpim::testing::SqliteStoreTest {
 protected:
  std::unique_ptr<RedisPresence> MakePresence(std::shared_ptr<redis::Client> client,
                                              const std::string& prefix, Recorder& recorder) {
    auto p = std::make_unique<RedisPresence>(std::move(client), prefix,
                                             mpim::route::LastSeenInStore(store_->users()),
                                             recorder.Listener());
    EXPECT_TRUE(WaitUntil([&] { return p->ready(); })) << "presence never loaded";
    return p;
  }

  int64_t LastSeenInStore(int64_t user) {
    auto u = store::Call(store_->users(), &store::UserStore::Get, user);
    return u.ok() ? u->last_seen : -1;
  }

  const std::string prefix_ = FreshPrefix();
};

TEST_F(RedisRoutesTest, TwoNodesShareCountsAndLookups) {
  auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_);
  auto t2 = MakeTable(ClientOf(SharedRedis()), 2, prefix_);
  EXPECT_EQ(*Add(*t1, {7, {1, 10}, 70}), 1u);
  EXPECT_EQ(*Add(*t2, {7, {2, 10}, 71}), 2u);
  EXPECT_EQ(*Add(*t2, {8, {2, 11}, 80}), 1u);
  EXPECT_EQ(LookupKeys(*t2, {7, 8}), (RouteKeys{{7, 1, 10, 70}, {7, 2, 10, 71}, {8, 2, 11, 80}}));
  EXPECT_EQ(LookupKeys(*t1, {7}), (RouteKeys{{7, 1, 10, 70}, {7, 2, 10, 71}}));
  EXPECT_EQ(*Remove(*t2, 7, {1, 10}), 2u) << "a node removes only the routes it added";
  EXPECT_EQ(*Remove(*t1, 7, {1, 10}), 1u);
  EXPECT_EQ(*Remove(*t2, 7, {2, 10}), 0u);
  EXPECT_EQ(LookupKeys(*t1, {7, 8}), (RouteKeys{{8, 2, 11, 80}}));
}

TEST_F(RedisRoutesTest, PresenceOnAnotherNodeHearsTransitions) {
  const int64_t alice = MakeUser("alice");
  auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_);
  Recorder heard;
  auto p2 = MakePresence(ClientOf(SharedRedis()), prefix_, heard);
  const ConnId follower{2, 77};
  p2->Subscribe(follower, {alice});
  EXPECT_FALSE(p2->Get(alice).online);

  ASSERT_EQ(*Add(*t1, {alice, {1, 1}, 5}), 1u);
  ASSERT_EQ(*Add(*t1, {alice, {1, 2}, 6}), 2u);  // a second device: no event
  EXPECT_TRUE(WaitUntil([&] { return p2->Get(alice).online; }));
  ASSERT_EQ(*Remove(*t1, alice, {1, 1}), 1u);
  ASSERT_EQ(*Remove(*t1, alice, {1, 2}), 0u);
  EXPECT_TRUE(WaitUntil([&] { return heard.Of(alice).size() == 2; }));
  EXPECT_FALSE(p2->Get(alice).online);
  EXPECT_GT(p2->Get(alice).last_seen, 0) << "the offline event carries last_seen";
  auto events = heard.Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[0].online);
  EXPECT_EQ(events[0].followers, std::vector<ConnId>{follower});
  EXPECT_FALSE(events[1].online);

  // Unsubscribed: the view moves, nobody is told.
  p2->DropConnection(follower, {alice});
  ASSERT_EQ(*Add(*t1, {alice, {1, 3}, 7}), 1u);
  EXPECT_TRUE(WaitUntil([&] { return p2->Get(alice).online; }));
  EXPECT_EQ(heard.Events().size(), 2u);

  // Disconnected writes last_seen to the store (best effort, asynchronous),
  // not to the view (only offline events move it, alike on every node).
  const int64_t seen_before = p2->Get(alice).last_seen;
  p2->Disconnected(alice, 123456);
  EXPECT_TRUE(WaitUntil([&] { return LastSeenInStore(alice) == 123456; }));
  EXPECT_EQ(p2->Get(alice).last_seen, seen_before);
}

TEST_F(RedisRoutesTest, PresenceLoadsWhatWasOnlineBeforeIt) {
  auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_);
  ASSERT_TRUE(Add(*t1, {41, {1, 1}, 1}).ok());
  ASSERT_TRUE(Add(*t1, {42, {1, 2}, 1}).ok());
  ASSERT_TRUE(Remove(*t1, 42, {1, 2}).ok());
  Recorder heard;
  auto p = MakePresence(ClientOf(SharedRedis()), prefix_, heard);
  EXPECT_TRUE(p->Get(41).online);
  EXPECT_FALSE(p->Get(42).online);
  EXPECT_TRUE(heard.Events().empty());
}

// A node that stops heartbeating (kill -9: its table gone, its routes left
// in Redis): its routes leave lookups once its key expires, the sweep
// deletes them, tells followers elsewhere and reports the users for
// last_seen, within about 1.2 x node_ttl.
TEST_F(RedisRoutesTest, DeadNodeIsSweptWithinItsTtl) {
  const milliseconds ttl(1000);
  const int64_t alice = MakeUser("alice"), bob = MakeUser("bob");
  std::mutex swept_mu;
  std::vector<int64_t> swept;
  auto t2 = MakeTable(ClientOf(SharedRedis()), 2, prefix_, ttl,
                      [&](const std::vector<int64_t>& users, int64_t) {
                        std::lock_guard lock(swept_mu);
                        swept.insert(swept.end(), users.begin(), users.end());
                      });
  Recorder heard;
  auto p2 = MakePresence(ClientOf(SharedRedis()), prefix_, heard);
  p2->Subscribe({2, 5}, {alice, bob});
  {
    auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_, ttl);
    ASSERT_TRUE(Add(*t1, {alice, {1, 1}, 1}).ok());
    ASSERT_TRUE(Add(*t1, {bob, {1, 2}, 2}).ok());
    ASSERT_TRUE(Add(*t2, {bob, {2, 3}, 3}).ok());  // bob stays online through node 2
    ASSERT_EQ(LookupKeys(*t2, {alice, bob}).size(), 3u);
    EXPECT_EQ(*CountConnections(*t2), 3) << "both nodes' connections";
  }  // node 1 dies: no Remove, no more heartbeats
  const auto died = Clock::now();
  EXPECT_TRUE(WaitUntil(
      [&] {
        return LookupKeys(*t2, {alice, bob}).size() == 1;
      },
      milliseconds(3000)));
  const auto invisible = Clock::now();
  EXPECT_EQ(*CountConnections(*t2), 1) << "a dead node's connections are not counted";
  EXPECT_TRUE(WaitUntil(
      [&] {
        return heard.Of(alice) == std::vector<bool>{true, false};
      },
      milliseconds(3000)));
  const auto offline = Clock::now();
  EXPECT_EQ(heard.Of(bob), std::vector<bool>{true}) << "bob still has node 2's connection";
  EXPECT_FALSE(p2->Get(alice).online);
  EXPECT_TRUE(p2->Get(bob).online);
  // The sweeper hears its script's reply after Redis published the event.
  EXPECT_TRUE(WaitUntil([&] {
    std::lock_guard lock(swept_mu);
    return swept == std::vector<int64_t>{alice};
  }));
  EXPECT_EQ(LookupKeys(*t2, {alice, bob}), (RouteKeys{{bob, 2, 3, 3}}));
  EXPECT_EQ(*Add(*t2, {alice, {2, 4}, 4}), 1u) << "node 1's route is gone from the count too";
  auto ms = [&](Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(t - died).count();
  };
  std::printf(
      "[ measure ] node_ttl 1000 ms: routes invisible after %lld ms, offline after %lld ms\n",
      static_cast<long long>(ms(invisible)), static_cast<long long>(ms(offline)));
  EXPECT_LT(ms(offline), 2000) << "about 1.2 x node_ttl";
}

// A node restarted under the same node id: its new incarnation makes the
// old one's routes invisible at once (no sweep has run: sweeps are off
// here), then a sweep deletes them.
TEST_F(RedisRoutesTest, RestartedNodeHidesItsOldRoutesAtOnce) {
  const milliseconds no_sweep(3600 * 1000);
  auto t2 = MakeTable(ClientOf(SharedRedis()), 2, prefix_, milliseconds(10000), nullptr, no_sweep);
  Recorder heard;
  auto p2 = MakePresence(ClientOf(SharedRedis()), prefix_, heard);
  p2->Subscribe({2, 5}, {51});
  uint64_t old_incarnation = 0;
  {
    auto t1 =
        MakeTable(ClientOf(SharedRedis()), 1, prefix_, milliseconds(10000), nullptr, no_sweep);
    old_incarnation = t1->incarnation();
    ASSERT_TRUE(Add(*t1, {51, {1, 1}, 1}).ok());
    ASSERT_TRUE(Add(*t1, {52, {1, 2}, 1}).ok());
    ASSERT_EQ(LookupKeys(*t2, {51, 52}).size(), 2u);
  }
  auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_, milliseconds(10000), nullptr, no_sweep);
  EXPECT_NE(t1->incarnation(), old_incarnation);
  ASSERT_TRUE(WaitUntil([&] { return t1->registrations() >= 1; }));
  EXPECT_EQ(LookupKeys(*t2, {51, 52}), RouteKeys{}) << "node_ttl is 10 s: no expiry helped";
  EXPECT_EQ(LookupKeys(*t1, {51, 52}), RouteKeys{});
  EXPECT_EQ(heard.Of(51), std::vector<bool>{true}) << "not swept yet";

  auto t3 = MakeTable(ClientOf(SharedRedis()), 3, prefix_);  // sweeps at start
  EXPECT_TRUE(WaitUntil(
      [&] {
        return heard.Of(51) == std::vector<bool>{true, false};
      },
      milliseconds(3000)));
  EXPECT_EQ(*Add(*t1, {51, {1, 3}, 3}), 1u);
  EXPECT_EQ(LookupKeys(*t2, {51, 52}), (RouteKeys{{51, 1, 3, 3}}));
}

// Redis restarted empty: each node registers its routes again (users come
// back online); calls while it is down or not answering fail kUnavailable.
TEST_F(RedisRoutesTest, RedisRestartedEmptyGetsRoutesBack) {
  RedisServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const milliseconds timeout(300);
  auto t1 = MakeTable(ClientOf(server, timeout), 1, prefix_, milliseconds(1000));
  auto t2 = MakeTable(ClientOf(server, timeout), 2, prefix_, milliseconds(1000));
  std::atomic<int> again{0};  // the deliverer's cue to resync its sessions
  t1->OnRegisteredAgain([&] { ++again; });
  Recorder heard;
  auto p2 = MakePresence(ClientOf(server, timeout), prefix_, heard);
  p2->Subscribe({2, 9}, {62});
  ASSERT_TRUE(Add(*t1, {61, {1, 1}, 1}).ok());
  ASSERT_TRUE(Add(*t1, {62, {1, 2}, 2}).ok());
  ASSERT_TRUE(Add(*t2, {61, {2, 1}, 3}).ok());
  ASSERT_TRUE(AddMany(*t1, 1, 1000, 1200));  // registered again in 3 scripts
  const RouteKeys all{{61, 1, 1, 1}, {62, 1, 2, 2}, {61, 2, 1, 3}};
  ASSERT_EQ(LookupKeys(*t2, {61, 62}), all);
  ASSERT_TRUE(WaitUntil([&] { return p2->Get(62).online; }));

  // Not answering: kUnavailable within the timeout, never ok.
  server.Pause();
  auto paused = Add(*t1, {63, {1, 3}, 3});
  EXPECT_TRUE(absl::IsUnavailable(paused.status())) << paused.status();
  server.Resume();
  // That Add reached Redis, which runs it on waking: the table removes it
  // itself (the caller got kUnavailable and will not).
  ASSERT_TRUE(WaitUntil([&] { return Add(*t1, {66, {1, 6}, 6}).ok(); }));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return server.Command({"EXISTS", prefix_ + "r:63"}) == "0";
      },
      milliseconds(3000)));
  std::this_thread::sleep_for(milliseconds(300));
  EXPECT_EQ(server.Command({"EXISTS", prefix_ + "r:63"}), "0");
  EXPECT_EQ(LookupKeys(*t2, {63}), RouteKeys{});

  // Down: every call fails kUnavailable.
  server.Kill();
  int calls = 0, unavailable = 0;
  auto count = [&](const core::Status& s) {
    ++calls;
    if (absl::IsUnavailable(s)) ++unavailable;
    EXPECT_FALSE(s.ok()) << "an ok while Redis is down";
  };
  count(Add(*t1, {64, {1, 4}, 4}).status());  // never there: nothing to remove
  count(Remove(*t1, 62, {1, 2}).status());    // must not come back
  count(Lookup(*t2, {61, 62}).status());
  count(Add(*t2, {65, {2, 5}, 5}).status());
  EXPECT_EQ(unavailable, calls);
  // Each node still knows its own routes (a deliverer reaches them).
  EXPECT_EQ(Keys(t1->LocalRoutes({61, 62, 64})), (RouteKeys{{61, 1, 1, 1}}));
  EXPECT_EQ(Keys(t2->LocalRoutes({61, 65})), (RouteKeys{{61, 2, 1, 3}}));

  const int again_before = again.load();
  const auto restarted = Clock::now();
  ASSERT_TRUE(server.Start()) << server.error();
  const RouteKeys back{{61, 1, 1, 1}, {61, 2, 1, 3}, {66, 1, 6, 6}};
  EXPECT_TRUE(WaitUntil(
      [&] {
        return LookupKeys(*t2, {61, 62, 63, 64, 65, 66}) == back;
      },
      milliseconds(5000)))
      << "routes not registered again";
  const auto registered = Clock::now();
  EXPECT_TRUE(WaitUntil([&] { return again.load() > again_before; }))
      << "no cue after the routes were registered again";
  EXPECT_TRUE(WaitUntil([&] {  // its chunks may still be on their way
    auto many = Lookup(*t2, Range(1000, 1200));
    return many.ok() && many->size() == 1200u;
  }));
  EXPECT_TRUE(WaitUntil([&] { return p2->Get(61).online && !p2->Get(62).online; }));
  // 62 went while nobody could publish it: the reload tells its follower.
  EXPECT_TRUE(WaitUntil([&] { return heard.Of(62) == std::vector<bool>{true, false}; }));
  EXPECT_EQ(LookupKeys(*t1, {61, 62, 63, 64, 65, 66}), back);
  EXPECT_EQ(*Add(*t2, {61, {2, 9}, 9}), 3u) << "counts are right again";
  std::printf("[ measure ] redis restarted empty: routes back after %lld ms\n",
              static_cast<long long>(
                  std::chrono::duration_cast<milliseconds>(registered - restarted).count()));
}

TEST_F(RedisRoutesTest, LookupOfFiveThousandUsersIsOneBurst) {
  auto t1 = MakeTable(ClientOf(SharedRedis()), 1, prefix_);
  auto t2 = MakeTable(ClientOf(SharedRedis()), 2, prefix_);
  constexpr int64_t kUsers = 5000;
  // Added concurrently (pipelined), then looked up from the other node.
  ASSERT_TRUE(AddMany(*t1, 1, 1, kUsers));
  const std::vector<int64_t> users = Range(1, kUsers);
  std::vector<long long> micros;
  for (int i = 0; i < 7; ++i) {
    const auto start = Clock::now();
    auto routes = Lookup(*t2, users);
    micros.push_back(static_cast<long long>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count()));
    ASSERT_TRUE(routes.ok()) << routes.status();
    ASSERT_EQ(routes->size(), static_cast<size_t>(kUsers));
    for (const Route& r : *routes) {
      EXPECT_EQ(r.conn, (ConnId{1, static_cast<uint64_t>(r.user_id)}));
      EXPECT_EQ(r.session_id, r.user_id);
    }
  }
  std::sort(micros.begin(), micros.end());
  std::printf(
      "[ measure ] Lookup of %lld users (MGET + one HGETALL each, one burst): median %lld us, max "
      "%lld us\n",
      static_cast<long long>(kUsers), micros[micros.size() / 2], micros.back());
}

TEST_F(RedisRoutesTest, OpenRoutesMakesTheRedisEngine) {
  core::Config config;
  config.route.engine = "redis";
  config.route.redis_url = "http://nope";
  auto bad = OpenRoutes(config, mpim::route::LastSeenInStore(store_->users()), nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();

  // Redis not there yet: start-up does not wait, calls fail kUnavailable.
  config.route.redis_url = "redis://127.0.0.1:1";
  config.route.redis_timeout_ms = 200;
  const auto start = Clock::now();
  auto down = OpenRoutes(config, mpim::route::LastSeenInStore(store_->users()), nullptr);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_TRUE(absl::IsUnavailable(Add(*down->routes, {1, {1, 1}, 1}).status()));

  config.route.redis_url = SharedRedis().Url();
  config.route.redis_prefix = prefix_;
  config.server.node_id = 3;
  Recorder heard;
  auto parts = OpenRoutes(config, mpim::route::LastSeenInStore(store_->users()), heard.Listener());
  ASSERT_TRUE(parts.ok()) << parts.status();
  parts->presence->Subscribe({3, 1}, {71});
  ASSERT_TRUE(WaitUntil([&] {
    return Add(*parts->routes, {71, {3, 2}, 1}).ok();  // retried until connected
  }));
  EXPECT_TRUE(WaitUntil([&] { return heard.Of(71) == std::vector<bool>{true}; }));
  EXPECT_EQ(LookupKeys(*parts->routes, {71}), (RouteKeys{{71, 3, 2, 1}}));
  parts->routes.reset();  // either part may go first
  EXPECT_TRUE(parts->presence->Get(71).online);
}

}  // namespace
}  // namespace mpim::route::testing
