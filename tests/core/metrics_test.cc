#include "core/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <latch>
#include <limits>
#include <string>
#include <thread>
#include <vector>

namespace mpim::core {
namespace {

TEST(MetricsTest, ExpositionMatchesGoldenText) {
  MetricsRegistry registry;
  // Registered out of order: the output is sorted by name.
  registry.Gauge("zeta_gauge", "Last family.").With({}).Set(-2.5);

  auto& requests =
      registry.Counter("mpim_http_requests_total", "HTTP requests.", {"method", "code"});
  requests.With({"POST", "500"}).Inc();
  requests.With({"GET", "200"}).Add(3);
  requests.With({"GET", "200"}).Inc();

  registry.Counter("alpha_total", "Help with \\ backslash\nand newline.");  // never touched: 0
  registry.Counter("empty_total", "A labelled family with no children is left out.", {"x"});

  registry.Gauge("escapes", "Label escaping.", {"path"}).With({"a\\b \"q\"\nz"}).Set(1.5);

  auto& specials = registry.Gauge("specials", "Special values.", {"kind"});
  specials.With({"inf"}).Set(std::numeric_limits<double>::infinity());
  specials.With({"ninf"}).Set(-std::numeric_limits<double>::infinity());
  specials.With({"nan"}).Set(std::numeric_limits<double>::quiet_NaN());
  specials.With({"big"}).Set(1e20);
  specials.With({"small"}).Set(0.001);

  auto& latency = registry.Histogram("mpim_latency_seconds", "Latency.", {"op"}, {0.25, 0.5, 1});
  Histogram& send = latency.With({"send"});
  for (double v : {0.125, 0.25, 0.75, 3.0}) send.Observe(v);  // 0.25 lands in le="0.25"
  latency.With({"ack"});                                      // a child with no observations

  registry.Histogram("size_bytes", "Sizes.", {}, {1024, 4096}).With({}).Observe(100);

  const std::string expected = R"(# HELP alpha_total Help with \\ backslash\nand newline.
# TYPE alpha_total counter
alpha_total 0
# HELP escapes Label escaping.
# TYPE escapes gauge
escapes{path="a\\b \"q\"\nz"} 1.5
# HELP mpim_http_requests_total HTTP requests.
# TYPE mpim_http_requests_total counter
mpim_http_requests_total{method="GET",code="200"} 4
mpim_http_requests_total{method="POST",code="500"} 1
# HELP mpim_latency_seconds Latency.
# TYPE mpim_latency_seconds histogram
mpim_latency_seconds_bucket{op="ack",le="0.25"} 0
mpim_latency_seconds_bucket{op="ack",le="0.5"} 0
mpim_latency_seconds_bucket{op="ack",le="1"} 0
mpim_latency_seconds_bucket{op="ack",le="+Inf"} 0
mpim_latency_seconds_sum{op="ack"} 0
mpim_latency_seconds_count{op="ack"} 0
mpim_latency_seconds_bucket{op="send",le="0.25"} 2
mpim_latency_seconds_bucket{op="send",le="0.5"} 2
mpim_latency_seconds_bucket{op="send",le="1"} 3
mpim_latency_seconds_bucket{op="send",le="+Inf"} 4
mpim_latency_seconds_sum{op="send"} 4.125
mpim_latency_seconds_count{op="send"} 4
# HELP size_bytes Sizes.
# TYPE size_bytes histogram
size_bytes_bucket{le="1024"} 1
size_bytes_bucket{le="4096"} 1
size_bytes_bucket{le="+Inf"} 1
size_bytes_sum 100
size_bytes_count 1
# HELP specials Special values.
# TYPE specials gauge
specials{kind="big"} 1e+20
specials{kind="inf"} +Inf
specials{kind="nan"} NaN
specials{kind="ninf"} -Inf
specials{kind="small"} 0.001
# HELP zeta_gauge Last family.
# TYPE zeta_gauge gauge
zeta_gauge -2.5
)";
  EXPECT_EQ(registry.Exposition(), expected);
}

TEST(MetricsTest, EmptyRegistryRendersNothing) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.Exposition(), "");
}

TEST(MetricsTest, WithReturnsStableReference) {
  MetricsRegistry registry;
  auto& family = registry.Counter("x_total", "x", {"a", "b"});
  Counter& first = family.With({"1", "2"});
  for (int i = 0; i < 1000; ++i) family.With({std::to_string(i), "z"});  // grow the map
  EXPECT_EQ(&family.With({"1", "2"}), &first);
  const std::vector<std::string> dynamic = {"1", "2"};
  EXPECT_EQ(&family.With(dynamic), &first);
  EXPECT_NE(&family.With({"2", "1"}), &first);
}

