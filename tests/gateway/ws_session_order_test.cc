// WsSession's ordered delivery around the hello (protocol.md section 3,
// "Ordering and delivery guarantees"), on fakes: a connection that records
// its frames and runs posted tasks when the test says, and services that
// answer from canned data. Pushes are handed to the session in a chosen
// order, as racing fan-outs (a cold member cache after a restart) may.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../service/sqlite_store_test.h"
#include "gateway/session_registry.h"
#include "gateway/ws_session.h"
#include "route/local_presence.h"
#include "route/memory_route_table.h"

namespace mpim::gateway {
namespace {

namespace json = boost::json;

class FakeConnection : public net::WsConnection {
 public:
  FakeConnection() { request_.headers.emplace_back("authorization", "Bearer t"); }

  uint64_t id() const override { return 7; }
  const void* loop() const override { return this; }
  const net::HttpRequest& request() const override { return request_; }
  void SetHandler(std::shared_ptr<net::WsHandler> handler) override { handler_ = handler; }
  bool Write(std::string_view text, bool) override {
    frames.emplace_back(text);
    return true;
  }
  bool writing() const override { return false; }
  size_t buffered() const override { return 0; }
  bool closing() const override { return closed; }
  void Close(uint16_t, std::string_view) override { closed = true; }
  void Drain(uint16_t, std::string_view) override { closed = true; }
  void Post(absl::AnyInvocable<void()> fn) override { posted_.push_back(std::move(fn)); }

  // Runs the posted tasks (and those they post) in order.
  void RunPosted() {
    while (!posted_.empty()) {
      auto fn = std::move(posted_.front());
      posted_.pop_front();
      fn();
    }
  }
  // Destroys the posted tasks unrun, as a stopped io thread's are.
  void DropPosted() { posted_.clear(); }
  // (op, seq) of each frame written.
  std::vector<std::string> Ops() const {
    std::vector<std::string> out;
    for (const auto& f : frames) {
      json::object o = json::parse(f).as_object();
      std::string op(o.at("op").as_string());
      if (op == "msg") op += " " + std::to_string(o.at("seq").as_int64());
      out.push_back(op);
    }
    return out;
  }

  std::vector<std::string> frames;
  bool closed = false;

 private:
  net::HttpRequest request_;
  std::weak_ptr<net::WsHandler> handler_;
  std::deque<absl::AnyInvocable<void()>> posted_;
};

class FakeAuth : public service::AuthService {
 public:
  void Register(service::RegisterRequest, core::Callback<int64_t>) override {}
  void Login(service::LoginRequest, core::Callback<service::LoginResult>) override {}
  void Refresh(std::string, core::Callback<service::TokenPair>) override {}
  void Logout(service::Principal, core::DoneCallback) override {}
  core::StatusOr<service::Principal> Authenticate(std::string_view) const override {
    return service::Principal{1, 11};
  }
};

// Keeps each send's callbacks for the test to run. `order_inline`: Send
// runs `ordered` before it returns (no store read before the append).
class FakeMessages : public service::MessageService {
 public:
  struct Call {
    std::string client_msg_id;
    core::Callback<service::SendResult> done;
    OrderedCallback ordered;
  };
  void Send(service::Principal, service::SendRequest request,
            core::Callback<service::SendResult> done, OrderedCallback ordered) override {
    calls.push_back(Call{request.client_msg_id, std::move(done), std::move(ordered)});
    if (order_inline) std::move(calls.back().ordered)();
  }
  void PostSystem(int64_t, int64_t, std::string, core::Callback<store::Message>) override {}
  void Recall(service::Principal, int64_t, core::Callback<store::Message>) override {}

  bool order_inline = true;
  std::vector<Call> calls;
};

class FakeConversations : public service::ConversationService {
 public:
  void List(service::Principal, int,
            core::Callback<std::vector<service::ConversationView>>) override {}
  void History(service::Principal, std::string, std::optional<int64_t>, std::optional<int64_t>, int,
               core::Callback<service::MessagePage>) override {}
  void Sync(service::Principal, std::string, int64_t, int,
            core::Callback<service::MessagePage>) override {
    ++syncs;
  }
  void Read(service::Principal, std::string, int64_t, route::ConnId,
            core::Callback<int64_t>) override {}
  void Ack(service::Principal, std::string, int64_t, core::DoneCallback) override {}
  void Typing(service::Principal, std::string, core::DoneCallback) override {}
  void Update(service::Principal, std::string, std::optional<bool>, std::optional<bool>,
              core::DoneCallback) override {}
  void Search(service::Principal, std::string, std::optional<std::string>, int,
              core::Callback<std::vector<store::Message>>) override {}
  void Pending(service::Principal,
               core::Callback<std::vector<store::PendingConversation>> done) override {
    pending_done = std::move(done);
  }
  // Answers the hello's Pending query with `pending`.
  void AnswerPending() { std::move(pending_done)(pending); }

