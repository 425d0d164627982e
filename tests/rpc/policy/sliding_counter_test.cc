#include "rpc/policy/sliding_counter.h"

#include <gtest/gtest.h>

namespace mpim::rpc::policy {
namespace {

TEST(SlidingCounterTest, CountsWithinTheWindowAndForgetsOldSlices) {
  SlidingCounter counter(/*window_ms=*/1000, /*buckets=*/10);  // 100 ms slices
  counter.Add(0, 3);
  counter.Add(150, 2);
  EXPECT_EQ(counter.Sum(150), 5);
  // Slice 0 ([0, 100)) is still in the window at 999 (slices 0..9)...
  EXPECT_EQ(counter.Sum(999), 5);
  // ...and gone at 1000 (slices 1..10); slice 1 goes at 1100.
  EXPECT_EQ(counter.Sum(1000), 2);
  EXPECT_EQ(counter.Sum(1099), 2);
  EXPECT_EQ(counter.Sum(1100), 0);
}

TEST(SlidingCounterTest, ASlotReusedForANewSliceStartsFromZero) {
  SlidingCounter counter(1000, 10);
  counter.Add(50, 7);    // slice 0, slot 0
  counter.Add(1050, 1);  // slice 10, slot 0 again
  EXPECT_EQ(counter.Sum(1050), 1);
}

TEST(SlidingCounterTest, EarlierTimesCountIntoTheNewestSlice) {
  SlidingCounter counter(1000, 10);
  counter.Add(5000, 1);
  counter.Add(100, 1);  // a time before the newest: counted as now
  EXPECT_EQ(counter.Sum(5000), 2);
  EXPECT_EQ(counter.Sum(5999), 2);
  EXPECT_EQ(counter.Sum(6000), 0);
}

TEST(SlidingCounterTest, ResetForgetsEverything) {
  SlidingCounter counter(1000, 10);
  counter.Add(10, 4);
  counter.Reset();
  EXPECT_EQ(counter.Sum(10), 0);
  counter.Add(20, 1);
  EXPECT_EQ(counter.Sum(20), 1);
}

TEST(SlidingCounterTest, ReshapeStartsEmptyOnlyWhenTheShapeChanges) {
  SlidingCounter counter(1000, 10);
  counter.Add(10, 4);
  counter.Reshape(1000, 10);
  EXPECT_EQ(counter.Sum(10), 4);
  counter.Reshape(2000, 4);  // 500 ms slices
  EXPECT_EQ(counter.window_ms(), 2000);
  EXPECT_EQ(counter.buckets(), 4);
  EXPECT_EQ(counter.Sum(10), 0);
  counter.Add(10, 1);
  EXPECT_EQ(counter.Sum(1999), 1);
  EXPECT_EQ(counter.Sum(2000), 0);
}

}  // namespace
}  // namespace mpim::rpc::policy
