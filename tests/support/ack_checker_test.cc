// The acknowledged-message checker must fail: each broken guarantee it is
// fed (a lost message, a duplicate, a seq hole, a receipt out of order...)
// shows up in its report, and a clean run reports nothing.
#include "support/ack_checker.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <string>
#include <vector>

namespace mpim::testing {
namespace {

constexpr char kConv[] = "p:1:2";
constexpr char kSender[] = "1";
constexpr char kPeer[] = "2";

std::string MsgId(int64_t seq) { return std::to_string(1000 + seq); }

SeenMessage Msg(int64_t seq, const std::string& from = kSender) {
  return SeenMessage{kConv, seq, MsgId(seq), from, "c" + std::to_string(seq)};
}

AckedSend AckOf(const SeenMessage& m) {
  return AckedSend{m.from, m.client_msg_id, m.conv_id, m.seq, m.msg_id};
}

Receipt Got(const SeenMessage& m, ReceiptSource source = ReceiptSource::kLive, int conn = 1) {
  return Receipt{m, source, conn};
}

// A clean run of `n` messages from kSender: acked, stored, and received by
// kPeer live in order.
void CleanRun(AckChecker& c, int64_t n) {
  std::vector<SeenMessage> stored;
  c.ExpectReceiver(kPeer, kConv);
  for (int64_t s = 1; s <= n; ++s) {
    stored.push_back(Msg(s));
    c.Acked(AckOf(Msg(s)));
    c.Received(kPeer, Got(Msg(s)));
  }
  c.Stored(kConv, stored);
}

// Success when exactly one problem was reported and it contains `text`.
::testing::AssertionResult ReportsOnly(const AckChecker& c, const std::string& text) {
  auto problems = c.Check();
  std::string all;
  for (const auto& p : problems) all += "\n  " + p;
  if (problems.size() == 1 && problems[0].find(text) != std::string::npos) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure()
         << "wanted one problem with \"" << text << "\", got " << problems.size() << ":" << all;
}

TEST(AckCheckerTest, ACleanRunReportsNothing) {
  AckChecker c;
  CleanRun(c, 5);
  // Retries answered with the first result, a message got twice (live and
  // in a sync page) and the receiver's own messages are all fine.
  c.Acked(AckOf(Msg(2)));
  c.Received(kPeer, Got(Msg(5), ReceiptSource::kSync, 2));
  EXPECT_TRUE(c.Check().empty()) << c.Check().front();
  AckCheckTotals t = c.Totals();
  EXPECT_EQ(t.acks, 6);
  EXPECT_EQ(t.acked_messages, 5);
  EXPECT_EQ(t.stored_messages, 5);
  EXPECT_EQ(t.stored_unacked, 0);
  EXPECT_EQ(t.receipts, 6);
  EXPECT_EQ(t.duplicate_receipts, 1);
  EXPECT_EQ(t.receivers, 1);
}

TEST(AckCheckerTest, OwnMessagesNeedNotBeReceivedAndAreOutsideTheOrder) {
  AckChecker c;
  c.ExpectReceiver(kPeer, kConv);
  std::vector<SeenMessage> stored = {Msg(1), Msg(2, kPeer), Msg(3), Msg(4, kPeer), Msg(5)};
  for (const auto& m : stored) c.Acked(AckOf(m));
  c.Stored(kConv, stored);
  c.Received(kPeer, Got(stored[0]));
  c.Received(kPeer, Got(stored[2]));
  c.Received(kPeer, Got(stored[1], ReceiptSource::kSync, 2));  // own, late: fine
  c.Received(kPeer, Got(stored[4], ReceiptSource::kSync, 2));
  EXPECT_TRUE(c.Check().empty()) << c.Check().front();
}

TEST(AckCheckerTest, ReportsAnAcknowledgedMessageThatIsNotStored) {
  AckChecker c;
  CleanRun(c, 3);
  c.Acked(AckOf(Msg(4)));  // acknowledged, then lost
  EXPECT_TRUE(ReportsOnly(c, "lost: sender 1 client_msg_id c4 acknowledged as p:1:2 seq 4"));
}

TEST(AckCheckerTest, ReportsAnAcknowledgedSeqHoldingAnotherMessage) {
  AckChecker c;
  CleanRun(c, 3);
  AckedSend other = AckOf(Msg(3));
  other.client_msg_id = "x";
  other.msg_id = "77";  // acked at seq 3, but seq 3 holds c3
  c.Acked(other);
  EXPECT_TRUE(ReportsOnly(c, "but that seq holds msg_id 1003"));
}

TEST(AckCheckerTest, ReportsADuplicateOfOneClientMsgId) {
  // The retry of c3 was stored again as seq 4 (and delivered).
  SeenMessage again = Msg(4);
  again.client_msg_id = "c3";
  AckChecker d;
  std::vector<SeenMessage> stored = {Msg(1), Msg(2), Msg(3), again};
  d.ExpectReceiver(kPeer, kConv);
  for (const auto& m : stored) d.Received(kPeer, Got(m));
  for (int s = 1; s <= 3; ++s) d.Acked(AckOf(Msg(s)));
  d.Stored(kConv, stored);
  EXPECT_TRUE(ReportsOnly(d, "stored: client_msg_id c3 of sender 1 names 2 messages"));
  EXPECT_EQ(d.Totals().stored_unacked, 0);
}

TEST(AckCheckerTest, ReportsARetryAnsweredWithADifferentMessage) {
  AckChecker c;
  CleanRun(c, 3);
  AckedSend retry = AckOf(Msg(3));
  retry.seq = 4;
  retry.msg_id = "99";
  c.Acked(retry);
  auto problems = c.Check();
  ASSERT_FALSE(problems.empty());
  EXPECT_NE(problems[0].find("idempotency: sender 1 client_msg_id c3 was acknowledged as p:1:2 "
                             "seq 3 msg_id 1003, then as p:1:2 seq 4 msg_id 99"),
            std::string::npos)
      << problems[0];
}

TEST(AckCheckerTest, ReportsASeqServedTwiceAndAMsgIdStoredTwice) {
  AckChecker c;
  c.Stored(kConv, {Msg(1), Msg(2), Msg(2)});
  auto problems = c.Check();
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "stored p:1:2: seq 2 served twice (msg_ids 1002 and 1002)");
  EXPECT_EQ(problems[1],
            "stored: msg_id 1002 appears 2 times (p:1:2 seq 2 msg_id 1002, "
            "p:1:2 seq 2 msg_id 1002)");
}

TEST(AckCheckerTest, ReportsASeqHole) {
  AckChecker c;
  c.Stored(kConv, {Msg(1), Msg(2), Msg(5), Msg(6)});
  EXPECT_TRUE(ReportsOnly(c, "stored p:1:2: hole, seqs 3-4 missing (last seq 6)"));
  AckChecker from_one;
  from_one.Stored(kConv, {Msg(2)});
  EXPECT_TRUE(ReportsOnly(from_one, "hole, seqs 1 missing"));
}

TEST(AckCheckerTest, ReportsSeqsServedOutOfOrder) {
  AckChecker c;
  c.Stored(kConv, {Msg(1), Msg(3), Msg(2)});
  EXPECT_TRUE(ReportsOnly(c, "stored p:1:2: seq 2 served after seq 3 (out of order)"));
}

TEST(AckCheckerTest, ReportsAReceiptOutOfOrder) {
  AckChecker c;
  c.ExpectReceiver(kPeer, kConv);
  std::vector<SeenMessage> stored = {Msg(1), Msg(2), Msg(3)};
  c.Stored(kConv, stored);
  c.Received(kPeer, Got(Msg(1)));
  c.Received(kPeer, Got(Msg(3)));
  c.Received(kPeer, Got(Msg(2), ReceiptSource::kSync, 2));
  EXPECT_TRUE(ReportsOnly(c,
                          "receiver 2 p:1:2: seq 2 (sync on connection 2) came after seq 3 "
                          "(live on connection 1): out of order; connection 1 went past it"));
  AckChecker live;  // the same on one connection
  live.ExpectReceiver(kPeer, kConv);
  live.Stored(kConv, stored);
  for (int64_t s : {1, 3, 2}) live.Received(kPeer, Got(Msg(s)));
  auto problems = live.Check();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0],
            "receiver 2 p:1:2: seq 2 (live on connection 1) came after seq 3 (live on connection "
            "1): out of order");
}

