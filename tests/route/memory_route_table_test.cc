// The route table contract (route_table_contract.cc) on the memory table,
// and what this implementation adds: every answer comes inline.
#include "route/memory_route_table.h"

#include "route/route_table_contract.h"

namespace mpim::route::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, RouteTableContract,
                         ::testing::Values(RouteTableFactory{
                             "memory", [] { return std::make_unique<MemoryRouteTable>(); }}),
                         [](const auto& info) { return info.param.name; });

TEST(MemoryRouteTableTest, AnswersInline) {
  MemoryRouteTable t;
  bool answered = false;
  t.Add({1, {1, 1}, 1}, [&](core::StatusOr<size_t> n) {
    answered = true;
    EXPECT_EQ(*n, 1u);
  });
  EXPECT_TRUE(answered);
}

}  // namespace
}  // namespace mpim::route::testing
