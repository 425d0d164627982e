#include "core/snowflake.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <latch>
#include <thread>
#include <vector>

#include "core/clock.h"

namespace mpim::core {
namespace {

// 2025-03-01T12:00:00Z, some time after the epoch.
constexpr int64_t kT = 1'740'830'400'000;

std::unique_ptr<SnowflakeGenerator> MakeGenerator(int node, Clock& clock) {
  auto gen = SnowflakeGenerator::Create(node, clock);
  EXPECT_TRUE(gen.ok()) << gen.status();
  return std::move(gen).value();
}

TEST(SnowflakeTest, EpochIs2024UtcMidnight) {
  namespace chr = std::chrono;
  const auto epoch = chr::sys_days{chr::year{2024} / chr::January / 1};
  EXPECT_EQ(kSnowflakeEpochMs,
            chr::duration_cast<chr::milliseconds>(epoch.time_since_epoch()).count());
}

TEST(SnowflakeTest, NodeIdValidation) {
  ManualClock clock(kT);
  for (int bad : {-1, 1024, 5000}) {
    auto gen = SnowflakeGenerator::Create(bad, clock);
    ASSERT_FALSE(gen.ok()) << bad;
    EXPECT_EQ(gen.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(gen.status().message().find(std::to_string(bad)), absl::string_view::npos);
  }
  for (int good : {0, 1, 1023}) {
    auto gen = SnowflakeGenerator::Create(good, clock);
    ASSERT_TRUE(gen.ok()) << good;
    EXPECT_EQ((*gen)->node_id(), good);
  }
}

TEST(SnowflakeTest, DecodeRoundTrip) {
  ManualClock clock(kT);
  auto gen = MakeGenerator(777, clock);
  const int64_t a = gen->Next();
  const int64_t b = gen->Next();
  EXPECT_EQ(DecodeSnowflake(a), (SnowflakeParts{kT, 777, 0}));
  EXPECT_EQ(DecodeSnowflake(b), (SnowflakeParts{kT, 777, 1}));
  EXPECT_EQ(EncodeSnowflake(DecodeSnowflake(a)), a);
  EXPECT_EQ(a >> 22, kT - kSnowflakeEpochMs);

  // The largest fields still give a non-negative id and decode back.
  const SnowflakeParts max{kSnowflakeEpochMs + (int64_t{1} << 41) - 1, 1023, 4095};
  const int64_t id = EncodeSnowflake(max);
  EXPECT_GT(id, 0);
  EXPECT_EQ(id, INT64_MAX);
  EXPECT_EQ(DecodeSnowflake(id), max);
}

TEST(SnowflakeTest, UsesWallClockWhenItMovesForward) {
  ManualClock clock(kT);
  auto gen = MakeGenerator(3, clock);
  gen->Next();
  gen->Next();
  clock.AdvanceMs(10);
  EXPECT_EQ(DecodeSnowflake(gen->Next()), (SnowflakeParts{kT + 10, 3, 0}));
}

TEST(SnowflakeTest, IncreasingAcrossClockStepBack) {
  ManualClock clock(kT);
  auto gen = MakeGenerator(5, clock);
  int64_t last = gen->Next();
  for (int i = 0; i < 10; ++i) {
    clock.AdvanceMs(1);
    const int64_t id = gen->Next();
    ASSERT_GT(id, last);
    last = id;
  }
  const int64_t high_ms = DecodeSnowflake(last).unix_ms;  // kT + 10

  clock.SetNowMs(kT - 5'000);  // NTP steps the clock back 5 s
  for (int i = 0; i < 10'000; ++i) {
    if (i % 100 == 0) clock.AdvanceMs(1);
    const int64_t id = gen->Next();
    ASSERT_GT(id, last) << i;
    // The logical clock continues from the last timestamp, never below it.
    ASSERT_GE(DecodeSnowflake(id).unix_ms, high_ms);
    last = id;
  }

  // Once the wall clock passes the logical clock, ids follow it again.
  clock.SetNowMs(kT + 60'000);
  const int64_t id = gen->Next();
  EXPECT_GT(id, last);
  EXPECT_EQ(DecodeSnowflake(id), (SnowflakeParts{kT + 60'000, 5, 0}));
}

TEST(SnowflakeTest, SequenceOverflowMovesToNextMillisecond) {
  ManualClock clock(kT);
  auto gen = MakeGenerator(9, clock);
  int64_t last = -1;
  for (int seq = 0; seq <= kSnowflakeMaxSequence; ++seq) {
    const int64_t id = gen->Next();
    ASSERT_EQ(DecodeSnowflake(id), (SnowflakeParts{kT, 9, seq}));
    ASSERT_GT(id, last);
    last = id;
  }
  // The 4097th id in the same wall-clock millisecond borrows the next one.
  const int64_t overflow = gen->Next();
  EXPECT_GT(overflow, last);
  EXPECT_EQ(DecodeSnowflake(overflow), (SnowflakeParts{kT + 1, 9, 0}));
  // When the wall clock reaches that millisecond, the sequence continues.
  clock.AdvanceMs(1);
  EXPECT_EQ(DecodeSnowflake(gen->Next()), (SnowflakeParts{kT + 1, 9, 1}));
}

TEST(SnowflakeTest, ClockBeforeEpochCountsAsEpoch) {
  ManualClock clock(0);  // 1970
  auto gen = MakeGenerator(1, clock);
  EXPECT_EQ(DecodeSnowflake(gen->Next()), (SnowflakeParts{kSnowflakeEpochMs, 1, 0}));
  EXPECT_EQ(DecodeSnowflake(gen->Next()), (SnowflakeParts{kSnowflakeEpochMs, 1, 1}));
}

TEST(SnowflakeDeathTest, TimestampOverflowAbortsInsteadOfWrapping) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ManualClock clock(kSnowflakeEpochMs + (int64_t{1} << 41) - 1);  // the last millisecond
  auto gen = MakeGenerator(1, clock);
  EXPECT_GT(gen->Next(), 0);
  clock.AdvanceMs(1);
  EXPECT_DEATH(gen->Next(), "overflows 41 bits");
}

// Runs `threads` threads taking `per_thread` ids each from `gen` and checks
// every thread's ids strictly increase and all ids are distinct.
void CheckConcurrentIds(SnowflakeGenerator& gen, int threads, int per_thread) {
  std::vector<std::vector<int64_t>> ids(threads);
  std::latch start(threads);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<int64_t>& mine = ids[t];
      mine.reserve(per_thread);
      start.arrive_and_wait();
      for (int i = 0; i < per_thread; ++i) mine.push_back(gen.Next());
    });
  }
  for (auto& w : workers) w.join();

  std::vector<int64_t> all;
  all.reserve(static_cast<size_t>(threads) * per_thread);
  for (int t = 0; t < threads; ++t) {
    ASSERT_EQ(ids[t].size(), static_cast<size_t>(per_thread));
    for (size_t i = 1; i < ids[t].size(); ++i) {
      ASSERT_LT(ids[t][i - 1], ids[t][i]) << "thread " << t << " index " << i;
    }
    EXPECT_EQ(DecodeSnowflake(ids[t].front()).node_id, gen.node_id());
    all.insert(all.end(), ids[t].begin(), ids[t].end());
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "duplicate id";
}

TEST(SnowflakeTest, FourThreadsMillionIdsEachUniqueAndPerThreadIncreasing) {
  auto gen = MakeGenerator(42, SystemClock());
  CheckConcurrentIds(*gen, 4, 1'000'000);
}

TEST(SnowflakeTest, ConcurrentIdsWhileClockJumpsAround) {
  ManualClock clock(kT);
  auto gen = MakeGenerator(7, clock);
  std::atomic<bool> done{false};
  std::thread jitter([&] {
    for (int64_t i = 0; !done.load(std::memory_order_relaxed); ++i) {
      clock.SetNowMs(kT + (i % 7 == 0 ? -3'000 : i % 50));  // forwards and back
    }
  });
  CheckConcurrentIds(*gen, 3, 200'000);
  done = true;
  jitter.join();
}

}  // namespace
}  // namespace mpim::core
