// End-to-end: hostile and broken clients against the real `mpim` binary
// (issue #8; docs/protocol.md section 1, docs/protocol.md
// "Frames" and "Delivery", docs/protocol.md section 2 "General", docs/operations.md "HTTP
// limits"): JSON nested 10,000 deep, numbers out of range, objects of
// 10,000 keys, fragmented frames with a ping between the fragments, HTTP
// requests that never finish, connections that say nothing and a WebSocket
// that stops reading. Each gets its documented answer, and after each two
// calm users, connected the whole time, still ping and message each other.
// Binary frames are in ws_session_e2e_test.cc.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/ws_client.h"
#include "support/api_client.h"
#include "support/raw_conn.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiResponse;
using testing::Int;
using testing::IsError;
using testing::IsErrorReply;
using testing::IsOkReply;
using testing::Ms;
using testing::Pings;
using testing::RawConn;
using testing::Str;
using testing::WsConn;

namespace json = boost::json;

constexpr int kDeep = 10000;
constexpr int kManyKeys = 10000;

// `open` kDeep times, then `inner`, then `close` kDeep times.
std::string Nested(const std::string& open, const std::string& inner, const std::string& close) {
  std::string out;
  out.reserve(kDeep * (open.size() + close.size()) + inner.size());
  for (int i = 0; i < kDeep; ++i) out += open;
  out += inner;
  for (int i = 0; i < kDeep; ++i) out += close;
  return out;
}

// `,"k0":0,"k1":0,...` with kManyKeys short keys (about 100 KB: under the
// 128 KiB frame limit, over the 64 KiB body limit).
std::string ManyKeys() {
  std::string out;
  for (int i = 0; i < kManyKeys; ++i) out += ",\"k" + std::to_string(i) + "\":0";
  return out;
}

// The fields of a send to `to_user`, without braces:
// "to":{"user":"<id>"},"client_msg_id":"<id>",<rest>.
std::string SendFields(const std::string& to_user, const std::string& client_msg_id,
                       const std::string& rest) {
  return "\"to\":{\"user\":\"" + to_user + "\"},\"client_msg_id\":\"" + client_msg_id + "\"," +
         rest;
}

// A WebSocket send frame of `rid` and `fields` (see SendFields).
std::string SendFrame(int64_t rid, const std::string& fields) {
  return "{\"op\":\"send\",\"rid\":" + std::to_string(rid) + "," + fields + "}";
}

// The frames of one text message cut in three: the first (text, FIN clear),
// a continuation (FIN clear) and the last continuation (FIN set).
std::vector<std::string> ThreeFragments(const std::string& text) {
  size_t third = text.size() / 3;
  std::vector<std::string> frames = {
      client::WsClient::EncodeClientFrame(1, text.substr(0, third)),
      client::WsClient::EncodeClientFrame(0, text.substr(third, third)),
      client::WsClient::EncodeClientFrame(0, text.substr(2 * third))};
  frames[0][0] = 0x01;  // text, not final
  frames[1][0] = 0x00;  // continuation, not final
  return frames;
}

// A value of mpim_* `name` (no labels) in Prometheus text; -1 if absent.
int64_t MetricValue(const std::string& metrics, const std::string& name) {
  const std::string key = "\n" + name + " ";
  size_t at = metrics.find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(metrics.substr(at + key.size()));
}

// A fixture with two calm users connected from the start of each test to its
// end, on the server of `Config`.
template <typename Config>
class HostileTest : public testing::WsServerTest<Config> {
 protected:
  void SetUp() override {
    testing::WsServerTest<Config>::SetUp();
    if (::testing::Test::HasFatalFailure()) return;
    calm_ = this->NewPair("calm");
    calm_a_ = this->OpenWs(calm_.a.token());
    calm_b_ = this->OpenWs(calm_.b.token());
    ASSERT_TRUE(calm_a_ && calm_b_);
    // One scraping connection per other gateway (a cluster target), kept
    // open so that the connection counts stay put.
    for (size_t i = 1; i < this->gateways_.size(); ++i) {
      scrapers_.push_back(std::make_unique<testing::ApiClient>(this->gateways_[i]));
    }
  }

