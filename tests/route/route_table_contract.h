// The route table's contract (route/route_table.h), as a suite any
// implementation instantiates: INSTANTIATE_TEST_SUITE_P(Name,
// RouteTableContract, testing::Values(RouteTableFactory{"name", make})).
// Calls are awaited through their callbacks with a deadline, so a remote
// implementation that answers from another thread passes the same tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "route/route_table.h"

namespace mpim::route::testing {

struct RouteTableFactory {
  std::string name;
  std::function<std::unique_ptr<RouteTable>()> make;
};

// Each call awaited through its callback (a 5 s deadline: then
// kDeadlineExceeded), for suites of any implementation.
core::StatusOr<size_t> Add(RouteTable& t, const Route& r);
core::StatusOr<size_t> Remove(RouteTable& t, int64_t user, ConnId conn);
core::StatusOr<std::vector<Route>> Lookup(RouteTable& t, std::vector<int64_t> users);
core::StatusOr<int64_t> CountConnections(RouteTable& t);

// (user, node, local, session) of each route, sorted: implementations
// answer in any order.
using RouteKeys = std::set<std::tuple<int64_t, uint32_t, uint64_t, int64_t>>;
RouteKeys Keys(const std::vector<Route>& routes);

class RouteTableContract : public ::testing::TestWithParam<RouteTableFactory> {
 protected:
  void SetUp() override { table_ = GetParam().make(); }

  std::unique_ptr<RouteTable> table_;
};

}  // namespace mpim::route::testing
