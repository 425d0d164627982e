// End-to-end: per-session delivery against the real `mpim` binary
// (docs/protocol.md section 3 "Ordering and delivery
// guarantees"; docs/protocol.md section 3 "Client operations", "Delivery"): qos 1 re-sends
// until acked (not while the session keeps acking), qos 0 never re-sent, the
// delivered cursor per session, slow consumers closed with 4008, priority,
// and the send rate limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::Int;
using testing::IsErrorReply;
using testing::IsOkReply;
using testing::IsSendResult;
using testing::Ms;
using testing::MsgOf;
using testing::Obj;
using testing::Pings;
using testing::PrivateConvId;
using testing::Str;
using testing::TextSend;
using testing::WsAuth;
using testing::WsConn;

namespace json = boost::json;

constexpr int kAckTimeoutMs = 1000;

struct DeliveryConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_GATEWAY_ACK_TIMEOUT_MS", std::to_string(kAckTimeoutMs)},
                           {"MPIM_GATEWAY_SEND_QUEUE_MAX_BYTES", "262144"},
                           {"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                           {"MPIM_LIMITS_SEND_BURST", "100000"}});
  }
};

class WsDeliveryE2eTest : public testing::WsServerTest<DeliveryConfig> {
 protected:
  // Sends and returns the reply (a gtest failure when it is not a result).
  json::object MustSend(WsConn& ws, json::object frame) {
    auto r = ws.Request(std::move(frame));
    EXPECT_TRUE(IsSendResult(r)) << ws.last_error();
    return r ? *r : json::object{};
  }
  // The seqs of the next `n` msg events of `conv_id` (fewer on timeout).
  static std::vector<int64_t> NextSeqs(WsConn& ws, const std::string& conv_id, int n,
                                       Ms each = Ms(kAckTimeoutMs * 4)) {
    std::vector<int64_t> out;
    for (int i = 0; i < n; ++i) {
      auto m = ws.NextMsg(conv_id, each);
      if (!m) {
        ADD_FAILURE() << "msg " << i << " of " << n << ": " << ws.last_error();
        break;
      }
      out.push_back(Int(MsgOf(*m), "seq"));
    }
    return out;
  }
};

TEST_F(WsDeliveryE2eTest, UnackedQos1MessagesAreResentAndAckedOnesAreNot) {
  auto [a, b, conv] = NewPair("rs");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  std::vector<std::string> ids;
  for (int i = 1; i <= 4; ++i) {
    ids.push_back(Str(MustSend(*wa, TextSend(b.id(), "rs" + std::to_string(i), "m")), "msg_id"));
  }
  ASSERT_EQ(NextSeqs(*wb, conv, 4), (std::vector<int64_t>{1, 2, 3, 4}));
  ASSERT_TRUE(wb->Ack(conv, 2));
  // Two rounds of re-sends of what is not acked, in seq order, same ids.
  auto m3 = wb->NextMsg(conv, Ms(kAckTimeoutMs * 4));
  ASSERT_TRUE(m3) << "no re-send: " << wb->last_error();
  EXPECT_EQ(Int(MsgOf(*m3), "seq"), 3);
  EXPECT_EQ(Str(MsgOf(*m3), "msg_id"), ids[2]);
  EXPECT_EQ(NextSeqs(*wb, conv, 3), (std::vector<int64_t>{4, 3, 4}));
  // Acked in full: nothing more comes for several ack timeouts.
  ASSERT_TRUE(wb->Ack(conv, 4));
  EXPECT_TRUE(wb->Drain("msg", Ms(kAckTimeoutMs * 3)).empty());
  // The sender's session, which acks nothing, gets no messages at all.
  EXPECT_TRUE(wa->Drain("msg", Ms(0)).empty());
}

TEST_F(WsDeliveryE2eTest, ASessionThatKeepsAckingGetsNoResendsOfWhatIsStillOnItsWay) {
  // A client working through a backlog acks as it goes; what it has not
  // acked yet is behind in the same stream, so sending it again would only
  // lengthen the backlog. Once its acks stop, the rest comes again.
  auto [a, b, conv] = NewPair("ka");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  for (int i = 1; i <= 6; ++i) MustSend(*wa, TextSend(b.id(), "ka" + std::to_string(i), "m"));
  ASSERT_EQ(NextSeqs(*wb, conv, 6), (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));
  // One more acked every half timeout, for two timeouts after the sends.
  for (int seq = 1; seq <= 4; ++seq) {
    ASSERT_TRUE(wb->Ack(conv, seq));
    EXPECT_TRUE(wb->Drain("msg", Ms(kAckTimeoutMs / 2)).empty()) << "re-sent while acks came";
  }
  EXPECT_EQ(NextSeqs(*wb, conv, 2), (std::vector<int64_t>{5, 6}));
}