  // Both calm sessions answer pings and get a message from each other.
  ::testing::AssertionResult CalmStillServed() {
    if (auto ok = CalmPing(); !ok) return ok;
    struct Leg {
      WsConn* from;
      WsConn* to;
      std::string to_id;
    };
    for (const Leg& leg : {Leg{calm_a_.get(), calm_b_.get(), calm_.b.id()},
                           Leg{calm_b_.get(), calm_a_.get(), calm_.a.id()}}) {
      std::string n = std::to_string(++calm_sent_);
      auto r = leg.from->Request(testing::TextSend(leg.to_id, "calm-" + n, "calm " + n));
      if (auto ok = testing::IsSendResult(r); !ok) return ok << " (calm send " << n << ")";
      auto event = leg.to->NextMsg(calm_.conv);
      if (!event) {
        return ::testing::AssertionFailure()
               << "calm message " << n << " not delivered: " << leg.to->last_error();
      }
      json::object msg = testing::MsgOf(*event);
      const json::object* body = testing::Obj(msg, "body");
      if (Int(msg, "seq") != Int(*r, "seq") || !body || Str(*body, "text") != "calm " + n) {
        return ::testing::AssertionFailure()
               << "calm message " << n << " arrived as " << json::serialize(msg);
      }
      leg.to->Ack(calm_.conv, Int(msg, "seq"));
    }
    return ::testing::AssertionSuccess();
  }

  ::testing::AssertionResult CalmPing() {
    for (WsConn* ws : {calm_a_.get(), calm_b_.get()}) {
      if (auto ok = Pings(*ws); !ok) return ok;
    }
    return ::testing::AssertionSuccess();
  }

  // Keeps the calm sessions reading (they answer the server's pings) until
  // `done` holds or 30 s have passed; false at the deadline.
  bool ServeCalmUntil(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      EXPECT_TRUE(CalmPing());
      std::this_thread::sleep_for(Ms(50));
    }
    return done();
  }

  // The sum over the gateways (one on `mpim serve`).
  int64_t Metric(const std::string& name) {
    int64_t sum = MetricValue(this->api_->Call("GET", "/metrics").body, name);
    for (auto& s : scrapers_) sum += MetricValue(s->Call("GET", "/metrics").body, name);
    return sum;
  }
  // The HTTP connections the test itself holds open for REST and /metrics.
  int64_t OwnConnections() const { return 1 + static_cast<int64_t>(scrapers_.size()); }

  // A hostile account with a peer and one message between them, so that
  // their conversation exists.
  struct Hostile {
    typename testing::WsServerTest<Config>::Pair pair;
    std::unique_ptr<WsConn> ws;    // pair.a's
    std::unique_ptr<WsConn> peer;  // pair.b's, connected after the message
    bool ok() const { return ws && peer; }
  };
  Hostile NewHostile(std::string_view prefix) {
    Hostile h{this->NewPair(prefix), nullptr, nullptr};
    h.ws = this->OpenWs(h.pair.a.token());
    if (!h.ws) return h;
    EXPECT_TRUE(
        testing::IsSendResult(h.ws->Request(testing::TextSend(h.pair.b.id(), "first", "first"))));
    h.peer = this->OpenWs(h.pair.b.token());
    return h;
  }

  typename testing::WsServerTest<Config>::Pair calm_;
  std::unique_ptr<WsConn> calm_a_, calm_b_;
  std::vector<std::unique_ptr<testing::ApiClient>> scrapers_;
  int calm_sent_ = 0;
};

// Default timeouts.
struct HostileConfig {
  static auto Env() { return testing::WsEnv({}); }
};
class HostileE2eTest : public HostileTest<HostileConfig> {};

// An error reply without a rid (the frame had no usable one).
::testing::AssertionResult RidlessError(WsConn& ws, std::string_view code) {
  auto r = ws.NextEvent("reply");
  if (auto ok = IsErrorReply(r, code); !ok) return ok << " " << ws.last_error();
  if (r->contains("rid")) return ::testing::AssertionFailure() << "rid in " << json::serialize(*r);
  return ::testing::AssertionSuccess();
}

