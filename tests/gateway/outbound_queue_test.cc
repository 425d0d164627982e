// OutboundQueue on its own, writing to a FakeConnection with a ManualClock:
// replies first, events by priority, a conversation never overtaken by
// itself, the unacked list with acks and re-sends, the byte bound, and a
// socket that is full or refuses writes.
#include "gateway/outbound_queue.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "support/fakes/fake_connection.h"

namespace mpim::gateway {
namespace {

using service::Priority;
using Texts = std::vector<std::string>;

constexpr size_t kNoBound = SIZE_MAX;
constexpr int64_t kAckTimeoutMs = 10000;

std::shared_ptr<const std::string> Text(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

class OutboundQueueTest : public ::testing::Test {
 protected:
  // An event outside conversations.
  void Event(const std::string& text, Priority p) {
    ASSERT_TRUE(queue_.Enqueue(OutboundQueue::Frame{Text(text)}, p, kNoBound));
  }
  // A msg frame of `stream`.
  void Msg(OutboundQueue::Stream& stream, int64_t seq, Priority p, bool qos1 = true) {
    ASSERT_TRUE(queue_.Enqueue(
        OutboundQueue::Frame{Text("m" + std::to_string(seq)), &stream, seq, qos1}, p, kNoBound));
  }
  OutboundQueue::Pumped Pump() { return queue_.Pump(conn_, clock_, kAckTimeoutMs); }
  // Written since the last call.
  Texts Written() {
    Texts out = conn_.frames;
    conn_.ClearFrames();
    return out;
  }

  core::ManualClock clock_{0, 1000};
  testing::FakeConnection conn_;
  OutboundQueue queue_;
};

TEST_F(OutboundQueueTest, RepliesGoFirstThenEventsByPriority) {
  Event("low", Priority::kLow);
  Event("normal", Priority::kNormal);
  Event("urgent", Priority::kUrgent);
  Event("high", Priority::kHigh);
  ASSERT_TRUE(queue_.EnqueueReply(Text("reply"), kNoBound));
  EXPECT_EQ(queue_.frames(), 5u);
  OutboundQueue::Pumped pumped = Pump();
  EXPECT_EQ(pumped.frames, 5u);
  EXPECT_EQ(pumped.bytes, 3u + 6u + 6u + 4u + 5u);
  EXPECT_FALSE(pumped.refused);
  EXPECT_EQ(Written(), (Texts{"reply", "urgent", "high", "normal", "low"}));
  EXPECT_EQ(queue_.frames(), 0u);
  EXPECT_EQ(queue_.bytes(), 0u);
}

TEST_F(OutboundQueueTest, AConversationsFrameNeverOvertakesAnEarlierOne) {
  OutboundQueue::Stream stream;
  Msg(stream, 1, Priority::kLow);
  Msg(stream, 2, Priority::kUrgent);  // goes as low: 1 is still waiting
  Event("normal", Priority::kNormal);
  EXPECT_EQ(stream.queued(), 2u);
  Pump();
  EXPECT_EQ(Written(), (Texts{"normal", "m1", "m2"}));
  EXPECT_EQ(stream.queued(), 0u);
  // Nothing of it waits any more: its next frame takes its own priority.
  Event("normal", Priority::kNormal);
  Msg(stream, 3, Priority::kUrgent);
  Pump();
  EXPECT_EQ(Written(), (Texts{"m3", "normal"}));
}

TEST_F(OutboundQueueTest, WrittenQos1FramesStayUnackedUntilAnAckCoversThem) {
  OutboundQueue::Stream stream;
  for (int64_t seq = 1; seq <= 3; ++seq) Msg(stream, seq, Priority::kNormal);
  Msg(stream, 4, Priority::kNormal, /*qos1=*/false);
  EXPECT_EQ(queue_.bytes(), 8u);
  Pump();
  EXPECT_EQ(stream.unacked(), 3u) << "qos 0 is not kept";
  EXPECT_EQ(queue_.bytes(), 6u) << "unacked bytes count";
  EXPECT_TRUE(queue_.Ack(stream, 2, clock_, kAckTimeoutMs));
  EXPECT_EQ(stream.unacked(), 1u);
  EXPECT_EQ(queue_.bytes(), 2u);
  EXPECT_FALSE(queue_.Ack(stream, 2, clock_, kAckTimeoutMs)) << "nothing new";
  EXPECT_TRUE(queue_.Ack(stream, 100, clock_, kAckTimeoutMs));
  EXPECT_EQ(queue_.bytes(), 0u);
}

TEST_F(OutboundQueueTest, AnUnackedFrameIsSentAgainAfterTheAckTimeout) {
  OutboundQueue::Stream stream;
  Msg(stream, 1, Priority::kUrgent);
  Pump();  // sent at 1000
  Written();
  EXPECT_EQ(queue_.Resend(stream, 1000 + kAckTimeoutMs - 1, kAckTimeoutMs), 0u);
  EXPECT_EQ(queue_.Resend(stream, 1000 + kAckTimeoutMs, kAckTimeoutMs), 1u);
  EXPECT_EQ(queue_.bytes(), 4u) << "queued again and still unacked";
  OutboundQueue::Pumped pumped = Pump();
  EXPECT_EQ(pumped.frames, 1u);
  EXPECT_EQ(Written(), Texts{"m1"});
  EXPECT_EQ(stream.unacked(), 1u) << "the copy is not listed twice";
  EXPECT_EQ(stream.queued(), 0u);
  // Next due a whole timeout after the re-send.
  EXPECT_EQ(queue_.Resend(stream, 1000 + 2 * kAckTimeoutMs - 1, kAckTimeoutMs), 0u);
  EXPECT_EQ(queue_.Resend(stream, 1000 + 2 * kAckTimeoutMs, kAckTimeoutMs), 1u);
}

TEST_F(OutboundQueueTest, AnAckThatMovesTheConversationOnPostponesItsResends) {
  OutboundQueue::Stream stream;
  Msg(stream, 1, Priority::kNormal);
  Msg(stream, 2, Priority::kNormal);
  Pump();  // both sent at 1000
  clock_.AdvanceMs(8000);
  EXPECT_TRUE(queue_.Ack(stream, 1, clock_, kAckTimeoutMs));  // at 9000
  EXPECT_EQ(queue_.Resend(stream, 1000 + kAckTimeoutMs, kAckTimeoutMs), 0u)
      << "a client that acks is still reading";
  EXPECT_EQ(queue_.Resend(stream, 9000 + kAckTimeoutMs, kAckTimeoutMs), 1u);
}

TEST_F(OutboundQueueTest, AboveTheBoundWithMoreThanOneFrameWaitingIsASlowConsumer) {
  const size_t bound = 10;
  // One frame alone is not a backlog, however large.
  EXPECT_TRUE(queue_.EnqueueReply(Text(std::string(50, 'x')), bound));
  EXPECT_FALSE(queue_.Enqueue(OutboundQueue::Frame{Text("y")}, Priority::kLow, bound));
  Pump();
  EXPECT_EQ(queue_.bytes(), 0u);
  // Unacked bytes count towards it.
  OutboundQueue::Stream stream;
  ASSERT_TRUE(queue_.Enqueue(OutboundQueue::Frame{Text(std::string(20, 'm')), &stream, 1, true},
                             Priority::kNormal, bound));
  Pump();
  conn_.full = true;
  EXPECT_TRUE(queue_.Enqueue(OutboundQueue::Frame{Text("a")}, Priority::kLow, bound));
  EXPECT_FALSE(queue_.Enqueue(OutboundQueue::Frame{Text("b")}, Priority::kLow, bound));
}

TEST_F(OutboundQueueTest, NothingIsWrittenWhileTheSocketIsFullOrHasABatchBuffered) {
  Event("a", Priority::kNormal);
  conn_.full = true;
  EXPECT_EQ(Pump().frames, 0u);
  conn_.full = false;
  conn_.buffered_bytes = 64 * 1024;
  EXPECT_EQ(Pump().frames, 0u);
  EXPECT_EQ(queue_.frames(), 1u);
  conn_.buffered_bytes = 0;
  EXPECT_EQ(Pump().frames, 1u);
  EXPECT_EQ(Written(), Texts{"a"});
}

TEST_F(OutboundQueueTest, APumpStopsAtARefusedWrite) {
  Event("a", Priority::kNormal);
  Event("b", Priority::kNormal);
  conn_.refuse_writes = true;
  OutboundQueue::Pumped pumped = Pump();
  EXPECT_TRUE(pumped.refused);
  EXPECT_EQ(queue_.frames(), 1u) << "the refused frame is gone, the next waits";
}

TEST_F(OutboundQueueTest, MayWaitReachesTheConnection) {
  ASSERT_TRUE(queue_.Enqueue(OutboundQueue::Frame{Text("a"), nullptr, 0, false, true},
                             Priority::kNormal, kNoBound));
  Event("b", Priority::kNormal);
  Pump();
  EXPECT_EQ(conn_.waited, (std::vector<bool>{true, false}));
}

TEST_F(OutboundQueueTest, DroppingEventsKeepsTheRepliesAndForgetsTheConversationsShare) {
  OutboundQueue::Stream stream;
  Msg(stream, 1, Priority::kLow);
  Event("event", Priority::kHigh);
  ASSERT_TRUE(queue_.EnqueueReply(Text("reply"), kNoBound));
  queue_.DropEvents();
  EXPECT_EQ(queue_.frames(), 1u);
  EXPECT_EQ(queue_.bytes(), 5u);
  EXPECT_EQ(stream.queued(), 0u);
  Pump();
  EXPECT_EQ(Written(), Texts{"reply"});
}

TEST_F(OutboundQueueTest, ClearDropsEveryWaitingFrameButNotTheUnackedOnes) {
  OutboundQueue::Stream stream;
  Msg(stream, 1, Priority::kNormal);
  Pump();
  Msg(stream, 2, Priority::kNormal);
  ASSERT_TRUE(queue_.EnqueueReply(Text("reply"), kNoBound));
  queue_.Clear();
  EXPECT_EQ(queue_.frames(), 0u);
  EXPECT_EQ(stream.queued(), 0u);
  EXPECT_EQ(queue_.bytes(), 2u) << "m1 is still unacked";
}

}  // namespace
}  // namespace mpim::gateway
