#include "route/route_table_contract.h"

#include <algorithm>
#include <atomic>
#include <future>
#include <set>
#include <thread>

namespace mpim::route::testing {
namespace {

constexpr auto kDeadline = std::chrono::seconds(5);

// Runs `call` with a callback and waits (with a deadline) for its answer.
template <typename T, typename Call>
core::StatusOr<T> Await(Call call) {
  auto promise = std::make_shared<std::promise<core::StatusOr<T>>>();
  auto future = promise->get_future();
  call([promise](core::StatusOr<T> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(kDeadline) != std::future_status::ready) {
    return absl::DeadlineExceededError("no answer within 5 s");
  }
  return future.get();
}

}  // namespace

core::StatusOr<size_t> Add(RouteTable& t, const Route& r) {
  return Await<size_t>([&](auto cb) { t.Add(r, std::move(cb)); });
}
core::StatusOr<size_t> Remove(RouteTable& t, int64_t user, ConnId conn) {
  return Await<size_t>([&](auto cb) { t.Remove(user, conn, std::move(cb)); });
}
core::StatusOr<std::vector<Route>> Lookup(RouteTable& t, std::vector<int64_t> users) {
  return Await<std::vector<Route>>([&](auto cb) { t.Lookup(std::move(users), std::move(cb)); });
}

core::StatusOr<int64_t> CountConnections(RouteTable& t) {
  return Await<int64_t>([&](auto cb) { t.CountConnections(std::move(cb)); });
}

RouteKeys Keys(const std::vector<Route>& routes) {
  RouteKeys out;
  for (const Route& r : routes) out.emplace(r.user_id, r.conn.node, r.conn.local, r.session_id);
  return out;
}

namespace {

TEST_P(RouteTableContract, CountsConnectionsAcrossNodes) {
  EXPECT_EQ(*Add(*table_, {1001, {1, 10}, 500}), 1u);  // came online
  EXPECT_EQ(*Add(*table_, {1001, {2, 10}, 501}), 2u);  // same local id, another node
  EXPECT_EQ(*Add(*table_, {1002, {1, 11}, 502}), 1u);
  EXPECT_EQ(*Remove(*table_, 1001, {1, 10}), 1u);
  EXPECT_EQ(*Remove(*table_, 1001, {1, 10}), 1u) << "removing twice changes nothing";
  EXPECT_EQ(*Remove(*table_, 1001, {3, 10}), 1u) << "an unknown connection changes nothing";
  EXPECT_EQ(*Remove(*table_, 1001, {2, 10}), 0u);  // went offline
  EXPECT_EQ(*Remove(*table_, 1001, {2, 10}), 0u);
  EXPECT_EQ(*Remove(*table_, 4242, {1, 99}), 0u);
}

TEST_P(RouteTableContract, CountConnectionsCountsEveryLiveRoute) {
  EXPECT_EQ(*CountConnections(*table_), 0);
  ASSERT_TRUE(Add(*table_, {1001, {1, 10}, 500}).ok());
  ASSERT_TRUE(Add(*table_, {1001, {2, 10}, 501}).ok());
  ASSERT_TRUE(Add(*table_, {1002, {1, 11}, 502}).ok());
  EXPECT_EQ(*CountConnections(*table_), 3);
  ASSERT_TRUE(Remove(*table_, 1001, {1, 10}).ok());
  EXPECT_EQ(*CountConnections(*table_), 2);
}

TEST_P(RouteTableContract, LookupIsABatchOverUsers) {
  ASSERT_TRUE(Add(*table_, {1001, {1, 10}, 500}).ok());
  ASSERT_TRUE(Add(*table_, {1001, {2, 20}, 501}).ok());
  ASSERT_TRUE(Add(*table_, {1002, {1, 11}, 502}).ok());
  ASSERT_TRUE(Add(*table_, {1003, {2, 21}, 503}).ok());
  auto routes = Lookup(*table_, {1001, 1002, 9999});
  ASSERT_TRUE(routes.ok()) << routes.status();
  EXPECT_EQ(Keys(*routes), (std::set<std::tuple<int64_t, uint32_t, uint64_t, int64_t>>{
                               {1001, 1, 10, 500}, {1001, 2, 20, 501}, {1002, 1, 11, 502}}));
  auto none = Lookup(*table_, {});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(Remove(*table_, 1001, {2, 20}).ok());
  EXPECT_EQ(Keys(*Lookup(*table_, {1001})),
            (std::set<std::tuple<int64_t, uint32_t, uint64_t, int64_t>>{{1001, 1, 10, 500}}));
}

TEST_P(RouteTableContract, LocalRoutesAnswerFromMemoryWhatThisTableAdded) {
  ASSERT_TRUE(Add(*table_, {1001, {1, 10}, 500}).ok());
  ASSERT_TRUE(Add(*table_, {1001, {1, 12}, 501}).ok());
  ASSERT_TRUE(Add(*table_, {1002, {1, 11}, 502}).ok());
  using Set = std::set<std::tuple<int64_t, uint32_t, uint64_t, int64_t>>;
  EXPECT_EQ(Keys(table_->LocalRoutes({1001, 9999})), (Set{{1001, 1, 10, 500}, {1001, 1, 12, 501}}));
  ASSERT_TRUE(Remove(*table_, 1001, {1, 10}).ok());
  EXPECT_EQ(Keys(table_->LocalRoutes({1001, 1002})), (Set{{1001, 1, 12, 501}, {1002, 1, 11, 502}}));
  EXPECT_TRUE(table_->LocalRoutes({}).empty());
}

TEST_P(RouteTableContract, FiveThousandUsersInOneLookup) {
  for (int64_t u = 1; u <= 5000; ++u) {
    ASSERT_TRUE(
        Add(*table_, {u, {static_cast<uint32_t>(u % 3), static_cast<uint64_t>(u)}, u}).ok());
  }
  std::vector<int64_t> users;
  for (int64_t u = 1; u <= 5000; u += 2) users.push_back(u);
  auto routes = Lookup(*table_, users);
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), users.size());
  for (const Route& r : *routes) EXPECT_EQ(r.user_id % 2, 1);
}

TEST_P(RouteTableContract, ConcurrentAddRemoveLeavesNothing) {
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (uint32_t node = 1; node <= 4; ++node) {
    threads.emplace_back([this, node, &failures] {
      for (uint64_t c = 1; c <= 2000; ++c) {
        int64_t user = static_cast<int64_t>(c % 50);
        if (!Add(*table_, {user, {node, c}, 1}).ok()) ++failures;
        if (!Remove(*table_, user, {node, c}).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<int64_t> users;
  for (int64_t u = 0; u < 50; ++u) users.push_back(u);
  EXPECT_TRUE(Lookup(*table_, users)->empty());
}

}  // namespace
}  // namespace mpim::route::testing
