// WsSession end to end on fakes (tests/support/fakes): a connection that
// records its frames and runs posted tasks when the test says, services
// that keep their callbacks for the test to answer, and a ManualClock.
// Pushes are handed to the session in a chosen order, as racing fan-outs
// (a cold member cache after a restart) may; gap fills are answered with
// messages, an empty page or an error.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "gateway/message_json.h"
#include "gateway/session_registry.h"
#include "gateway/ws_session.h"
#include "route/memory_route_table.h"
#include "support/fakes/fake_connection.h"
#include "support/fakes/fake_presence.h"
#include "support/fakes/fake_services.h"

namespace mpim::gateway {
namespace {

using Ops = std::vector<std::string>;

class WsSessionOrderTest : public ::testing::Test {
 protected:
  // Opens the session (header token); its Pending query waits for
  // conversations_.AnswerPending(), with `pending` as the hello list.
  void Open(std::vector<store::PendingConversation> pending) {
    conversations_.pending = std::move(pending);
    session_ = std::make_shared<WsSession>(ctx_, conn_);
    conn_->SetHandler(session_);
    session_->OnOpen();
    conn_->RunPosted();  // the route is added; the hello's Pending query starts
  }
  // Opens the session with `pending` as the hello list and lets the hello out.
  void OpenWithHello(std::vector<store::PendingConversation> pending) {
    Open(std::move(pending));
    conversations_.AnswerPending();
    conn_->RunPosted();
  }
  void OpenWithEmptyHello() { OpenWithHello({}); }
  // The hello lists g:5 up to seq 10.
  void OpenWithG5AtTen() {
    OpenWithHello({{"g:5", /*last_seq=*/10, /*read_seq=*/0, /*delivered_seq=*/4}});
  }

  static std::shared_ptr<const OutMessage> Out(const std::string& conv_id, int64_t seq) {
    auto m = std::make_shared<OutMessage>();
    m->conv_id = conv_id;
    m->seq = seq;
    m->frame =
        std::make_shared<const std::string>("{\"op\":\"msg\",\"seq\":" + std::to_string(seq) + "}");
    return m;
  }
  void Push(const std::string& conv_id, int64_t seq) {
    WsSession::DeliverMessage({session_}, Out(conv_id, seq));
  }
  // From the hello at g:5's 10, `seq` is pushed and held until a fill of
  // the gap before it starts (gap_wait_ms later).
  void HoldUntilFill(int64_t seq) {
    OpenWithG5AtTen();
    Push("g:5", seq);
    conn_->RunPosted();
    Tick(250);
    ASSERT_EQ(conversations_.syncs.size(), 1u);
  }
  // Moves the clock on and ticks the session.
  void Tick(int64_t advance_ms) {
    clock_.AdvanceMs(advance_ms);
    session_->OnTick(clock_.SteadyMs());
  }
  // A store page of g:5 with seqs from..to.
  static service::MessagePage Page(int64_t from, int64_t to, bool has_more = false) {
    service::MessagePage page;
    for (int64_t seq = from; seq <= to; ++seq) {
      store::Message m;
      m.msg_id = 1000 + seq;
      m.conv_id = "g:5";
      m.seq = seq;
      m.sender = 2;
      m.recipient = 5;
      m.type = "text";
      m.body = "{\"text\":\"x\"}";
      page.messages.push_back(std::move(m));
    }
    page.has_more = has_more;
    return page;
  }

