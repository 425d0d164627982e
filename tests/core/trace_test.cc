// Trace Context (W3C traceparent), spans, head sampling and the current
// context of a thread (core/trace.h), with an exporter that keeps what it
// gets.
#include "core/trace.h"

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "core/logging.h"

namespace mpim::core::trace {
namespace {

class Keep final : public Exporter {
 public:
  void Export(SpanData span) override {
    std::lock_guard lock(mu);
    spans.push_back(std::move(span));
  }
  std::vector<SpanData> Take() {
    std::lock_guard lock(mu);
    return std::exchange(spans, {});
  }
  std::mutex mu;
  std::vector<SpanData> spans;
};

class TraceTest : public ::testing::Test {
 protected:
  void On(double ratio) { Install(keep_, ratio); }
  void TearDown() override { Install(nullptr, 0); }
  std::shared_ptr<Keep> keep_ = std::make_shared<Keep>();
};

constexpr char kExample[] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

TEST(TraceparentTest, ParsesAndFormatsTheSpecsExample) {
  auto c = SpanContext::Parse(kExample);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->sampled);
  EXPECT_TRUE(c->recording());
  EXPECT_EQ(c->TraceIdHex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(c->SpanIdHex(), "b7ad6b7169203331");
  EXPECT_EQ(c->Traceparent(), kExample);
  auto unsampled = SpanContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->recording());
  // Other flag bits are ignored; only bit 0 samples.
  EXPECT_FALSE(
      SpanContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-02")->sampled);
}

TEST(TraceparentTest, RejectsWhatTheSpecRejects) {
  for (const char* bad : {
           "",
           "00",
           "garbage",
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",      // no flags
           "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",   // upper case
           "00-00000000000000000000000000000000-b7ad6b7169203331-01",   // zero trace id
           "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",   // zero span id
           "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",   // version ff
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-",  // extra on 00
           "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
           "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0x",
       }) {
    EXPECT_FALSE(SpanContext::Parse(bad)) << bad;
  }
  // A later version: its first four fields, whatever follows a dash.
  EXPECT_TRUE(
      SpanContext::Parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-more-stuff"));
  EXPECT_FALSE(SpanContext::Parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01more"));
}

TEST_F(TraceTest, NothingRecordsWhenOff) {
  auto parent = SpanContext::Parse(kExample);
  EXPECT_FALSE(Enabled());
  EXPECT_FALSE(Span::StartRoot("root", std::nullopt).recording());
  EXPECT_FALSE(Span::Start("child", *parent).recording());
  On(0);  // a ratio of 0 is off too
  EXPECT_FALSE(Enabled());
  EXPECT_FALSE(Span::StartRoot("root", parent).recording());
  EXPECT_TRUE(keep_->Take().empty());
}

TEST_F(TraceTest, ARootContinuesAClientsTraceAndChildrenFollowTheirParent) {
  On(1);
  auto remote = SpanContext::Parse(kExample);
  Span root = Span::StartRoot("ws send", remote, SpanKind::kServer, 1000);
  ASSERT_TRUE(root.recording());
  EXPECT_EQ(root.context().trace_id, remote->trace_id);
  EXPECT_NE(root.context().span_id, remote->span_id);
  Span child = Span::Start("store append", root.context());
  child.Set("mpim.seq", int64_t{7});
  child.Set("mpim.conv_id", "p:1:2");
  child.Set("mpim.duplicate", false);
  child.Set("ratio", 0.5);
  child.SetError("boom");
  child.End();
  child.End();  // once
  const SpanContext root_context = root.context();
  root.End(2000);
  EXPECT_FALSE(root.context().valid());  // ended: no longer recording
  auto spans = keep_->Take();
  ASSERT_EQ(spans.size(), 2u);
  EXPECT_EQ(spans[0].name, "store append");
  EXPECT_EQ(spans[0].parent_span_id, root_context.span_id);
  EXPECT_EQ(spans[0].context.trace_id, remote->trace_id);
  EXPECT_TRUE(spans[0].error);
  EXPECT_EQ(spans[0].status_message, "boom");
  ASSERT_EQ(spans[0].attributes.size(), 4u);
  EXPECT_EQ(std::get<int64_t>(spans[0].attributes[0].second), 7);
  EXPECT_EQ(std::get<std::string>(spans[0].attributes[1].second), "p:1:2");
  EXPECT_EQ(spans[1].name, "ws send");
  EXPECT_EQ(spans[1].parent_span_id, remote->span_id);
  EXPECT_EQ(spans[1].kind, SpanKind::kServer);
  EXPECT_EQ(spans[1].start_unix_ns, 1000);
  EXPECT_EQ(spans[1].end_unix_ns, 2000);
  // The client's flag 00 is respected; its 01 is not a licence (ratio).
  auto unsampled = SpanContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00");
  EXPECT_FALSE(Span::StartRoot("x", unsampled).recording());
  EXPECT_FALSE(Span::Start("x", *unsampled).recording());
  // A new trace has a new id, no parent.
  Span fresh = Span::StartRoot("x", std::nullopt);
  ASSERT_TRUE(fresh.recording());
  EXPECT_NE(fresh.context().trace_id, remote->trace_id);
  fresh.End();
  auto last = keep_->Take();
  ASSERT_EQ(last.size(), 1u);
  EXPECT_EQ(last[0].parent_span_id, (std::array<uint8_t, 8>{}));
}

TEST_F(TraceTest, HeadSamplingKeepsAboutTheRatioDecidedOnTheTraceId) {
  On(0.1);
  int sampled = 0;
  constexpr int kRoots = 20000;
  for (int i = 0; i < kRoots; ++i) sampled += Span::StartRoot("r", std::nullopt).recording();
  EXPECT_GT(sampled, kRoots / 10 * 8 / 10);
  EXPECT_LT(sampled, kRoots / 10 * 12 / 10);
  // The same trace id gets the same answer every time (every node agrees).
  auto c = SpanContext::Parse(kExample);
  const bool first = Span::StartRoot("r", c).recording();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(Span::StartRoot("r", c).recording(), first);
  // Children of a sampled parent always record.
  On(0.0001);
  EXPECT_TRUE(Span::Start("child", *c).recording());
}

TEST_F(TraceTest, AScopeMakesAContextCurrentOnItsThreadOnly) {
  EXPECT_FALSE(Current().valid());
  auto outer = *SpanContext::Parse(kExample);
  auto inner = *SpanContext::Parse("00-11111111111111111111111111111111-2222222222222222-01");
  {
    Scope a(outer);
    EXPECT_EQ(Current(), outer);
    {
      Scope b(inner);
      EXPECT_EQ(Current(), inner);
      std::thread([] { EXPECT_FALSE(Current().valid()); }).join();
    }
    EXPECT_EQ(Current(), outer);
  }
  EXPECT_FALSE(Current().valid());
}

TEST_F(TraceTest, LogLinesCarryTheCurrentTrace) {
  std::string json = FormatLogLine(LogFormat::kJson, 0, LogLevel::kInfo, "t", "m", {{"k", 1}},
                                   "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
  EXPECT_NE(json.find(R"("k":1,"trace_id":"0af7651916cd43dd8448eb211c80319c",)"
                      R"("span_id":"b7ad6b7169203331"})"),
            std::string::npos)
      << json;
  std::string text = FormatLogLine(LogFormat::kText, 0, LogLevel::kInfo, "t", "m", {},
                                   "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
  EXPECT_NE(text.find(" trace_id=0af7651916cd43dd8448eb211c80319c span_id=b7ad6b7169203331"),
            std::string::npos)
      << text;
  EXPECT_EQ(FormatLogLine(LogFormat::kJson, 0, LogLevel::kInfo, "t", "m", {}).find("trace_id"),
            std::string::npos);
}

}  // namespace
}  // namespace mpim::core::trace
