// End-to-end: what survives the server process (docs/protocol.md
// section 3: "A reply with ok:true means the message is durable", idempotent
// `send` "even after ... a server restart", close code 1012;
// docs/protocol.md: SIGTERM closes every socket with 1012). Each test runs
// its own server on data it keeps across restarts: `mpim serve` on a data
// dir, or with MPIM_E2E_TARGET=cluster a `mpim cluster up` whose every node
// is killed or stopped and restarted (support/restart_target.h; the two
// users of a conversation on two gateways).
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json/serialize.hpp>
#include <map>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/restart_target.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::Int;
using testing::IsSendResult;
using testing::Ms;
using testing::MsgOf;
using testing::PrivateConvId;
using testing::Str;
using testing::TextSend;
using testing::UniqueName;
using testing::WsAuth;
using testing::WsConn;

namespace json = boost::json;

class WsDurabilityE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure()) std::printf("server logs:\n%s\n", target_.Logs().c_str());
  }

  // The server on the kept data (the first time, or again).
  bool Start() {
    if (target_.Start()) return true;
    ADD_FAILURE() << "server did not start: " << target_.error();
    return false;
  }

  // A session on the k-th client-facing port (gateways in turn).
  std::unique_ptr<WsConn> Open(size_t k, const std::string& token, WsAuth how = WsAuth::kHeader) {
    auto ws = std::make_unique<WsConn>(target_.port(k));
    if (auto ok = ws->Open(token, how); !ok) {
      ADD_FAILURE() << ok.message();
      return nullptr;
    }
    return ws;
  }

  struct Pair {
    Account a, b;
    std::string conv;
  };
  Pair NewPair(std::string_view prefix) {
    ApiClient api(target_.port());
    Pair p{api.NewAccount(UniqueName(std::string(prefix) + "_a")),
           api.NewAccount(UniqueName(std::string(prefix) + "_b")), ""};
    p.conv = PrivateConvId(p.a.id(), p.b.id());
    return p;
  }

  testing::RestartTarget target_{testing::WsEnv(
      {{"MPIM_LIMITS_SEND_PER_SEC", "100000"}, {"MPIM_LIMITS_SEND_BURST", "100000"}})};
};

TEST_F(WsDurabilityE2eTest, EveryAcknowledgedMessageSurvivesKillNine) {
  ASSERT_TRUE(Start());
  auto [a, b, conv] = NewPair("k9");
  auto wa = Open(0, a.token());
  ASSERT_TRUE(wa);
  // Pipeline 400 sends; kill -9 once 200 replies are in, with the rest in
  // flight, then keep every reply that made it out.
  constexpr int kSent = 400;
  for (int i = 1; i <= kSent; ++i) {
    json::object f = TextSend(b.id(), "k" + std::to_string(i), "survive " + std::to_string(i));
    f["rid"] = i;
    ASSERT_TRUE(wa->Send(f)) << wa->last_error();
  }
  std::map<std::string, json::object> acked;  // client_msg_id -> reply
  for (int i = 1; i <= 200; ++i) {
    auto r = wa->ReplyTo(i);
    ASSERT_TRUE(IsSendResult(r)) << i << " " << wa->last_error();
    acked["k" + std::to_string(i)] = *r;
  }
  ASSERT_TRUE(target_.Kill());
  for (int i = 201; i <= kSent; ++i) {
    auto r = wa->ReplyTo(i, Ms(2000));
    if (!r) break;  // the connection is gone
    if (IsSendResult(r)) acked["k" + std::to_string(i)] = *r;
  }
  wa.reset();

  ASSERT_TRUE(Start());
  ApiClient api(target_.port(1));
  auto history = testing::History(api, b.token(), conv);
  std::map<std::string, json::object> stored;
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(Int(history[i], "seq"), static_cast<int64_t>(i + 1)) << "a gap or reuse in seq";
    stored[Str(history[i], "client_msg_id")] = history[i];
  }
  EXPECT_GE(history.size(), acked.size());
  int missing = 0;
  for (const auto& [cmid, reply] : acked) {
    auto it = stored.find(cmid);
    if (it == stored.end()) {
      ++missing;
      continue;
    }
    EXPECT_EQ(Str(it->second, "msg_id"), Str(reply, "msg_id")) << cmid;
    EXPECT_EQ(Int(it->second, "seq"), Int(reply, "seq")) << cmid;
  }
  EXPECT_EQ(missing, 0) << "acknowledged messages lost by kill -9 (of " << acked.size() << ")";
  // Resending an acknowledged client_msg_id after the crash: the same result.
  auto wa2 = Open(0, a.token(), WsAuth::kQuery);
  ASSERT_TRUE(wa2);
  auto again = wa2->Request(TextSend(b.id(), "k1", "survive 1"));
  ASSERT_TRUE(IsSendResult(again));
  EXPECT_EQ(Str(*again, "msg_id"), Str(acked["k1"], "msg_id"));
  EXPECT_EQ(Int(*again, "seq"), 1);
  // And the recipient's hello lists the conversation at the stored last seq.
  auto wb = Open(1, b.token());
  ASSERT_TRUE(wb);
  EXPECT_EQ(wb->HelloLastSeq(conv), static_cast<int64_t>(history.size()));
}

