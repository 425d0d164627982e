// End-to-end: WebSocket sessions against the real `mpim` binary
// (docs/protocol.md section 3 "WebSocket API", "Close codes";
// docs/protocol.md section 3 "Connecting and authenticating", "Frames"): the three
// ways to authenticate, hello, the auth deadline, bad frames, the frame
// limit, app-level ping, logout kicks, heartbeats.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::IsErrorReply;
using testing::IsOkReply;
using testing::Ms;
using testing::Pings;
using testing::Str;
using testing::WsAuth;
using testing::WsConn;

namespace json = boost::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct SessionConfig {
  static auto Env() { return testing::WsEnv({{"MPIM_GATEWAY_AUTH_TIMEOUT_MS", "1000"}}); }
};

class WsSessionE2eTest : public testing::WsServerTest<SessionConfig> {};

TEST_F(WsSessionE2eTest, EachAuthMethodGetsHelloWithTheSessionFields) {
  Account a = NewAccount("hello");
  for (WsAuth how : {WsAuth::kHeader, WsAuth::kQuery, WsAuth::kFrame}) {
    SCOPED_TRACE(testing::WsAuthName(how));
    WsConn ws(port());
    ASSERT_TRUE(ws.Open(a.token(), how));
    EXPECT_EQ(Str(ws.hello(), "user_id"), a.id());
    EXPECT_EQ(Str(ws.hello(), "session_id"), a.session.session_id);
    EXPECT_TRUE(testing::Arr(ws.hello(), "conversations")->empty()) << json::serialize(ws.hello());
    if (how == WsAuth::kFrame) {
      EXPECT_EQ(Str(ws.hello(), "op"), "reply");
    }
    EXPECT_TRUE(Pings(ws));
    // The auth reply carries the hello fields; no separate hello follows.
    EXPECT_TRUE(ws.Drain("hello", Ms(300)).empty());
  }
}