  core::ManualClock clock_{1'700'000'000'000, 1000};
  testing::FakeAuth auth_;
  testing::FakeMessages messages_;
  testing::FakeConversations conversations_;
  testing::FakePresence presence_;
  route::MemoryRouteTable routes_;
  SessionRegistry registry_;
  GatewayContext ctx_{
      auth_,   messages_, conversations_, presence_, routes_, registry_, core::GatewayConfig{}, 200,
      nullptr, 0,         clock_};
  std::shared_ptr<testing::FakeConnection> conn_ = std::make_shared<testing::FakeConnection>();
  std::shared_ptr<WsSession> session_;
};

TEST_F(WsSessionOrderTest, AListedConversationGoesOnFromTheHellosLastSeqEvenIfPushesRace) {
  OpenWithG5AtTen();
  ASSERT_EQ(conn_->Ops(), Ops{"hello"});
  EXPECT_EQ(presence_.online[1], 1) << "registered";
  // 12 is pushed before 11: it waits for 11 instead of starting the socket
  // at 12 (which dropped 11 as already handed on); 9 is covered by hello.
  Push("g:5", 12);
  Push("g:5", 9);
  Push("g:5", 11);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, AnUnlistedConversationStartsFromTheStoresCursorNotTheFirstPush) {
  // Issue 19: across nodes, pushes of one conversation from different
  // senders' nodes cross. 12 arrives before 11 in a conversation the hello
  // did not list: the session asks where it starts (StartSeq) and holds
  // both until the answer, instead of starting at 12 and dropping 11.
  OpenWithEmptyHello();
  Push("g:7", 12);
  conn_->RunPosted();
  ASSERT_EQ(conversations_.starts.size(), 1u);
  EXPECT_EQ(conversations_.starts[0].conv_id, "g:7");
  Push("g:7", 11);
  Push("g:7", 10);
  conn_->RunPosted();
  EXPECT_EQ(conversations_.starts.size(), 1u) << "asked once";
  EXPECT_EQ(conn_->Ops(), Ops{"hello"});
  std::move(conversations_.start_done[0])(int64_t{10});  // acked up to 10 earlier
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
  Push("g:7", 13);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12", "msg 13"}));
}

TEST_F(WsSessionOrderTest, AnUnreadableStartGoesOnFromTheFirstHeldPush) {
  OpenWithEmptyHello();
  Push("g:7", 12);
  Push("g:7", 11);
  conn_->RunPosted();
  ASSERT_EQ(conversations_.start_done.size(), 1u);
  std::move(conversations_.start_done[0])(absl::UnavailableError("store down"));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, PushesBeforeTheHelloAreOrderedFromItsLastSeqToo) {
  Open({{"g:5", /*last_seq=*/10, /*read_seq=*/0, /*delivered_seq=*/4}});
  // Pushed while the hello list is read (registered, no hello yet).
  Push("g:5", 12);
  Push("g:5", 10);
  conn_->RunPosted();
  conversations_.AnswerPending();
  conn_->RunPosted();
  Push("g:5", 11);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, AGapIsFilledFromTheStoreAfterGapWait) {
  OpenWithG5AtTen();
  Push("g:5", 12);
  conn_->RunPosted();
  Tick(249);
  EXPECT_TRUE(conversations_.syncs.empty()) << "before gateway.gap_wait_ms";
  Tick(1);
  ASSERT_EQ(conversations_.syncs.size(), 1u);
  EXPECT_EQ(conversations_.syncs[0].conv_id, "g:5");
  EXPECT_EQ(conversations_.syncs[0].after_seq, 10);
  EXPECT_EQ(conversations_.syncs[0].limit, 2) << "up to the held message";
  Tick(1000);
  EXPECT_EQ(conversations_.syncs.size(), 1u) << "one fill at a time";
  conversations_.AnswerSync(0, Page(11, 11));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
  // A filled message is qos 1 like any: unacked, it is sent again.
  Tick(10000);
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, WhatTheStoreDoesNotHaveIsSkipped) {
  HoldUntilFill(13);
  EXPECT_EQ(conversations_.syncs[0].limit, 3);
  conversations_.AnswerSync(0, service::MessagePage{});
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 13"}));
  // The conversation goes on from there.
  Push("g:5", 14);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 13", "msg 14"}));
}

TEST_F(WsSessionOrderTest, AFailedFillSkipsNothingAndIsTriedAgain) {
  HoldUntilFill(12);
  conversations_.AnswerSync(0, absl::UnavailableError("disk busy"));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), Ops{"hello"});
  Tick(249);
  EXPECT_EQ(conversations_.syncs.size(), 1u) << "waits another gap_wait_ms";
  Tick(1);
  ASSERT_EQ(conversations_.syncs.size(), 2u);
  EXPECT_EQ(conversations_.syncs[1].after_seq, 10);
  conversations_.AnswerSync(1, Page(11, 11));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, AGapLongerThanAPageIsFilledPageByPage) {
  // Was: the first page (page_max messages) went out and the rest of the
  // gap was skipped, though the store had it.
  HoldUntilFill(400);
  EXPECT_EQ(conversations_.syncs[0].limit, 200);
  conversations_.AnswerSync(0, Page(11, 210, /*has_more=*/true));
  conn_->RunPosted();
  ASSERT_EQ(conversations_.syncs.size(), 2u) << "the next page at once";
  EXPECT_EQ(conversations_.syncs[1].after_seq, 210);
  EXPECT_EQ(conversations_.syncs[1].limit, 190);
  conversations_.AnswerSync(1, Page(211, 399, /*has_more=*/true));
  conn_->RunPosted();
  Ops ops = conn_->Ops();
  ASSERT_EQ(ops.size(), 1u + 390u);
  for (int64_t seq = 11; seq <= 400; ++seq) {
    ASSERT_EQ(ops[static_cast<size_t>(seq - 10)], "msg " + std::to_string(seq));
  }
}

