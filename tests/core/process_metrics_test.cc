#include "core/process_metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <time.h>
#include <unistd.h>

#include <string>

#include "core/clock.h"
#include "core/metrics.h"

namespace mpim::core {
namespace {

// Two clock ticks at the usual 100 Hz: what /proc's tick granularity may
// put a reading off by, either way.
constexpr double kTickSlackSeconds = 0.02;

// CPU time this process has used, by the kernel's precise process clock.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

TEST(ProcessMetricsTest, ParseProcStatHandlesOddCommandNames) {
  // Fields 3..24 after a comm holding spaces and parentheses.
  const std::string text =
      "1234 (we (ird) ) name) S 4 5 6 7 8 9 10 11 12 13 111 222 16 17 18 19 20 21 333 4444 "
      "55 25 26\n";
  StatusOr<ProcStat> stat = ParseProcStat(text);
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->utime_ticks, 111u);
  EXPECT_EQ(stat->stime_ticks, 222u);
  EXPECT_EQ(stat->starttime_ticks, 333u);
  EXPECT_EQ(stat->vsize_bytes, 4444u);
  EXPECT_EQ(stat->rss_pages, 55u);
}

TEST(ProcessMetricsTest, ParseProcStatRejectsMalformedInput) {
  EXPECT_EQ(ParseProcStat("").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseProcStat("1 (x) S 1 2 3").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseProcStat("1 (x) S 4 5 6 7 8 9 10 11 12 13 x1 222 16 17 18 19 20 21 333 4444 55")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ProcessMetricsTest, ValuesArePlausible) {
  const double cpu_before = ProcessCpuSeconds();
  StatusOr<ProcessStats> s = ReadProcessStats();
  const double cpu_after = ProcessCpuSeconds();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->resident_memory_bytes, 0);
  EXPECT_GE(s->virtual_memory_bytes, s->resident_memory_bytes);
  EXPECT_GE(s->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(s->max_fds, s->open_fds);
  // The CPU time the kernel reports agrees with the process clock, to the
  // kernel's tick (/proc counts in clock ticks).
  EXPECT_GE(s->cpu_seconds, cpu_before - kTickSlackSeconds);
  EXPECT_LE(s->cpu_seconds, cpu_after + kTickSlackSeconds);
  const double now_s = static_cast<double>(SystemClock().NowMs()) / 1000;
  EXPECT_LE(s->start_time_seconds, now_s + 1);
  EXPECT_GT(s->start_time_seconds, now_s - 3600);  // this test process started recently
}

TEST(ProcessMetricsTest, OpenFdsCountsANewDescriptor) {
  StatusOr<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok());
  const int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  StatusOr<ProcessStats> during = ReadProcessStats();
  close(fd);
  ASSERT_TRUE(during.ok());
  EXPECT_EQ(during->open_fds, before->open_fds + 1);
}

TEST(ProcessMetricsTest, CpuSecondsGrowByTheCpuTimeBurned) {
  // Burns a measured amount of CPU (by the process CPU clock, independent
  // of /proc) and requires the counter to have grown by about as much:
  // a reading that is stuck or scaled wrongly (ticks as seconds, or ms)
  // fails.
  constexpr double kBurnSeconds = 0.3;
  StatusOr<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok()) << before.status();
  const double cpu_start = ProcessCpuSeconds();
  const int64_t deadline = SystemClock().SteadyMs() + 20'000;
  volatile double sink = 0;
  while (ProcessCpuSeconds() - cpu_start < kBurnSeconds) {
    ASSERT_LT(SystemClock().SteadyMs(), deadline)
        << "could not burn " << kBurnSeconds << " s of CPU within 20 s";
    for (int i = 0; i < 100'000; ++i) sink = sink + i * 0.5;
  }
  StatusOr<ProcessStats> after = ReadProcessStats();
  ASSERT_TRUE(after.ok()) << after.status();
  const double burned = ProcessCpuSeconds() - cpu_start;
  const double counted = after->cpu_seconds - before->cpu_seconds;
  EXPECT_GE(counted, 0.5 * burned) << "burned " << burned << " s";
  EXPECT_LE(counted, burned + kTickSlackSeconds) << "burned " << burned << " s";
}

TEST(ProcessMetricsTest, RegistersStandardNamesWithValuesAtScrape) {
  MetricsRegistry registry;
  RegisterProcessMetrics(registry);
  const std::string text = registry.Exposition();
  for (const char* line :
       {"# TYPE process_resident_memory_bytes gauge", "# TYPE process_virtual_memory_bytes gauge",
        "# TYPE process_open_fds gauge", "# TYPE process_max_fds gauge",
        "# TYPE process_cpu_seconds_total counter", "# TYPE process_start_time_seconds gauge"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
  const size_t at = text.find("\nprocess_resident_memory_bytes ");
  ASSERT_NE(at, std::string::npos);
  const double rss = std::stod(text.substr(at + 31));
  EXPECT_GT(rss, 0);
  EXPECT_EQ(text.find("\nprocess_open_fds 0\n"), std::string::npos);
}

}  // namespace
}  // namespace mpim::core
