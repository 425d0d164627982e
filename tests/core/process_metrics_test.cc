#include "core/process_metrics.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "core/clock.h"
#include "core/metrics.h"

namespace mpim::core {
namespace {

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
  StatusOr<ProcessStats> s = ReadProcessStats();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GT(s->resident_memory_bytes, 0);
  EXPECT_GE(s->virtual_memory_bytes, s->resident_memory_bytes);
  EXPECT_GE(s->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GE(s->max_fds, s->open_fds);
  EXPECT_GE(s->cpu_seconds, 0);
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

TEST(ProcessMetricsTest, CpuSecondsGrowWithWork) {
  StatusOr<ProcessStats> before = ReadProcessStats();
  ASSERT_TRUE(before.ok());
  const int64_t deadline = SystemClock().SteadyMs() + 10'000;
  volatile double sink = 0;
  double cpu = before->cpu_seconds;
  while (cpu <= before->cpu_seconds && SystemClock().SteadyMs() < deadline) {
    for (int i = 0; i < 1'000'000; ++i) sink = sink + i * 0.5;
    StatusOr<ProcessStats> now = ReadProcessStats();
    ASSERT_TRUE(now.ok());
    cpu = now->cpu_seconds;
  }
  EXPECT_GT(cpu, before->cpu_seconds);
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
