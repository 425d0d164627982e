// The inbox envelope: what one node sends another, and what a receiving
// node makes of bytes that are not one.
#include "gateway/envelope.h"

#include <gtest/gtest.h>

namespace mpim::gateway {
namespace {

Envelope Messages() {
  Envelope e;
  e.kind = Envelope::Kind::kMessages;
  e.priority = service::Priority::kHigh;
  e.qos1 = false;
  e.conns = {{1, 5}, {127, 0}, {128, INT64_MAX}, {1ull << 40, 7}, {UINT64_MAX, 1}};
  e.msgs.push_back({"p:1:2", 1, 1700000000000, R"({"op":"msg","seq":1})"});
  e.msgs.push_back({"g:9", INT64_MAX, 0, std::string("\0\xff binary", 9)});
  return e;
}

TEST(EnvelopeTest, MessagesRoundTrip) {
  Envelope in = Messages();
  auto out = Envelope::Decode(in.Encode());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->kind, Envelope::Kind::kMessages);
  EXPECT_EQ(out->priority, service::Priority::kHigh);
  EXPECT_FALSE(out->qos1);
  EXPECT_EQ(out->conns, in.conns);
  ASSERT_EQ(out->msgs.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out->msgs[i].conv_id, in.msgs[i].conv_id);
    EXPECT_EQ(out->msgs[i].seq, in.msgs[i].seq);
    EXPECT_EQ(out->msgs[i].ts, in.msgs[i].ts);
    EXPECT_EQ(out->msgs[i].frame, in.msgs[i].frame);
  }
}

TEST(EnvelopeTest, EventsAndKicksRoundTrip) {
  for (auto kind : {Envelope::Kind::kEvent, Envelope::Kind::kKick}) {
    Envelope in;
    in.kind = kind;
    in.priority = service::Priority::kUrgent;
    in.conns = {{42, 1001}};
    in.frame = R"({"op":"typing","conv_id":"p:1:2","user_id":"1"})";
    auto out = Envelope::Decode(in.Encode());
    ASSERT_TRUE(out.has_value());
    EXPECT_EQ(out->kind, kind);
    EXPECT_EQ(out->priority, service::Priority::kUrgent);
    EXPECT_TRUE(out->qos1);
    EXPECT_EQ(out->conns, in.conns);
    EXPECT_EQ(out->frame, in.frame);
    EXPECT_TRUE(out->msgs.empty());
  }
}

TEST(EnvelopeTest, EveryTruncationIsRefused) {
  const std::string bytes = Messages().Encode();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(Envelope::Decode(std::string_view(bytes).substr(0, n)).has_value()) << n;
  }
  EXPECT_FALSE(Envelope::Decode(bytes + "x").has_value()) << "trailing bytes";
}

TEST(EnvelopeTest, ForeignBytesAreRefused) {
  std::string bytes = Messages().Encode();
  std::string other_version = bytes;
  other_version[0] = 1;
  EXPECT_FALSE(Envelope::Decode(other_version).has_value());
  std::string bad_kind = bytes;
  bad_kind[1] = 9;
  EXPECT_FALSE(Envelope::Decode(bad_kind).has_value());
  std::string bad_priority = bytes;
  bad_priority[2] = 4;
  EXPECT_FALSE(Envelope::Decode(bad_priority).has_value());
  // A count far beyond the bytes that follow is not allocated.
  std::string huge("\x02\x02\x01\x01\xff\xff\xff\xff\x0f", 9);
  EXPECT_FALSE(Envelope::Decode(huge).has_value());
  EXPECT_FALSE(Envelope::Decode(R"({"op":"msg"})").has_value());
}

// Version 2 unless traced, so that nodes without tracing read what nodes
// with tracing off write; version 3 carries the publishing span's context.
TEST(EnvelopeTest, OnlyATracedEnvelopeIsVersionThree) {
  std::string plain = Messages().Encode();
  EXPECT_EQ(plain[0], 2);
  Envelope traced = Messages();
  auto context =
      core::trace::SpanContext::Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  traced.trace = *context;
  std::string bytes = traced.Encode();
  EXPECT_EQ(bytes[0], 3);
  EXPECT_EQ(bytes.size(), plain.size() + 24);
  auto out = Envelope::Decode(bytes);
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(out->trace, *context);
  EXPECT_EQ(out->msgs.size(), 2u);
  EXPECT_FALSE(Envelope::Decode(plain)->trace.valid());
  // An unsampled context is not carried.
  traced.trace.sampled = false;
  EXPECT_EQ(traced.Encode(), plain);
  // A traced envelope with zero ids, or cut inside the ids, is refused.
  std::string zero = bytes;
  std::fill(zero.begin() + 4, zero.begin() + 28, '\0');
  EXPECT_FALSE(Envelope::Decode(zero).has_value());
  EXPECT_FALSE(Envelope::Decode(bytes.substr(0, 20)).has_value());
}

}  // namespace
}  // namespace mpim::gateway