TEST_F(WsDeliveryE2eTest, Qos0IsSentOnceButStillStored) {
  auto [a, b, conv] = NewPair("q0");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  json::object q0 = TextSend(b.id(), "q0", "fire and forget");
  q0["qos"] = 0;
  MustSend(*wa, q0);
  json::object q1 = TextSend(b.id(), "q1", "at least once");
  q1["qos"] = 1;
  MustSend(*wa, q1);
  ASSERT_EQ(NextSeqs(*wb, conv, 2), (std::vector<int64_t>{1, 2}));
  // Nothing acked: seq 2 comes again (twice), seq 1 never.
  EXPECT_EQ(NextSeqs(*wb, conv, 2), (std::vector<int64_t>{2, 2}));
  ASSERT_TRUE(wb->Ack(conv, 2));
  EXPECT_TRUE(wb->Drain("msg", Ms(kAckTimeoutMs * 2)).empty());
  auto synced = testing::SyncAll(*wb, conv, 0, 50);
  ASSERT_EQ(synced.size(), 2u);
  EXPECT_EQ(Str(synced[0], "client_msg_id"), "q0");
}

TEST_F(WsDeliveryE2eTest, AckMovesTheDeliveredCursorOfThatSessionOnly) {
  auto [a, b, conv] = NewPair("cur");
  testing::Session b_other = Login(b);
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  for (int i = 1; i <= 3; ++i) MustSend(*wa, TextSend(b.id(), "c" + std::to_string(i), "m"));
  ASSERT_EQ(NextSeqs(*wb, conv, 3), (std::vector<int64_t>{1, 2, 3}));
  // Partly acked: the next hello of this session still lists it.
  ASSERT_TRUE(wb->Ack(conv, 2));
  ASSERT_TRUE(Pings(*wb));  // frames are handled in order: the ack is in
  ASSERT_TRUE(wb->client().Close(1000, "", client::WsClock::now() + Ms(3000)).ok());
  wb = OpenWs(b.token(), WsAuth::kQuery);
  ASSERT_TRUE(wb);
  EXPECT_EQ(wb->HelloLastSeq(conv), 3) << json::serialize(wb->hello());
  // Fully acked: not listed any more for this session...
  ASSERT_TRUE(wb->Ack(conv, 3));
  ASSERT_TRUE(Pings(*wb));
  ASSERT_TRUE(wb->client().Close(1000, "", client::WsClock::now() + Ms(3000)).ok());
  wb = OpenWs(b.token(), WsAuth::kFrame);
  ASSERT_TRUE(wb);
  EXPECT_FALSE(wb->HelloLastSeq(conv)) << json::serialize(wb->hello());
  // ...but still for the user's other session (device), which acked nothing.
  auto other = OpenWs(b_other.access_token);
  ASSERT_TRUE(other);
  EXPECT_EQ(other->HelloLastSeq(conv), 3) << json::serialize(other->hello());
  // A new message lists it again.
  MustSend(*wa, TextSend(b.id(), "c4", "m"));
  wb.reset();
  wb = OpenWs(b.token());
  ASSERT_TRUE(wb);
  EXPECT_EQ(wb->HelloLastSeq(conv), 4) << json::serialize(wb->hello());
}