TEST_F(HostileE2eTest, JsonNestedTenThousandDeepIsInvalidArgumentAndTheSessionGoesOn) {
  auto h = NewHostile("deep");
  ASSERT_TRUE(h.ok());
  // Nesting deeper than 32 levels is invalid JSON to the frame parser; the
  // rid of an otherwise good ping is not read, so the reply has none.
  for (const std::string& text :
       {Nested("[", "1", "]"), Nested("{\"a\":", "1", "}"),
        "{\"op\":\"ping\",\"rid\":7,\"x\":" + Nested("[", "", "]") + "}",
        SendFrame(8, SendFields(h.pair.b.id(), "deep",
                                "\"type\":\"custom\",\"body\":" + Nested("{\"a\":", "1", "}")))}) {
    SCOPED_TRACE(text.substr(0, 40));
    ASSERT_TRUE(h.ws->SendText(text)) << h.ws->last_error();
    EXPECT_TRUE(RidlessError(*h.ws, "invalid_argument"));
    ASSERT_TRUE(Pings(*h.ws));
    ASSERT_TRUE(CalmStillServed());
  }
}

TEST_F(HostileE2eTest, NumbersOutOfRangeInFramesAreInvalidArgument) {
  auto h = NewHostile("range");
  ASSERT_TRUE(h.ok());
  const std::string conv = "\"" + h.pair.conv + "\"";
  // A rid that is not an int64: the error has no rid.
  for (const char* rid : {"1e400", "-1e400", "18446744073709551616", "9223372036854775808",
                          "-9223372036854775809", "1e30"}) {
    SCOPED_TRACE(rid);
    ASSERT_TRUE(h.ws->SendText(std::string("{\"op\":\"ping\",\"rid\":") + rid + "}"));
    EXPECT_TRUE(RidlessError(*h.ws, "invalid_argument"));
  }
  // ack has no reply; its errors come without a rid.
  for (const char* seq : {"9223372036854775808", "18446744073709551616", "1e400", "1e30", "-1"}) {
    SCOPED_TRACE(std::string("ack ") + seq);
    ASSERT_TRUE(h.ws->SendText("{\"op\":\"ack\",\"conv_id\":" + conv + ",\"seq\":" + seq + "}"));
    EXPECT_TRUE(RidlessError(*h.ws, "invalid_argument"));
  }
  // read, sync: the error is the reply to the rid. limit is 1 to
  // limits.page_max (200): no clamping.
  std::vector<std::string> bad;
  for (const char* seq : {"9223372036854775808", "18446744073709551616", "1e400", "1e30", "-1"}) {
    bad.push_back("\"op\":\"read\",\"conv_id\":" + conv + ",\"seq\":" + seq);
  }
  for (const char* after : {"-1", "1e30", "1e400", "9223372036854775808", "-9223372036854775809"}) {
    bad.push_back("\"op\":\"sync\",\"conv_id\":" + conv + ",\"after_seq\":" + after);
  }
  for (const char* limit : {"0", "-5", "201", "100000", "1e400", "18446744073709551616", "2.5"}) {
    bad.push_back("\"op\":\"sync\",\"conv_id\":" + conv + ",\"after_seq\":0,\"limit\":" + limit);
  }
  for (const std::string& fields : bad) {
    SCOPED_TRACE(fields);
    int64_t rid = h.ws->NextRid();
    ASSERT_TRUE(h.ws->SendText("{\"rid\":" + std::to_string(rid) + "," + fields + "}"));
    EXPECT_TRUE(IsErrorReply(h.ws->ReplyTo(rid), "invalid_argument")) << h.ws->last_error();
  }
  // The largest legal values are answered normally.
  auto page = h.ws->Request(json::object{
      {"op", "sync"}, {"conv_id", h.pair.conv}, {"after_seq", INT64_MAX}, {"limit", 200}});
  ASSERT_TRUE(IsOkReply(page));
  EXPECT_TRUE(testing::Arr(*page, "messages") && testing::Arr(*page, "messages")->empty());
  auto read =
      h.ws->Request(json::object{{"op", "read"}, {"conv_id", h.pair.conv}, {"seq", INT64_MAX}});
  // read beyond last_seq moves the cursor to last_seq.
  ASSERT_TRUE(IsOkReply(read)) << h.ws->last_error();
  EXPECT_EQ(Int(*read, "read_seq"), 1) << json::serialize(*read);
  EXPECT_TRUE(Pings(*h.ws));
  EXPECT_TRUE(CalmStillServed());
}

