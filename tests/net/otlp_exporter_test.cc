// The OTLP/HTTP exporter (net/otlp_exporter.h) against a local collector
// (support/otlp_receiver.h): batches reach it as valid OTLP JSON; a full
// queue drops and counts rather than grows or blocks; a collector that is
// down costs the spans, counted.
#include "net/otlp_exporter.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <thread>

#include "core/ports.h"
#include "support/otlp_receiver.h"

namespace mpim::net {
namespace {

using core::trace::SpanContext;
using core::trace::SpanData;

SpanData Span(int i) {
  SpanData s;
  s.name = "span " + std::to_string(i);
  s.kind = core::trace::SpanKind::kServer;
  s.context = *SpanContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333" +
                                  std::to_string(i % 10) + "-01");
  s.parent_span_id = {1, 2, 3, 4, 5, 6, 7, 8};
  s.start_unix_ns = 1700000000000000000 + i;
  s.end_unix_ns = s.start_unix_ns + 1000;
  s.attributes = {
      {"mpim.seq", int64_t{i}}, {"ok", true}, {"text", std::string("a\"b")}, {"ratio", 0.5}};
  if (i % 2) {
    s.error = true;
    s.status_message = "failed";
  }
  return s;
}

TEST(OtlpJsonTest, FollowsTheOtlpJsonMapping) {
  std::string body = EncodeOtlpJson({Span(1)}, {{"service.name", std::string("mpim")}});
  auto v = boost::json::parse(body).as_object();
  auto& rs = v.at("resourceSpans").as_array().at(0).as_object();
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue"), "mpim");
  auto& span = rs.at("scopeSpans").at(0).at("spans").at(0).as_object();
  EXPECT_EQ(span.at("traceId"), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(span.at("spanId"), "b7ad6b7169203331");
  EXPECT_EQ(span.at("parentSpanId"), "0102030405060708");
  EXPECT_EQ(span.at("kind"), 2);
  EXPECT_EQ(span.at("startTimeUnixNano"), "1700000000000000001");  // 64-bit: a string
  EXPECT_EQ(span.at("attributes").at(0).at("value").at("intValue"), "1");
  EXPECT_EQ(span.at("attributes").at(1).at("value").at("boolValue"), true);
  EXPECT_EQ(span.at("attributes").at(2).at("value").at("stringValue"), "a\"b");
  EXPECT_EQ(span.at("attributes").at(3).at("value").at("doubleValue"), 0.5);
  EXPECT_EQ(span.at("status").at("code"), 2);
  // A root has no parentSpanId.
  SpanData root = Span(2);
  root.parent_span_id = {};
  auto r = boost::json::parse(EncodeOtlpJson({root}, {})).as_object();
  EXPECT_FALSE(r.at("resourceSpans")
                   .at(0)
                   .at("scopeSpans")
                   .at(0)
                   .at("spans")
                   .at(0)
                   .as_object()
                   .contains("parentSpanId"));
}

TEST(OtlpExporterTest, BatchesReachTheCollector) {
  testing::OtlpReceiver collector;
  auto exporter = OtlpExporter::Make(OtlpOptions{.endpoint = collector.endpoint(),
                                                 .batch_max = 7,
                                                 .interval_ms = 20,
                                                 .resource = {{"mpim.role", std::string("t")}}});
  ASSERT_TRUE(exporter.ok()) << exporter.status();
  for (int i = 0; i < 50; ++i) (*exporter)->Export(Span(i));
  ASSERT_TRUE(collector.WaitFor([](const auto& spans) { return spans.size() == 50; }));
  EXPECT_GE(collector.requests(), 50u / 7);
  EXPECT_EQ(collector.bad_requests(), 0u);
  EXPECT_EQ(collector.Spans()[0].Role(), "t");
  (*exporter)->Shutdown();
  EXPECT_EQ((*exporter)->exported(), 50);
  EXPECT_EQ((*exporter)->dropped(), 0);
  (*exporter)->Export(Span(0));  // after Shutdown: dropped, counted
  EXPECT_EQ((*exporter)->dropped(), 1);
}

TEST(OtlpExporterTest, AFullQueueDropsAndCountsInsteadOfGrowing) {
  testing::OtlpReceiver collector;
  auto exporter = OtlpExporter::Make(OtlpOptions{
      .endpoint = collector.endpoint(), .queue_max = 10, .batch_max = 1000, .interval_ms = 600000});
  ASSERT_TRUE(exporter.ok());
  for (int i = 0; i < 100; ++i) (*exporter)->Export(Span(i));
  EXPECT_EQ((*exporter)->dropped(), 90);
  (*exporter)->Shutdown();  // sends the ten it kept
  EXPECT_EQ(collector.Spans().size(), 10u);
}

TEST(OtlpExporterTest, ACollectorThatIsDownCostsSpansNotTheCaller) {
  const uint16_t port = core::FreeLoopbackPort();  // nobody listens there
  auto exporter =
      OtlpExporter::Make(OtlpOptions{.endpoint = "http://127.0.0.1:" + std::to_string(port),
                                     .interval_ms = 10,
                                     .timeout_ms = 2000});
  ASSERT_TRUE(exporter.ok());
  for (int i = 0; i < 20; ++i) (*exporter)->Export(Span(i));
  for (int i = 0; i < 200 && (*exporter)->dropped() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ((*exporter)->dropped(), 20);
  EXPECT_EQ((*exporter)->exported(), 0);
  // A collector answering an error: the same.
  testing::OtlpReceiver refusing;
  refusing.SetPolicy([](size_t) { return 500; });
  auto second = OtlpExporter::Make(
      OtlpOptions{.endpoint = refusing.endpoint() + "/v1/traces", .interval_ms = 10});
  ASSERT_TRUE(second.ok());
  for (int i = 0; i < 5; ++i) (*second)->Export(Span(i));
  (*second)->Shutdown();
  EXPECT_EQ((*second)->dropped(), 5);
  EXPECT_GE(refusing.requests(), 1u);
}

TEST(OtlpExporterTest, ABadEndpointIsRefused) {
  EXPECT_FALSE(OtlpExporter::Make(OtlpOptions{.endpoint = "collector:4318"}).ok());
  EXPECT_FALSE(OtlpExporter::Make(OtlpOptions{.endpoint = ""}).ok());
}

}  // namespace
}  // namespace mpim::net