TEST_F(WsSessionOrderTest, DeliverMessagesSaysWhenTakenAlsoIfTheIoThreadNeverRunsIt) {
  // A fan-out batch waits for `taken` before the next one (backpressure):
  // it must come once the session has the messages, and also when the io
  // thread stops and drops the task unrun (shutdown), or the waiter hangs.
  OpenWithG5AtTen();
  int taken = 0;
  WsSession::DeliverMessages({session_}, {Out("g:5", 11), Out("g:5", 12)}, [&] { ++taken; });
  EXPECT_EQ(taken, 0) << "not before the io thread ran it";
  conn_->RunPosted();
  EXPECT_EQ(taken, 1);
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 11", "msg 12"}));
  WsSession::DeliverMessages({session_}, {Out("g:5", 13)}, [&] { ++taken; });
  conn_->DropPosted();
  EXPECT_EQ(taken, 2);
  // Nobody left to deliver to: at once.
  WsSession::DeliverMessages({}, {Out("g:5", 14)}, [&] { ++taken; });
  EXPECT_EQ(taken, 3);
}

TEST_F(WsSessionOrderTest, AnAckStopsTheResendsOfWhatItCovers) {
  OpenWithG5AtTen();
  Push("g:5", 11);
  Push("g:5", 12);
  conn_->RunPosted();
  session_->OnText(R"({"op":"ack","conv_id":"g:5","seq":11})");
  ASSERT_EQ(conversations_.acks.size(), 1u);
  EXPECT_EQ(conversations_.acks[0].seq, 11);
  conn_->ClearFrames();
  Tick(10000);
  EXPECT_EQ(conn_->Ops(), Ops{"msg 12"});
  session_->OnText(R"({"op":"ack","conv_id":"g:5","seq":12})");
  Tick(20000);
  EXPECT_EQ(conn_->Ops(), Ops{"msg 12"}) << "nothing more";
}

TEST_F(WsSessionOrderTest, ABacklogAboveTheQueueBoundClosesWith4008) {
  ctx_.config.send_queue_max_bytes = 100;
  OpenWithG5AtTen();
  conn_->full = true;  // the client stopped reading
  for (int64_t seq = 11; seq <= 20; ++seq) Push("g:5", seq);
  conn_->RunPosted();
  ASSERT_TRUE(conn_->closed);
  EXPECT_EQ(conn_->close_code, 4008);
  EXPECT_EQ(conn_->close_reason, "slow consumer");
}

TEST_F(WsSessionOrderTest, AKickGoesOutAloneThenTheSocketCloses) {
  OpenWithG5AtTen();
  conn_->full = true;
  Push("g:5", 11);
  conn_->RunPosted();
  session_->DeliverKick("logout");
  conn_->RunPosted();
  conn_->full = false;
  session_->OnWritable();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "kick"}));
  EXPECT_EQ(conn_->close_code, 4003);
  EXPECT_EQ(conn_->close_reason, "kicked: logout");
}

std::string SendFrame(int rid, const std::string& to = R"({"user":"2"})") {
  return "{\"op\":\"send\",\"rid\":" + std::to_string(rid) + ",\"to\":" + to +
         ",\"client_msg_id\":\"c" + std::to_string(rid) + "\",\"body\":{\"text\":\"x\"}}";
}

service::SendResult Result(int64_t seq, std::string conv_id = "p:1:2") {
  return {100 + seq, std::move(conv_id), seq, 1};
}

TEST_F(WsSessionOrderTest, TheSessionsOwnMessageClosesAGap) {
  // The sender gets the reply for its own message, not the msg event: the
  // message after it is no gap.
  OpenWithG5AtTen();
  Push("g:5", 12);
  conn_->RunPosted();
  session_->OnText(SendFrame(1, R"({"group":"5"})"));
  ASSERT_EQ(messages_.calls.size(), 1u);
  std::move(messages_.calls[0].done)(Result(11, "g:5"));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "msg 12", "reply"}));
  Tick(1000);
  EXPECT_TRUE(conversations_.syncs.empty()) << "no fill";
}

