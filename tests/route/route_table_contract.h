// The route table's contract (route/route_table.h), as a suite any
// implementation instantiates: INSTANTIATE_TEST_SUITE_P(Name,
// RouteTableContract, testing::Values(RouteTableFactory{"name", make})).
// Calls are awaited through their callbacks with a deadline, so a remote
// implementation that answers from another thread passes the same tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "route/route_table.h"

namespace mpim::route::testing {

struct RouteTableFactory {
  std::string name;
  std::function<std::unique_ptr<RouteTable>()> make;
};

class RouteTableContract : public ::testing::TestWithParam<RouteTableFactory> {
 protected:
  void SetUp() override { table_ = GetParam().make(); }

  std::unique_ptr<RouteTable> table_;
};

}  // namespace mpim::route::testing