  std::vector<store::PendingConversation> pending;
  core::Callback<std::vector<store::PendingConversation>> pending_done;
  int syncs = 0;
};

class NoDeliverer : public service::Deliverer {
 public:
  void Message(const std::vector<int64_t>&, route::ConnId, const store::Message&, bool,
               service::Priority) override {}
  void Receipt(const std::vector<int64_t>&, route::ConnId, const std::string&, int64_t,
               int64_t) override {}
  void Typing(const std::vector<int64_t>&, const std::string&, int64_t) override {}
  void Presence(const std::vector<route::ConnId>&, int64_t, bool, int64_t) override {}
  void Conv(const std::vector<int64_t>&, const std::string&, const std::string&) override {}
  void Recall(const std::vector<int64_t>&, const std::string&, int64_t, int64_t) override {}
  void Kick(int64_t, int64_t, const std::string&) override {}
};

class WsSessionOrderTest : public service::testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    if (HasFatalFailure()) return;
    presence_ = std::make_unique<route::LocalPresence>(store_->users(), nullptr);
    ctx_ = std::make_unique<GatewayContext>(GatewayContext{
        auth_, messages_, conversations_, *presence_, routes_, registry_, core::GatewayConfig{}});
  }
  void TearDown() override {
    session_.reset();
    SqliteStoreTest::TearDown();
  }

  // Opens the session (header token); its Pending query waits for
  // conversations_.AnswerPending(), with `pending` as the hello list.
  void Open(std::vector<store::PendingConversation> pending) {
    conversations_.pending = std::move(pending);
    session_ = std::make_shared<WsSession>(*ctx_, conn_);
    conn_->SetHandler(session_);
    session_->OnOpen();
    conn_->RunPosted();  // the route is added; the hello's Pending query starts
  }
  // Opens the session with nothing pending and lets its hello out.
  void OpenWithEmptyHello() {
    Open({});
    conversations_.AnswerPending();
    conn_->RunPosted();
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

  FakeAuth auth_;
  FakeMessages messages_;
  FakeConversations conversations_;
  NoDeliverer deliverer_;
  route::MemoryRouteTable routes_;
  SessionRegistry registry_;
  std::unique_ptr<route::LocalPresence> presence_;
  std::unique_ptr<GatewayContext> ctx_;
  std::shared_ptr<FakeConnection> conn_ = std::make_shared<FakeConnection>();
  std::shared_ptr<WsSession> session_;
};

TEST_F(WsSessionOrderTest, AListedConversationGoesOnFromTheHellosLastSeqEvenIfPushesRace) {
  Open({{"g:5", /*last_seq=*/10, /*read_seq=*/0, /*delivered_seq=*/4}});
  conversations_.AnswerPending();
  conn_->RunPosted();
  ASSERT_EQ(conn_->Ops(), std::vector<std::string>{"hello"});
  // 12 is pushed before 11: it waits for 11 instead of starting the socket
  // at 12 (which dropped 11 as already handed on); 9 is covered by hello.
  Push("g:5", 12);
  Push("g:5", 9);
  Push("g:5", 11);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), (std::vector<std::string>{"hello", "msg 11", "msg 12"}));
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
  EXPECT_EQ(conn_->Ops(), (std::vector<std::string>{"hello", "msg 11", "msg 12"}));
}

TEST_F(WsSessionOrderTest, AGapAfterTheHellosLastSeqIsFilledFromTheStore) {
  Open({{"g:5", /*last_seq=*/10, /*read_seq=*/0, /*delivered_seq=*/4}});
  conversations_.AnswerPending();
  conn_->RunPosted();
  Push("g:5", 12);
  conn_->RunPosted();
  EXPECT_EQ(conn_->Ops(), std::vector<std::string>{"hello"});
  session_->OnTick(std::numeric_limits<int64_t>::max() / 2);  // past gateway.gap_wait_ms
  EXPECT_EQ(conversations_.syncs, 1) << "11 is read from the store";
}

TEST_F(WsSessionOrderTest, DeliverMessagesSaysWhenTakenAlsoIfTheIoThreadNeverRunsIt) {
  // A fan-out batch waits for `taken` before the next one (backpressure):
  // it must come once the session has the messages, and also when the io
  // thread stops and drops the task unrun (shutdown), or the waiter hangs.
  Open({{"g:5", /*last_seq=*/10, /*read_seq=*/0, /*delivered_seq=*/4}});
  conversations_.AnswerPending();
  conn_->RunPosted();
  int taken = 0;
  WsSession::DeliverMessages({session_}, {Out("g:5", 11), Out("g:5", 12)}, [&] { ++taken; });
  EXPECT_EQ(taken, 0) << "not before the io thread ran it";
  conn_->RunPosted();
  EXPECT_EQ(taken, 1);
  EXPECT_EQ(conn_->Ops(), (std::vector<std::string>{"hello", "msg 11", "msg 12"}));
  WsSession::DeliverMessages({session_}, {Out("g:5", 13)}, [&] { ++taken; });
  conn_->DropPosted();
  EXPECT_EQ(taken, 2);
  // Nobody left to deliver to: at once.
  WsSession::DeliverMessages({}, {Out("g:5", 14)}, [&] { ++taken; });
  EXPECT_EQ(taken, 3);
}

std::string SendFrame(int rid) {
  return "{\"op\":\"send\",\"rid\":" + std::to_string(rid) +
         ",\"to\":{\"user\":\"2\"},\"client_msg_id\":\"c" + std::to_string(rid) +
         "\",\"body\":{\"text\":\"x\"}}";
}

service::SendResult Result(int64_t seq) { return {100 + seq, "p:1:2", seq, 1}; }

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
  EXPECT_EQ(conn_->Ops(), (std::vector<std::string>{"hello", "reply", "reply", "reply"}));
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

}  // namespace
}  // namespace mpim::gateway