TEST_F(WsSessionOrderTest, SendsArePipelinedOnceEachHasItsPlaceInTheStore) {
  OpenWithEmptyHello();
  // Appended at once (no store read first): all three are in flight
  // before the first reply.
  for (int rid = 1; rid <= 3; ++rid) session_->OnText(SendFrame(rid));
  ASSERT_EQ(messages_.calls.size(), 3u);
  EXPECT_EQ(messages_.calls[2].client_msg_id, "c3");
  // Replies go out as each completes.
  for (int64_t i = 0; i < 3; ++i) std::move(messages_.calls[i].done)(Result(i + 1));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "reply", "reply", "reply"}));
}

TEST_F(WsSessionOrderTest, ASendWaitsUntilTheOneBeforeHasItsPlace) {
  OpenWithEmptyHello();
  messages_.order_inline = false;  // each send reads the store before it appends
  for (int rid = 1; rid <= 3; ++rid) session_->OnText(SendFrame(rid));
  ASSERT_EQ(messages_.calls.size(), 1u);
  // The first is queued in the store: the second starts, the third waits.
  std::move(messages_.calls[0].ordered)();
  conn_->RunPosted();
  ASSERT_EQ(messages_.calls.size(), 2u);
  EXPECT_EQ(messages_.calls[1].client_msg_id, "c2");
  // The second fails before it is ordered (blocked, say): the third starts.
  std::move(messages_.calls[1].done)(absl::PermissionDeniedError("blocked"));
  conn_->RunPosted();
  ASSERT_EQ(messages_.calls.size(), 3u);
  // The first one's late reply does not let a fourth pass the third.
  session_->OnText(SendFrame(4));
  std::move(messages_.calls[0].done)(Result(1));
  conn_->RunPosted();
  EXPECT_EQ(messages_.calls.size(), 3u);
  std::move(messages_.calls[2].ordered)();
  conn_->RunPosted();
  EXPECT_EQ(messages_.calls.size(), 4u);
}

TEST_F(WsSessionOrderTest, AtMost64SendsOfASessionAreInFlight) {
  OpenWithEmptyHello();
  for (int rid = 1; rid <= 70; ++rid) session_->OnText(SendFrame(rid));
  ASSERT_EQ(messages_.calls.size(), 64u);
  // One reply makes room for one more.
  std::move(messages_.calls[0].done)(Result(1));
  conn_->RunPosted();
  EXPECT_EQ(messages_.calls.size(), 65u);
  EXPECT_EQ(messages_.calls[64].client_msg_id, "c65");
}

TEST_F(WsSessionOrderTest, ADrainAnswersTheSendsInFlightRefusesTheWaitingOnesThenCloses) {
  OpenWithEmptyHello();
  messages_.order_inline = false;
  session_->OnText(SendFrame(1));
  session_->OnText(SendFrame(2));  // waits for 1's place
  session_->OnDrain(1012, "server restarting");
  EXPECT_FALSE(conn_->closed) << "a reply is owed";
  std::move(messages_.calls[0].ordered)();
  conn_->RunPosted();
  EXPECT_EQ(messages_.calls.size(), 1u) << "2 is not handed to the store";
  std::move(messages_.calls[0].done)(Result(1));
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (Ops{"hello", "reply unavailable", "reply"}));
  EXPECT_EQ(conn_->close_code, 1012);
  // The client is slow to answer the close: the drain limit passes.
  // Was: a second close, counted as a 1011 in mpim_ws_closes_total.
  Tick(6000);
  EXPECT_EQ(conn_->close_calls, 1);
}

TEST_F(WsSessionOrderTest, ADrainThatRunsOutOfTimeClosesAsAnnounced) {
  // Was: the close after the 5 s limit said "closing" instead of the reason
  // the drain announced (protocol.md, close codes).
  OpenWithEmptyHello();
  session_->OnText(SendFrame(1));  // never answered
  session_->OnDrain(1012, "server restarting");
  Tick(5000);
  EXPECT_FALSE(conn_->closed);
  Tick(1);
  EXPECT_EQ(conn_->close_code, 1012);
  EXPECT_EQ(conn_->close_reason, "server restarting");
}

}  // namespace
}  // namespace mpim::gateway