TEST_F(WsDeliveryE2eTest, ASessionThatStopsReadingIsClosedWith4008WhileOthersAreServed) {
  auto [a, b, conv] = NewPair("slow");
  testing::Session slow_session = Login(b);
  auto wa = OpenWs(a.token());
  auto fast = OpenWs(b.token());
  auto slow = OpenWs(slow_session.access_token, WsAuth::kHeader,
                     client::WsOptions{.receive_buffer_bytes = 4096});
  ASSERT_TRUE(wa && fast && slow);
  // 100 messages of ~50 KiB: 5 MB against a 256 KiB queue bound, while the
  // slow session reads nothing and the fast one reads and acks each.
  constexpr int kCount = 100;
  const std::string big(50 * 1024, 'z');
  for (int i = 1; i <= kCount; ++i) {
    auto r = wa->Request(TextSend(b.id(), "big" + std::to_string(i), big));
    ASSERT_TRUE(IsSendResult(r)) << "send " << i << ": " << wa->last_error();
    auto m = fast->NextMsg(conv);
    ASSERT_TRUE(m) << "fast session, msg " << i << ": " << fast->last_error();
    ASSERT_EQ(Int(MsgOf(*m), "seq"), i);
    ASSERT_TRUE(fast->Ack(conv, i));
  }
  auto code = slow->CloseCode(Ms(15000));
  ASSERT_TRUE(code) << slow->last_error();
  EXPECT_EQ(*code, 4008);
  // What did reach it came in order, and not everything did.
  std::vector<int64_t> seqs;
  for (const auto& f : slow->buffered()) {
    if (Str(f, "op") == "msg") seqs.push_back(Int(MsgOf(f), "seq"));
  }
  EXPECT_TRUE(std::is_sorted(seqs.begin(), seqs.end()));
  EXPECT_LT(seqs.size(), static_cast<size_t>(kCount));
  // The others go on; the slow device catches up through hello and sync.
  EXPECT_TRUE(Pings(*fast));
  EXPECT_TRUE(Pings(*wa));
  auto again = OpenWs(slow_session.access_token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->HelloLastSeq(conv), kCount) << json::serialize(again->hello());
  // Pages of 4 (~200 KiB) fit the 256 KiB queue bound.
  EXPECT_EQ(testing::SyncAll(*again, conv, 0, 4, 50).size(), static_cast<size_t>(kCount));
  EXPECT_FALSE(again->closed()) << again->last_error();
}

TEST_F(WsDeliveryE2eTest, ASyncPageLargerThanTheQueueBoundIsNotASlowConsumer) {
  // A client that asks for a legitimate page (limit within page_max) and
  // reads it is not slow. The server may cut the page short (has_more) but
  // must not close the session with 4008 for asking.
  auto [a, b, conv] = NewPair("page");
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  const std::string big(50 * 1024, 'p');
  for (int i = 1; i <= 10; ++i) MustSend(*wa, TextSend(b.id(), "p" + std::to_string(i), big));
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wb);
  // 10 x 50 KiB = 500 KiB in one page against a 256 KiB bound.
  EXPECT_EQ(testing::SyncAll(*wb, conv, 0, 50).size(), 10u) << wb->last_error();
  EXPECT_FALSE(wb->closed()) << wb->last_error();
}

// Priority needs a queue deep enough to hold a backlog.
struct PriorityConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_GATEWAY_SEND_QUEUE_MAX_BYTES", "67108864"},
                           {"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                           {"MPIM_LIMITS_SEND_BURST", "100000"}});
  }
};

class WsPriorityE2eTest : public testing::WsServerTest<PriorityConfig> {};

TEST_F(WsPriorityE2eTest, UrgentOvertakesQueuedNormalFramesOfOtherConversations) {
  auto [a, b, conv] = NewPair("pri");
  Account c = NewAccount("pri_c");
  auto wa = OpenWs(a.token());
  auto wc = OpenWs(c.token());
  auto wb = OpenWs(b.token(), WsAuth::kHeader, client::WsOptions{.receive_buffer_bytes = 4096});
  ASSERT_TRUE(wa && wb && wc);
  const std::string& conv_ab = conv;
  const std::string conv_bc = PrivateConvId(b.id(), c.id());
  // A backlog of ~6 MB for B, who is not reading (more than the kernel's
  // socket buffers hold, so most of it waits in B's queue on the server).
  constexpr int kCount = 120;
  const std::string big(50 * 1024, 'n');
  for (int i = 1; i <= kCount; ++i) {
    json::object f = TextSend(b.id(), "n" + std::to_string(i), big);
    f["priority"] = "low";
    ASSERT_TRUE(IsSendResult(wa->Request(f))) << i << " " << wa->last_error();
  }
  json::object urgent = TextSend(b.id(), "urgent", "now");
  urgent["priority"] = "urgent";
  ASSERT_TRUE(IsSendResult(wc->Request(urgent)));
  // B reads: C's urgent message comes before the tail of A's backlog, and
  // A's messages stay in seq order.
  int position = -1;
  std::vector<int64_t> a_seqs;
  for (int i = 0; i <= kCount && (position < 0 || a_seqs.size() < kCount); ++i) {
    auto m = wb->NextEvent("msg", Ms(10000));
    ASSERT_TRUE(m) << wb->last_error();
    json::object msg = MsgOf(*m);
    if (Str(msg, "conv_id") == conv_bc) {
      position = static_cast<int>(a_seqs.size());
    } else {
      ASSERT_EQ(Str(msg, "conv_id"), conv_ab);
      int64_t seq = Int(msg, "seq");
      if (a_seqs.empty() || seq > a_seqs.back()) a_seqs.push_back(seq);  // re-sends aside
    }
  }
  ASSERT_GE(position, 0);
  EXPECT_LT(position, kCount - 10) << "the urgent message came after " << position << " of "
                                   << kCount << " queued low-priority messages";
  std::vector<int64_t> want;
  for (int64_t i = 1; i <= kCount; ++i) want.push_back(i);
  EXPECT_EQ(a_seqs, want);
}