TEST(AckCheckerTest, ReportsAMessageAReceiverNeverGot) {
  AckChecker c;
  CleanRun(c, 3);
  c.ExpectReceiver("3", kConv);  // a second receiver that got nothing
  c.Received("3", Got(Msg(2)));
  EXPECT_TRUE(ReportsOnly(c, "receiver 3 p:1:2: never got seqs 1, 3 (last seq 3)"));
}

TEST(AckCheckerTest, ReportsAReceiptTheStoreDoesNotHave) {
  AckChecker c;
  CleanRun(c, 3);
  c.Received(kPeer, Got(Msg(4)));  // pushed, then lost by the crash
  EXPECT_TRUE(ReportsOnly(c, "got seq 4 (msg_id 1004, live on connection 1) that is not stored"));
  AckChecker d;
  CleanRun(d, 3);
  SeenMessage other = Msg(3);
  other.msg_id = "55";  // pushed as seq 3, then seq 3 reused by another message
  d.Received(kPeer, Got(other));
  EXPECT_TRUE(
      ReportsOnly(d, "got seq 3 as msg_id 55 (live on connection 1), stored as msg_id 1003"));
}

TEST(AckCheckerTest, ReportsAConversationNotReadBack) {
  AckChecker c;
  c.ExpectReceiver(kPeer, "p:1:9");
  c.Acked(AckOf(Msg(1)));
  auto problems = c.Check();
  ASSERT_EQ(problems.size(), 2u) << ::testing::PrintToString(problems);
  EXPECT_EQ(problems[0], "acked: p:1:2 has acknowledged sends but was not read back");
  EXPECT_EQ(problems[1], "receiver 2 p:1:9: the conversation was not read back");
}

TEST(AckCheckerTest, CapsTheReport) {
  AckChecker c;
  c.ExpectReceiver(kPeer, kConv);
  std::vector<SeenMessage> stored;
  for (int64_t s = 1; s <= 20; ++s) stored.push_back(Msg(s));
  c.Stored(kConv, stored);
  for (int64_t s = 20; s >= 1; --s) c.Received(kPeer, Got(Msg(s)));  // 19 out of order
  auto problems = c.Check(5);
  ASSERT_EQ(problems.size(), 6u);
  EXPECT_EQ(problems[5], "... and 14 more");
}

TEST(AckCheckerTest, ReadsTheFieldsOfAMessageObject) {
  auto v = boost::json::parse(
      R"({"msg_id":"77","conv_id":"g:5","seq":3,"from":"9","to":{"group":"5"},"type":"text",)"
      R"("body":{"text":"hi"},"ts":1,"client_msg_id":"c-1"})");
  SeenMessage m = SeenFromJson(v.as_object());
  EXPECT_EQ(m.msg_id, "77");
  EXPECT_EQ(m.conv_id, "g:5");
  EXPECT_EQ(m.seq, 3);
  EXPECT_EQ(m.from, "9");
  EXPECT_EQ(m.client_msg_id, "c-1");
}

}  // namespace
}  // namespace mpim::testing
