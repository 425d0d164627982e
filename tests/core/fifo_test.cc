#include "core/fifo.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>

namespace mpim::core {
namespace {

TEST(FifoTest, BehavesLikeADeque) {
  Fifo<int> f;
  std::deque<int> d;
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    if (rng() % 3 != 0 || d.empty()) {
      f.push_back(i);
      d.push_back(i);
    } else {
      ASSERT_EQ(f.front(), d.front());
      f.pop_front();
      d.pop_front();
    }
    ASSERT_EQ(f.size(), d.size());
    ASSERT_EQ(f.empty(), d.empty());
  }
  std::vector<int> rest(f.begin(), f.end());
  EXPECT_EQ(rest, std::vector<int>(d.begin(), d.end()));
}

TEST(FifoTest, PopReleasesTheElementAtOnce) {
  Fifo<std::shared_ptr<int>> f;
  auto p = std::make_shared<int>(1);
  f.push_back(p);
  f.push_back(std::make_shared<int>(2));
  EXPECT_EQ(p.use_count(), 2);
  f.pop_front();
  EXPECT_EQ(p.use_count(), 1);
  f.clear();
  EXPECT_TRUE(f.empty());
}

}  // namespace
}  // namespace mpim::core