TEST_F(HostileE2eTest, NumbersOutOfRangeInAMessageBodyAreInvalidArgument) {
  auto h = NewHostile("body");
  ASSERT_TRUE(h.ok());
  // 1e400 parses as infinity, which has no JSON text: stored, it would reach
  // the peer as a frame no JSON parser accepts.
  const std::string& to = h.pair.b.id();
  for (const std::string& fields :
       {SendFields(to, "inf1", "\"type\":\"custom\",\"body\":{\"n\":1e400}"),
        SendFields(to, "inf2", "\"type\":\"custom\",\"body\":{\"a\":[1,{\"n\":-1e400}]}"),
        SendFields(to, "inf3", "\"body\":{\"text\":\"hi\",\"n\":1e999}")}) {
    SCOPED_TRACE(fields);
    int64_t rid = h.ws->NextRid();
    ASSERT_TRUE(h.ws->SendText(SendFrame(rid, fields)));
    EXPECT_TRUE(IsErrorReply(h.ws->ReplyTo(rid), "invalid_argument")) << h.ws->last_error();
  }
  auto r = api_->Post(
      "/messages", "{" + SendFields(to, "inf4", "\"type\":\"custom\",\"body\":{\"n\":1e400}") + "}",
      h.pair.a.token());
  EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
  // Large finite numbers are JSON numbers and go through (as doubles).
  int64_t rid = h.ws->NextRid();
  ASSERT_TRUE(h.ws->SendText(SendFrame(
      rid, SendFields(to, "big",
                      "\"type\":\"custom\",\"body\":{\"n\":1e300,\"u\":18446744073709551616}"))));
  ASSERT_TRUE(testing::IsSendResult(h.ws->ReplyTo(rid))) << h.ws->last_error();
  // Right after "first": none of the refused ones was stored.
  auto event = h.peer->NextMsg(h.pair.conv);
  ASSERT_TRUE(event) << h.peer->last_error();
  json::object msg = testing::MsgOf(*event);
  EXPECT_EQ(Str(msg, "client_msg_id"), "big");
  EXPECT_EQ(Int(msg, "seq"), 2);
  const json::object* body = testing::Obj(msg, "body");
  ASSERT_TRUE(body);
  EXPECT_TRUE(body->at("n").is_double() && body->at("n").get_double() == 1e300);
  EXPECT_TRUE(body->at("u").is_double());
  EXPECT_TRUE(CalmStillServed());
}

TEST_F(HostileE2eTest, TenThousandKeyObjectsAreReadAndUnknownKeysIgnored) {
  auto h = NewHostile("keys");
  ASSERT_TRUE(h.ok());
  // As a WebSocket frame: unknown fields are ignored.
  ASSERT_TRUE(h.ws->SendText("{\"op\":\"ping\",\"rid\":501" + ManyKeys() + "}"));
  auto pong = h.ws->ReplyTo(501);
  ASSERT_TRUE(IsOkReply(pong)) << h.ws->last_error();
  EXPECT_GT(Int(*pong, "ts"), 0);
  // As a custom body: about 100 KB serialized, over limits.body_max_bytes.
  const std::string many_key_body = "\"type\":\"custom\",\"body\":{\"k\":1" + ManyKeys() + "}";
  ASSERT_TRUE(h.ws->SendText(SendFrame(502, SendFields(h.pair.b.id(), "keys", many_key_body))));
  EXPECT_TRUE(IsErrorReply(h.ws->ReplyTo(502), "payload_too_large")) << h.ws->last_error();
  EXPECT_TRUE(Pings(*h.ws));
  EXPECT_TRUE(CalmStillServed());

  // As REST bodies: login and send succeed, the extra keys ignored.
  ApiResponse login =
      api_->Call("POST", "/api/v1/auth/login",
                 "{\"username\":" + testing::JsonString(h.pair.a.username) +
                     ",\"password\":" + testing::JsonString(h.pair.a.password) + ManyKeys() + "}");
  ASSERT_EQ(login.status, 200) << login.Describe();
  EXPECT_TRUE(login.json.is_object() && login.json.as_object().contains("access_token"));
  ApiResponse sent =
      api_->Post("/messages",
                 "{" + SendFields(h.pair.b.id(), "rest-keys", "\"body\":{\"text\":\"many\"}") +
                     ManyKeys() + "}",
                 h.pair.a.token());
  ASSERT_EQ(sent.status, 200) << sent.Describe();
  ASSERT_TRUE(sent.json.is_object()) << sent.Describe();
  EXPECT_EQ(Int(sent.json.as_object(), "seq"), 2);
  ApiResponse too_big =
      api_->Post("/messages", "{" + SendFields(h.pair.b.id(), "rest-big", many_key_body) + "}",
                 h.pair.a.token());
  EXPECT_TRUE(IsError(too_big, 413, "payload_too_large")) << too_big.Describe();
  EXPECT_TRUE(CalmStillServed());
}