TEST_F(WsDurabilityE2eTest, SameClientMsgIdAfterARestartIsTheSameMessage) {
  ASSERT_TRUE(Start());
  auto [a, b, conv] = NewPair("rs");
  auto wa = Open(0, a.token());
  ASSERT_TRUE(wa);
  auto first = wa->Request(TextSend(b.id(), "restart-1", "before"));
  ASSERT_TRUE(IsSendResult(first));
  wa.reset();
  ASSERT_EQ(target_.Terminate(), 0);

  ASSERT_TRUE(Start());
  auto wb = Open(1, b.token());
  wa = Open(0, a.token(), WsAuth::kFrame);
  ASSERT_TRUE(wa && wb);
  auto again = wa->Request(TextSend(b.id(), "restart-1", "before"));
  ASSERT_TRUE(IsSendResult(again));
  for (const char* k : {"msg_id", "conv_id", "seq", "ts"}) {
    EXPECT_EQ(again->at(k), first->at(k)) << k;
  }
  auto next = wa->Request(TextSend(b.id(), "restart-2", "after"));
  ASSERT_TRUE(IsSendResult(next));
  EXPECT_EQ(Int(*next, "seq"), Int(*first, "seq") + 1);
  // B, online, gets only the new message live.
  auto m = wb->NextMsg(conv);
  ASSERT_TRUE(m) << wb->last_error();
  EXPECT_EQ(Str(MsgOf(*m), "client_msg_id"), "restart-2");
  ApiClient api(target_.port());
  auto history = testing::History(api, a.token(), conv);
  ASSERT_EQ(history.size(), 2u);
  EXPECT_EQ(Str(history[0], "client_msg_id"), "restart-1");
}

TEST_F(WsDurabilityE2eTest, SigtermClosesEverySocketWith1012AndExitsZero) {
  ASSERT_TRUE(Start());
  auto [a, b, conv] = NewPair("term");
  auto w1 = Open(0, a.token());
  auto w2 = Open(1, b.token(), WsAuth::kQuery);
  auto w3 = Open(2, a.token(), WsAuth::kFrame);
  WsConn unauthenticated(target_.port(3));
  ASSERT_TRUE(w1 && w2 && w3);
  ASSERT_TRUE(unauthenticated.Connect().ok());
  EXPECT_EQ(target_.Terminate(), 0);
  for (WsConn* ws : {w1.get(), w2.get(), w3.get(), &unauthenticated}) {
    auto code = ws->CloseCode(Ms(10000));
    ASSERT_TRUE(code) << ws->last_error();
    EXPECT_EQ(*code, 1012);
  }
}

}  // namespace
}  // namespace mpim