TEST(MetricsTest, SameRegistrationReturnsSameFamily) {
  MetricsRegistry registry;
  auto& a = registry.Counter("req_total", "help", {"code"});
  auto& b = registry.Counter("req_total", "other help", {"code"});
  EXPECT_EQ(&a, &b);
  auto& h1 = registry.Histogram("h", "h", {}, {1, 2});
  auto& h2 = registry.Histogram("h", "h", {}, {1, 2, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(&h1, &h2);
  EXPECT_EQ(h1.bounds(), (std::vector<double>{1, 2}));
}

TEST(MetricsTest, CounterIgnoresNegativeAndNaN) {
  Counter c;
  c.Inc();
  c.Add(2.5);
  c.Add(-1);
  c.Add(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.Value(), 3.5);
}

TEST(MetricsTest, GaugeMovesBothWays) {
  Gauge g;
  g.Inc();
  g.Inc();
  g.Dec();
  g.Add(10);
  g.Sub(0.5);
  EXPECT_EQ(g.Value(), 10.5);
  g.Set(-3);
  EXPECT_EQ(g.Value(), -3);
}

TEST(MetricsTest, HistogramBucketsAreUpperInclusiveAndNaNGoesToInf) {
  Histogram h({1, 2});
  h.Observe(1);    // le=1
  h.Observe(1.5);  // le=2
  h.Observe(-5);   // le=1
  h.Observe(std::numeric_limits<double>::quiet_NaN());
  h.Observe(99);
  const Histogram::Snapshot s = h.Collect();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 5}));
  EXPECT_EQ(s.count, 5u);
  EXPECT_TRUE(std::isnan(s.sum));
}

TEST(MetricsTest, BucketHelpers) {
  EXPECT_EQ(ExponentialBuckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  const std::vector<double> d = DefaultLatencyBuckets();
  ASSERT_FALSE(d.empty());
  EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
  EXPECT_LE(d.front(), 0.001);
  EXPECT_GE(d.back(), 5);
}

TEST(MetricsTest, CollectorsRunAtEveryScrape) {
  MetricsRegistry registry;
  Gauge& scrapes = registry.Gauge("scrapes", "Times scraped.").With({});
  registry.AddCollector([&scrapes] { scrapes.Inc(); });
  EXPECT_NE(registry.Exposition().find("\nscrapes 1\n"), std::string::npos);
  EXPECT_NE(registry.Exposition().find("\nscrapes 2\n"), std::string::npos);
}

TEST(MetricsTest, CollectorMayRegisterFamilies) {
  MetricsRegistry registry;
  registry.AddCollector(
      [&registry] { registry.Gauge("late", "Registered at scrape.").With({}).Set(7); });
  EXPECT_NE(registry.Exposition().find("\nlate 7\n"), std::string::npos);
}

TEST(MetricsTest, DefaultRegistryIsOneInstance) {
  EXPECT_EQ(&DefaultRegistry(), &DefaultRegistry());
}

TEST(MetricsDeathTest, ProgrammingErrorsAbort) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  MetricsRegistry registry;
  auto& family = registry.Counter("ok_total", "ok", {"a"});
  EXPECT_DEATH(family.With({"1", "2"}), "ok_total: With\\(\\) got 2 label values for 1");
  EXPECT_DEATH(registry.Counter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(registry.Counter("x_total", "x", {"__reserved"}), "invalid label name");
  EXPECT_DEATH(registry.Counter("x_total", "x", {"a", "a"}), "duplicate label name");
  EXPECT_DEATH(registry.Histogram("h", "x", {"le"}), "le");
  EXPECT_DEATH(registry.Histogram("h", "x", {}, {2, 1}), "strictly increasing");
  EXPECT_DEATH(registry.Gauge("ok_total", "ok", {"a"}), "registered again");
  EXPECT_DEATH(registry.Counter("ok_total", "ok", {"b"}), "registered again");
}

TEST(MetricsTest, ConcurrentUpdatesAreNotLost) {
  MetricsRegistry registry;
  auto& counters = registry.Counter("c_total", "c", {"worker"});
  Counter& shared = registry.Counter("shared_total", "s").With({});
  Gauge& gauge = registry.Gauge("g", "g").With({});
  Histogram& hist = registry.Histogram("h_seconds", "h", {}, {0.5}).With({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 250'000;

  std::latch start(kThreads + 1);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Counter& mine = counters.With({std::to_string(t)});
      start.arrive_and_wait();
      for (int i = 0; i < kPerThread; ++i) {
        shared.Inc();
        shared.Add(0.5);
        mine.Inc();
        gauge.Add(1);
        hist.Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  start.arrive_and_wait();
  // Scrape while the workers run; every scrape must be well formed.
  for (int i = 0; i < 20; ++i) {
    const std::string text = registry.Exposition();
    ASSERT_NE(text.find("# TYPE h_seconds histogram"), std::string::npos);
  }
  for (auto& t : threads) t.join();

  constexpr double kTotal = static_cast<double>(kThreads) * kPerThread;
  EXPECT_EQ(shared.Value(), kTotal * 1.5);
  EXPECT_EQ(gauge.Value(), kTotal);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(counters.With({std::to_string(t)}).Value(), kPerThread);
  }
  const Histogram::Snapshot s = hist.Collect();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kTotal));
  EXPECT_EQ(s.cumulative[0], static_cast<uint64_t>(kTotal / 2));
  EXPECT_EQ(s.sum, kTotal / 2 * 0.25 + kTotal / 2 * 1.0);
}

}  // namespace
}  // namespace mpim::core
