#include "route/memory_route_table.h"

#include <gtest/gtest.h>

#include <thread>

namespace mpim::route {
namespace {

TEST(MemoryRouteTableTest, AddLookupRemove) {
  MemoryRouteTable t;
  EXPECT_FALSE(t.IsOnline(1001));
  EXPECT_EQ(t.Add(1001, {1, 10}), 1u);
  EXPECT_EQ(t.Add(1001, {2, 11}), 2u);
  EXPECT_EQ(t.Add(1002, {3, 12}), 1u);
  std::vector<Route> out;
  t.Lookup(1001, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].conn_id, 1u);
  EXPECT_EQ(out[1].session_id, 11);
  EXPECT_TRUE(t.IsOnline(1001));
  EXPECT_EQ(t.Remove(1001, 1), 1u);
  EXPECT_EQ(t.Remove(1001, 99), 1u);  // unknown conn: nothing changes
  EXPECT_EQ(t.Remove(1001, 2), 0u);
  EXPECT_FALSE(t.IsOnline(1001));
  EXPECT_EQ(t.Remove(1001, 2), 0u);
  out.clear();
  t.Lookup(1001, out);
  EXPECT_TRUE(out.empty());
}

TEST(MemoryRouteTableTest, ConcurrentAddRemove) {
  MemoryRouteTable t;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&t, i] {
      for (uint64_t c = 0; c < 10000; ++c) {
        int64_t user = static_cast<int64_t>(c % 100);
        uint64_t conn = c * 4 + static_cast<uint64_t>(i) + 1;
        t.Add(user, {conn, 1});
        t.Remove(user, conn);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int64_t u = 0; u < 100; ++u) EXPECT_FALSE(t.IsOnline(u));
}

}  // namespace
}  // namespace mpim::route