TEST_F(WsSessionE2eTest, OpsBeforeAuthAreUnauthenticatedAndAuthStillWorksAfter) {
  Account a = NewAccount("preauth");
  WsConn ws(port());
  ASSERT_TRUE(ws.Connect().ok()) << ws.last_error();
  EXPECT_TRUE(IsErrorReply(ws.Request(json::object{{"op", "ping"}}), "unauthenticated"));
  EXPECT_TRUE(IsErrorReply(ws.Request(testing::TextSend("1001", "c1", "hi")), "unauthenticated"));
  EXPECT_TRUE(
      IsErrorReply(ws.Request(json::object{{"op", "sync"}, {"conv_id", "p:1:2"}, {"after_seq", 0}}),
                   "unauthenticated"));
  auto r = ws.Request(json::object{{"op", "auth"}, {"token", a.token()}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Str(*r, "user_id"), a.id());
  EXPECT_EQ(Str(*r, "session_id"), a.session.session_id);
  EXPECT_TRUE(testing::Arr(*r, "conversations")) << json::serialize(*r);
  EXPECT_TRUE(Pings(ws));
  // A second auth after success is invalid_argument; the session goes on.
  EXPECT_TRUE(IsErrorReply(ws.Request(json::object{{"op", "auth"}, {"token", a.token()}}),
                           "invalid_argument"));
  EXPECT_TRUE(Pings(ws));
}

TEST_F(WsSessionE2eTest, NoAuthWithinTheTimeoutClosesWith4001) {
  WsConn ws(port());
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(ws.Connect().ok()) << ws.last_error();
  auto code = ws.CloseCode(Ms(5000));
  ASSERT_TRUE(code) << ws.last_error();
  EXPECT_EQ(*code, 4001);
  // Not before the configured 1 s (with a little slack for clock reads).
  EXPECT_GE(std::chrono::steady_clock::now() - start, Ms(900));
}

TEST_F(WsSessionE2eTest, BadAuthFrameTokenIsUnauthenticatedAndTheClientMayRetry) {
  Account a = NewAccount("retry");
  WsConn ws(port());
  ASSERT_TRUE(ws.Connect().ok()) << ws.last_error();
  EXPECT_TRUE(IsErrorReply(ws.Request(json::object{{"op", "auth"}, {"token", "garbage"}}),
                           "unauthenticated"));
  auto r = ws.Request(json::object{{"op", "auth"}, {"token", a.token()}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Str(*r, "user_id"), a.id());
  EXPECT_TRUE(Pings(ws));
}

TEST_F(WsSessionE2eTest, BadHeaderOrQueryTokenCompletesTheUpgradeThenClosesWith4001) {
  Account a = NewAccount("badtok");
  Account gone = NewAccount("gone");
  ASSERT_EQ(api_->Post("/auth/logout", "", gone.token()).status, 204);
  std::string tampered = a.token();
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  for (const std::string& token : {std::string("garbage"), tampered, gone.token()}) {
    for (WsAuth how : {WsAuth::kHeader, WsAuth::kQuery}) {
      SCOPED_TRACE(testing::WsAuthName(how) + std::string(" token ") + token.substr(0, 16));
      WsConn ws(port());
      EXPECT_FALSE(ws.Open(token, how));
      EXPECT_EQ(ws.client().handshake().status, 101);
      auto code = ws.CloseCode();
      ASSERT_TRUE(code) << ws.last_error();
      EXPECT_EQ(*code, 4001);
      EXPECT_TRUE(ws.Drain("hello", Ms(0)).empty());
    }
  }
}

TEST_F(WsSessionE2eTest, MalformedFramesGetInvalidArgumentAndTheSessionGoesOn) {
  Account a = NewAccount("malformed");
  auto ws = OpenWs(a.token());
  ASSERT_TRUE(ws);
  // Frames without a usable rid: the error reply has no rid.
  for (const char* text :
       {"not json", "{\"op\":\"ping\",", "[1,2,3]", "42", "\"ping\"", "null", "{\"op\":5}",
        "{\"op\":\"ping\",\"rid\":\"7\"}", "{\"op\":\"ping\",\"rid\":1.5}"}) {
    SCOPED_TRACE(text);
    ASSERT_TRUE(ws->SendText(text)) << ws->last_error();
    auto r = ws->NextEvent("reply");
    EXPECT_TRUE(IsErrorReply(r, "invalid_argument"));
    if (r) {
      EXPECT_FALSE(r->contains("rid")) << json::serialize(*r);
    }
    ASSERT_TRUE(Pings(*ws));
  }
  // Frames with a usable rid: the error is the reply to it.
  ASSERT_TRUE(ws->SendText("{\"rid\":1005}"));
  EXPECT_TRUE(IsErrorReply(ws->ReplyTo(1005), "invalid_argument"));
  ASSERT_TRUE(ws->SendText("{\"op\":7,\"rid\":1006}"));
  EXPECT_TRUE(IsErrorReply(ws->ReplyTo(1006), "invalid_argument"));
  const std::string conv = testing::PrivateConvId(a.id(), "1");
  std::vector<json::object> bad = {
      {{"op", "no.such.op"}},
      {{"op", "send"}},
      {{"op", "send"}, {"to", "1001"}, {"client_msg_id", "x"}, {"body", {{"text", "a"}}}},
      {{"op", "send"}, {"to", {{"user", 1001}}}, {"client_msg_id", "x"}, {"body", {{"text", "a"}}}},
      {{"op", "send"}, {"to", {{"user", "1001"}}}, {"client_msg_id", 5}, {"body", {{"text", "a"}}}},
      {{"op", "send"}, {"to", {{"user", "1001"}}}, {"client_msg_id", "x"}, {"body", "text"}},
      {{"op", "send"}, {"to", {{"user", "1001"}}}, {"client_msg_id", "x"}},
      {{"op", "sync"}, {"conv_id", 5}, {"after_seq", 0}},
      {{"op", "sync"}, {"conv_id", conv}, {"after_seq", "0"}},
      {{"op", "sync"}, {"conv_id", conv}},
      {{"op", "read"}, {"conv_id", conv}, {"seq", "1"}},
      {{"op", "read"}, {"seq", 1}},
      {{"op", "presence.sub"}, {"users", "1001"}},
      {{"op", "presence.sub"}},
      {{"op", "auth"}, {"token", 5}},
  };
  for (json::object& frame : bad) {
    SCOPED_TRACE(json::serialize(frame));
    int64_t rid = ws->NextRid();
    frame["rid"] = rid;
    ASSERT_TRUE(ws->Send(frame)) << ws->last_error();
    EXPECT_TRUE(IsErrorReply(ws->ReplyTo(rid), "invalid_argument")) << ws->last_error();
    ASSERT_TRUE(Pings(*ws));
  }
  // A binary frame: the same error, no rid.
  ASSERT_TRUE(ws->client().SendBinary("{\"op\":\"ping\",\"rid\":99}").ok());
  auto r = ws->NextEvent("reply");
  EXPECT_TRUE(IsErrorReply(r, "invalid_argument"));
  if (r) {
    EXPECT_FALSE(r->contains("rid")) << json::serialize(*r);
  }
  EXPECT_TRUE(Pings(*ws));
  EXPECT_TRUE(ws->buffered().empty()) << json::serialize(ws->buffered().front());
}

TEST_F(WsSessionE2eTest, InvalidUtf8IsInvalidArgumentAndTheSessionGoesOn) {
  // protocol.md section 1: invalid UTF-8 is an invalid_argument error (the
  // WebSocket layer leaves text to the JSON parser rather than closing 1007).
  Account a = NewAccount("utf8");
  auto ws = OpenWs(a.token());
  ASSERT_TRUE(ws);
  for (std::string bad : {std::string("{\"op\":\"ping\",\"rid\":1,\"x\":\"\xff\xfe\"}"),
                          std::string("{\"op\":\"ping\",\"rid\":2,\"x\":\"\xed\xa0\x80\"}"),
                          std::string("{\"op\":\"ping\",\"rid\":3}\xc3")}) {
    ASSERT_TRUE(ws->SendText(bad));
    auto f = ws->NextEvent("reply");
    ASSERT_TRUE(f) << ws->last_error();
    EXPECT_TRUE(IsErrorReply(f, "invalid_argument"));
    EXPECT_TRUE(Pings(*ws));
  }
}

TEST_F(WsSessionE2eTest, FrameAboveTheLimitClosesWith1009) {
  Account a = NewAccount("bigframe");
  auto ws = OpenWs(a.token());
  ASSERT_TRUE(ws);
  // Just under 128 KiB is still a frame (unknown fields are ignored).
  json::object ping{{"op", "ping"}, {"rid", 1}, {"pad", std::string(120 * 1024, 'x')}};
  ASSERT_TRUE(ws->Send(ping));
  EXPECT_TRUE(IsOkReply(ws->ReplyTo(1))) << ws->last_error();
  // 200 KiB is not. Written raw: the server may close before reading all
  // of it, which fails the write but must not lose its close frame.
  json::object huge{{"op", "ping"}, {"rid", 2}, {"pad", std::string(200 * 1024, 'x')}};
  (void)ws->client().SendRaw(client::WsClient::EncodeClientFrame(1, json::serialize(huge)));
  auto code = ws->CloseCode();
  ASSERT_TRUE(code) << ws->last_error();
  EXPECT_EQ(*code, 1009);
  EXPECT_TRUE(ws->Drain("reply", Ms(0)).empty());
}

TEST_F(WsSessionE2eTest, AppLevelPingRepliesWithServerTime) {
  Account a = NewAccount("ping");
  auto ws = OpenWs(a.token(), WsAuth::kQuery);
  ASSERT_TRUE(ws);
  int64_t before = NowMs();
  auto r = ws->Request(json::object{{"op", "ping"}});
  int64_t after = NowMs();
  ASSERT_TRUE(IsOkReply(r));
  int64_t ts = testing::Int(*r, "ts");
  EXPECT_GE(ts, before - 2000);
  EXPECT_LE(ts, after + 2000);
}

TEST_F(WsSessionE2eTest, LogoutKicksEverySocketOfThatSessionOnly) {
  Account a = NewAccount("logout");
  testing::Session other = Login(a);
  auto s1 = OpenWs(a.token(), WsAuth::kHeader);
  auto s1b = OpenWs(a.token(), WsAuth::kFrame);
  auto s2 = OpenWs(other.access_token, WsAuth::kQuery);
  ASSERT_TRUE(s1 && s1b && s2);
  ASSERT_EQ(api_->Post("/auth/logout", "", a.token()).status, 204);
  for (WsConn* ws : {s1.get(), s1b.get()}) {
    auto kick = ws->NextEvent("kick");
    ASSERT_TRUE(kick) << ws->last_error();
    EXPECT_EQ(Str(*kick, "reason"), "logout");
    EXPECT_FALSE(kick->contains("rid"));
    auto code = ws->CloseCode();
    ASSERT_TRUE(code) << ws->last_error();
    EXPECT_EQ(*code, 4003);
  }
  // The other session is untouched.
  EXPECT_TRUE(Pings(*s2));
  EXPECT_TRUE(s2->Drain("kick", Ms(200)).empty());
  EXPECT_FALSE(s2->closed());
  // The revoked token no longer opens a socket.
  WsConn again(port());
  EXPECT_FALSE(again.Open(a.token()));
  EXPECT_EQ(again.CloseCode(), 4001) << again.last_error();
}

TEST_F(WsSessionE2eTest, RefreshTokenReuseKicksTheSession) {
  Account a = NewAccount("reuse");
  auto ws = OpenWs(a.token());
  ASSERT_TRUE(ws);
  ASSERT_EQ(api_->RefreshRaw(a.session.refresh_token).status, 200);
  EXPECT_EQ(api_->RefreshRaw(a.session.refresh_token).status, 401);  // theft detected
  auto kick = ws->NextEvent("kick");
  ASSERT_TRUE(kick) << ws->last_error();
  auto code = ws->CloseCode();
  ASSERT_TRUE(code) << ws->last_error();
  EXPECT_EQ(*code, 4003);
}

// Heartbeats need their own short intervals.
struct HeartbeatConfig {
  static auto Env() {
    return testing::WsEnv(
        {{"MPIM_GATEWAY_PING_INTERVAL_MS", "200"}, {"MPIM_GATEWAY_IDLE_TIMEOUT_MS", "1000"}});
  }
};

class WsHeartbeatE2eTest : public testing::WsServerTest<HeartbeatConfig> {};

TEST_F(WsHeartbeatE2eTest, PingsKeepAReadingClientAliveAndASilentOneIsClosed) {
  Account a = NewAccount("beat");
  auto reader = OpenWs(a.token());
  auto silent = OpenWs(Login(a).access_token);
  ASSERT_TRUE(reader && silent);
  // The reader answers pings (Beast does, while reading) for 3 idle periods.
  EXPECT_FALSE(reader->NextEvent("never-sent", Ms(3000)));
  EXPECT_FALSE(reader->closed()) << reader->last_error();
  EXPECT_GE(reader->client().pings_received(), 5);
  EXPECT_TRUE(Pings(*reader));
  // The silent one read nothing and answered no ping for as long.
  auto code = silent->CloseCode();
  ASSERT_TRUE(code) << silent->last_error();
  EXPECT_EQ(*code, 1001);
}

}  // namespace
}  // namespace mpim