TEST_F(HostileE2eTest, RestBodiesNestedDeepOrWithNumbersOutOfRangeAre400) {
  auto h = NewHostile("rest");
  ASSERT_TRUE(h.ok());
  for (const std::string& body :
       {Nested("[", "1", "]"), Nested("{\"a\":", "1", "}"),
        "{\"username\":\"x\",\"password\":" + Nested("[", "", "]") + "}"}) {
    SCOPED_TRACE(body.substr(0, 40));
    ApiResponse r = api_->Call("POST", "/api/v1/auth/login", body);
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
    r = api_->Post("/messages", body, h.pair.a.token());
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
  }
  const std::string read = "/conversations/" + h.pair.conv + "/read";
  for (const char* seq :
       {"9223372036854775808", "18446744073709551616", "1e400", "1e30", "-1", "1.5"}) {
    SCOPED_TRACE(seq);
    ApiResponse r = api_->Post(read, std::string("{\"seq\":") + seq + "}", h.pair.a.token());
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
  }
  const std::string history = "/conversations/" + h.pair.conv + "/messages?";
  for (const char* query : {"limit=0", "limit=-5", "limit=201", "limit=100000", "limit=1e400",
                            "limit=99999999999999999999", "after_seq=-1", "after_seq=1e30",
                            "after_seq=9223372036854775808", "before_seq=99999999999999999999"}) {
    SCOPED_TRACE(query);
    ApiResponse r = api_->Get(history + query, h.pair.a.token());
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << r.Describe();
  }
  ApiResponse qos = api_->Post(
      "/messages",
      "{" + SendFields(h.pair.b.id(), "q", "\"body\":{\"text\":\"x\"},\"qos\":1e400") + "}",
      h.pair.a.token());
  EXPECT_TRUE(IsError(qos, 400, "invalid_argument")) << qos.Describe();
  // The largest legal seq is a read like any other, and a history window
  // starting there is empty (UBSan watches the arithmetic).
  ApiResponse ok = api_->Post(read, "{\"seq\":9223372036854775807}", h.pair.a.token());
  EXPECT_EQ(ok.status, 204) << ok.Describe();
  ApiResponse empty =
      api_->Get(history + "after_seq=9223372036854775807&before_seq=5", h.pair.a.token());
  EXPECT_EQ(empty.status, 200) << empty.Describe();
  EXPECT_NE(empty.body.find("\"messages\":[]"), std::string::npos) << empty.body;
  EXPECT_TRUE(CalmStillServed());
}

TEST_F(HostileE2eTest, AnOpInThreeFragmentsWithAPingBetweenIsAnsweredNormally) {
  auto h = NewHostile("frag");
  ASSERT_TRUE(h.ok());

  for (const std::string& frame : ThreeFragments("{\"op\":\"ping\",\"rid\":601}")) {
    ASSERT_TRUE(h.ws->client().SendRaw(frame).ok());
  }
  auto pong = h.ws->ReplyTo(601);
  ASSERT_TRUE(IsOkReply(pong)) << h.ws->last_error();
  EXPECT_GT(Int(*pong, "ts"), 0);

  // A send, with a ping control frame (answered with a pong) and an
  // unsolicited pong between its fragments.
  json::object send = testing::TextSend(h.pair.b.id(), "fragmented", "in three pieces");
  send["rid"] = 602;
  std::vector<std::string> frames = ThreeFragments(json::serialize(send));
  ASSERT_TRUE(h.ws->client().SendRaw(frames[0]).ok());
  ASSERT_TRUE(h.ws->client().SendRaw(client::WsClient::EncodeClientFrame(9, "between")).ok());
  ASSERT_TRUE(h.ws->client().SendRaw(frames[1]).ok());
  ASSERT_TRUE(h.ws->client().SendRaw(client::WsClient::EncodeClientFrame(10, "")).ok());
  ASSERT_TRUE(h.ws->client().SendRaw(frames[2]).ok());
  auto reply = h.ws->ReplyTo(602);
  ASSERT_TRUE(testing::IsSendResult(reply)) << h.ws->last_error();
  EXPECT_EQ(Int(*reply, "seq"), 2);
  auto event = h.peer->NextMsg(h.pair.conv);
  ASSERT_TRUE(event) << h.peer->last_error();
  json::object msg = testing::MsgOf(*event);
  EXPECT_EQ(Str(msg, "client_msg_id"), "fragmented");
  const json::object* body = testing::Obj(msg, "body");
  EXPECT_TRUE(body && Str(*body, "text") == "in three pieces") << json::serialize(msg);
  EXPECT_FALSE(h.ws->closed());
  EXPECT_TRUE(Pings(*h.ws));
  EXPECT_TRUE(CalmStillServed());
}