// The send rate limit: a burst of 3, one more per second, 4029 after 5
// refusals within 10 s.
struct RateLimitConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "1"},
                           {"MPIM_LIMITS_SEND_BURST", "3"},
                           {"MPIM_GATEWAY_RATE_LIMIT_CLOSE_AFTER", "5"}});
  }
};

class WsRateLimitE2eTest : public testing::WsServerTest<RateLimitConfig> {};

TEST_F(WsRateLimitE2eTest, SendsOverTheLimitAreRateLimitedPerUser) {
  auto [a, b, conv] = NewPair("rl");
  auto wa = OpenWs(a.token());
  auto wa2 = OpenWs(Login(a).access_token);
  ASSERT_TRUE(wa && wa2);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(IsSendResult(wa->Request(TextSend(b.id(), "rl" + std::to_string(i), "m"))));
  }
  auto r = wa->Request(TextSend(b.id(), "rl4", "m"));
  ASSERT_TRUE(IsErrorReply(r, "rate_limited"));
  const json::object* err = Obj(*r, "error");
  EXPECT_GT(Int(*err, "retry_after_ms"), 0) << json::serialize(*r);
  EXPECT_LE(Int(*err, "retry_after_ms"), 1000) << json::serialize(*r);
  // The limit is the user's, not the session's.
  EXPECT_TRUE(IsErrorReply(wa2->Request(TextSend(b.id(), "rl5", "m")), "rate_limited"));
  testing::ApiResponse rest =
      api_->Post("/messages",
                 "{\"to\":{\"user\":" + testing::JsonString(b.id()) +
                     "},\"client_msg_id\":\"rl6\",\"body\":{\"text\":\"m\"}}",
                 a.token());
  EXPECT_TRUE(testing::IsError(rest, 429, "rate_limited"));
  // Other ops are not limited and the sessions stay open.
  EXPECT_TRUE(Pings(*wa));
  EXPECT_TRUE(Pings(*wa2));
  // A refused send stored nothing.
  auto hist = api_->Get("/conversations/" + conv + "/messages?after_seq=0", a.token());
  ASSERT_EQ(hist.status, 200) << hist.Describe();
  EXPECT_EQ(testing::Arr(hist.json.as_object(), "messages")->size(), 3u);
}

TEST_F(WsRateLimitE2eTest, RepeatedAbuseClosesWith4029) {
  auto [a, b, conv] = NewPair("abuse");
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  for (int i = 1; i <= 12; ++i) {
    json::object f = TextSend(b.id(), "ab" + std::to_string(i), "spam");
    f["rid"] = i;
    if (!wa->Send(f)) break;  // the server may have closed already
  }
  auto code = wa->CloseCode();
  ASSERT_TRUE(code) << wa->last_error();
  EXPECT_EQ(*code, 4029);
  int ok = 0, limited = 0;
  for (const auto& f : wa->buffered()) {
    if (IsSendResult(f)) ++ok;
    if (IsErrorReply(f, "rate_limited")) ++limited;
  }
  // The three accepted sends are answered before the close ("the server
  // answers each rid exactly once"), and stored.
  EXPECT_EQ(ok, 3) << "accepted sends left unanswered by the 4029 close";
  EXPECT_GE(limited, 4);
  // A new socket works (the limit is on sends, not on connecting).
  auto again = OpenWs(a.token());
  ASSERT_TRUE(again) << server_->Logs().substr(0, 4000);
  EXPECT_TRUE(Pings(*again));
  EXPECT_EQ(testing::SyncAll(*again, conv, 0, 50).size(), 3u);
}

}  // namespace
}  // namespace mpim