// Short timeouts: HTTP requests must be complete 500 ms after their first
// byte, idle keep-alive connections close after 1 s, WebSockets are pinged
// every 250 ms and closed after 1.5 s of silence.
struct TimeoutConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_SERVER_REQUEST_TIMEOUT_MS", "500"},
                           {"MPIM_SERVER_IDLE_TIMEOUT_MS", "1000"},
                           {"MPIM_GATEWAY_PING_INTERVAL_MS", "250"},
                           {"MPIM_GATEWAY_IDLE_TIMEOUT_MS", "1500"}});
  }
};
class HostileTimeoutE2eTest : public HostileTest<TimeoutConfig> {};

TEST_F(HostileTimeoutE2eTest, AnUnfinishedBodyAndASilentConnectionAreClosedWhileOthersAreServed) {
  RawConn unfinished(port());
  RawConn silent(port());
  ASSERT_TRUE(unfinished.connected() && silent.connected());
  unfinished.Send(
      "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 1000\r\n\r\n{\"usernam");
  // Meanwhile other requests and sessions are served.
  ApiResponse health = api_->Call("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.Describe();
  EXPECT_TRUE(CalmStillServed());
  // Both are closed (request_timeout_ms, idle_timeout_ms), without an answer.
  std::string unfinished_got, silent_got;
  bool unfinished_closed = false, silent_closed = false;
  EXPECT_TRUE(ServeCalmUntil([&] {
    unfinished_closed = unfinished_closed || unfinished.ReadUntilClosed(Ms(10), &unfinished_got);
    silent_closed = silent_closed || silent.ReadUntilClosed(Ms(10), &silent_got);
    return unfinished_closed && silent_closed;
  })) << "unfinished closed "
      << unfinished_closed << ", silent closed " << silent_closed;
  EXPECT_EQ(unfinished_got, "");
  EXPECT_EQ(silent_got, "");
  EXPECT_TRUE(CalmStillServed());
}

TEST_F(HostileTimeoutE2eTest, AWebSocketThatStopsReadingIsEndedAndOthersAreUnaffected) {
  ASSERT_TRUE(CalmStillServed());
  // Ours: the two calm sessions and the ApiClients' connections (earlier
  // tests' sockets may take a moment to go).
  const std::function<bool()> just_ours = [&] {
    return Metric("mpim_ws_sessions") == 2 &&
           Metric("mpim_http_connections_open") == 2 + OwnConnections();
  };
  ASSERT_TRUE(ServeCalmUntil(just_ours)) << Metric("mpim_ws_sessions") << " sessions, "
                                         << Metric("mpim_http_connections_open") << " connections";
  // Opens, then never reads again: answers no ping, acks nothing, and a
  // tiny receive buffer soon stops what the server writes.
  Account h = NewAccount("halfopen");
  auto deaf =
      OpenWs(h.token(), testing::WsAuth::kHeader, client::WsOptions{.receive_buffer_bytes = 2048});
  ASSERT_TRUE(deaf);
  for (int i = 0; i < 20; ++i) {
    ApiResponse sent =
        api_->Post("/messages",
                   "{" +
                       SendFields(h.id(), "deaf" + std::to_string(i),
                                  "\"body\":{\"text\":\"" + std::string(2000, 'x') + "\"}") +
                       "}",
                   calm_.a.token());
    ASSERT_EQ(sent.status, 200) << sent.Describe();
  }
  EXPECT_EQ(Metric("mpim_ws_sessions"), 3);
  EXPECT_GE(Metric("mpim_http_connections_open"), 3 + OwnConnections());
  // Idle timeout (1001), then the close it never answers: the server drops
  // the socket. The calm sessions read all along.
  EXPECT_TRUE(ServeCalmUntil(just_ours)) << Metric("mpim_ws_sessions") << " sessions, "
                                         << Metric("mpim_http_connections_open") << " connections";
  EXPECT_TRUE(CalmStillServed());
}

}  // namespace
}  // namespace mpim
