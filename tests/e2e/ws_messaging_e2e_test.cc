// End-to-end: private messaging over WebSocket and REST against the real
// `mpim` binary (docs/protocol.md section 3 "Client operations",
// "Server events", "Ordering and delivery guarantees"; section 2
// "Conversations and messages"; docs/protocol.md section 3 "Client operations"): fan-out to
// every session in seq order, idempotent sends, hello and sync for an
// offline recipient, REST history and conversation listings, read
// receipts, typing, presence and the send path's refusals.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiResponse;
using testing::Arr;
using testing::Int;
using testing::IsError;
using testing::IsErrorReply;
using testing::IsMessage;
using testing::IsOkReply;
using testing::IsSendResult;
using testing::JsonString;
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

struct MessagingConfig {
  static auto Env() {
    return testing::WsEnv(
        {{"MPIM_LIMITS_SEND_PER_SEC", "100000"}, {"MPIM_LIMITS_SEND_BURST", "100000"}});
  }
};

// Sends `n` text messages "<prefix>-<i>" (i from 1) to `to_user`,
// pipelined in batches, and returns the replies in send order (empty on a
// failure, which is recorded).
std::vector<json::object> SendMany(WsConn& ws, const std::string& to_user,
                                   const std::string& prefix, int n, int batch = 100) {
  std::vector<json::object> replies;
  for (int start = 1; start <= n; start += batch) {
    std::vector<int64_t> rids;
    for (int i = start; i < start + batch && i <= n; ++i) {
      json::object f =
          TextSend(to_user, prefix + "-" + std::to_string(i), "text " + std::to_string(i));
      int64_t rid = ws.NextRid();
      f["rid"] = rid;
      if (!ws.Send(f)) {
        ADD_FAILURE() << ws.last_error();
        return {};
      }
      rids.push_back(rid);
    }
    for (int64_t rid : rids) {
      auto r = ws.ReplyTo(rid);
      if (auto ok = IsSendResult(r); !ok) {
        ADD_FAILURE() << "send " << prefix << " rid " << rid << ": " << ok.message() << " "
                      << ws.last_error();
        return {};
      }
      replies.push_back(*r);
    }
  }
  return replies;
}

// The conversations of a GET /conversations answer: the protocol shows a
// bare array; an object {"conversations": [...]} is read too.
json::array ConversationList(const ApiResponse& r) {
  if (r.json.is_array()) return r.json.as_array();
  if (r.json.is_object()) {
    if (const json::array* a = Arr(r.json.as_object(), "conversations")) return *a;
  }
  ADD_FAILURE() << "GET /conversations: no list in " << r.Describe();
  return {};
}

json::object FindConv(const json::array& list, const std::string& conv_id) {
  for (const auto& c : list) {
    if (c.is_object() && Str(c.as_object(), "conv_id") == conv_id) return c.as_object();
  }
  return {};
}

// Seqs of a list of messages.
std::vector<int64_t> Seqs(const std::vector<json::object>& msgs) {
  std::vector<int64_t> out;
  for (const auto& m : msgs) out.push_back(Int(m, "seq"));
  return out;
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> out;
  for (int64_t i = from; i <= to; ++i) out.push_back(i);
  return out;
}

class WsMessagingE2eTest : public testing::WsServerTest<MessagingConfig> {
 protected:
  // GET .../messages with `query`; the messages (ascending check left to
  // the caller) and has_more.
  std::pair<std::vector<json::object>, bool> History(const std::string& token,
                                                     const std::string& conv_id,
                                                     const std::string& query) {
    ApiResponse r = api_->Get("/conversations/" + conv_id + "/messages" + query, token);
    std::vector<json::object> out;
    if (r.status != 200 || !r.json.is_object()) {
      ADD_FAILURE() << "history " << query << ": " << r.Describe();
      return {out, false};
    }
    const json::array* msgs = Arr(r.json.as_object(), "messages");
    const auto* more = r.json.as_object().if_contains("has_more");
    if (!msgs || !more || !more->is_bool()) {
      ADD_FAILURE() << "history " << query << " lacks messages/has_more: " << r.body;
      return {out, false};
    }
    for (const auto& m : *msgs) {
      EXPECT_TRUE(IsMessage(m));
      if (m.is_object()) out.push_back(m.as_object());
    }
    return {out, more->as_bool()};
  }
};

TEST_F(WsMessagingE2eTest, ThousandMessagesArriveInSeqOrderExactlyOnceOnEveryOtherSession) {
  auto [a, b, conv] = NewPair("thou");
  auto a1 = OpenWs(a.token(), WsAuth::kHeader);
  auto a2 = OpenWs(Login(a).access_token, WsAuth::kQuery);
  auto b1 = OpenWs(b.token(), WsAuth::kFrame);
  auto b2 = OpenWs(Login(b).access_token, WsAuth::kHeader);
  ASSERT_TRUE(a1 && a2 && b1 && b2);
  constexpr int kTotal = 1000;
  constexpr int kBatch = 100;

  std::vector<json::object> replies;
  std::map<WsConn*, std::vector<json::object>> got{{a2.get(), {}}, {b1.get(), {}}, {b2.get(), {}}};
  for (int start = 1; start <= kTotal; start += kBatch) {
    auto batch = SendMany(*a1, b.id(), "k" + std::to_string(start), kBatch, kBatch);
    ASSERT_EQ(batch.size(), static_cast<size_t>(kBatch));
    replies.insert(replies.end(), batch.begin(), batch.end());
    // Every other session reads what has been sent so far and acks it.
    for (auto& [ws, msgs] : got) {
      while (msgs.size() < replies.size()) {
        auto m = ws->NextMsg(conv);
        ASSERT_TRUE(m) << "after " << msgs.size() << " msgs: " << ws->last_error();
        ASSERT_TRUE(IsMessage((*m)["msg"]));
        msgs.push_back(MsgOf(*m));
      }
      ASSERT_TRUE(ws->Ack(conv, Int(msgs.back(), "seq")));
    }
  }

  // Replies: {msg_id, conv_id, seq, ts}; seqs 1..1000; msg ids distinct.
  std::set<std::string> msg_ids;
  for (const auto& r : replies) {
    EXPECT_EQ(Str(r, "conv_id"), conv);
    msg_ids.insert(Str(r, "msg_id"));
  }
  EXPECT_EQ(msg_ids.size(), replies.size()) << "msg_id reused";
  std::map<int64_t, const json::object*> by_seq;
  for (const auto& r : replies) by_seq[Int(r, "seq")] = &r;
  EXPECT_EQ(by_seq.size(), replies.size());
  EXPECT_EQ(by_seq.begin()->first, 1);
  EXPECT_EQ(by_seq.rbegin()->first, kTotal);

  for (auto& [ws, msgs] : got) {
    SCOPED_TRACE(ws == a2.get() ? "A's second session" : ws == b1.get() ? "B1" : "B2");
    ASSERT_EQ(Seqs(msgs), Range(1, kTotal)) << "not every seq exactly once, in order";
    for (const auto& m : msgs) {
      const json::object& r = *by_seq[Int(m, "seq")];
      EXPECT_EQ(Str(m, "msg_id"), Str(r, "msg_id"));
      EXPECT_EQ(Int(m, "ts"), Int(r, "ts"));
      EXPECT_EQ(Str(m, "conv_id"), conv);
      EXPECT_EQ(Str(m, "from"), a.id());
      EXPECT_EQ(m.at("to"), (json::object{{"user", b.id()}}));
      EXPECT_EQ(Str(m, "type"), "text");
      const json::object* body = Obj(m, "body");
      ASSERT_TRUE(body);
      // client_msg_id "k<batch start>-<i>" carries "text <i>".
      std::string cmid = Str(m, "client_msg_id");
      EXPECT_EQ("text " + cmid.substr(cmid.find('-') + 1), Str(*body, "text"));
      if (HasFailure()) break;
    }
    // Nothing more arrives for anyone (each seq exactly once).
    EXPECT_TRUE(ws->Drain("msg", Ms(300)).empty());
  }
  // The sending session gets replies only.
  EXPECT_TRUE(a1->Drain("msg", Ms(300)).empty());
  EXPECT_TRUE(a1->buffered().empty()) << json::serialize(a1->buffered().front());
}

TEST_F(WsMessagingE2eTest, PipelinedSendsFromOneSessionKeepTheirOrder) {
  // The protocol does not say it in words, but a careful client author
  // expects it: what one session sends in order (without waiting for each
  // reply) gets seqs in that order, so the peer reads it in typing order.
  auto [a, b, conv] = NewPair("pipe");
  const double sends_before = ServerMetric("mpim_ws_send_seconds_count");
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  auto replies = SendMany(*wa, b.id(), "p", 300, 300);
  ASSERT_EQ(replies.size(), 300u);
  int out_of_order = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    if (Int(replies[i], "seq") != static_cast<int64_t>(i + 1)) ++out_of_order;
  }
  EXPECT_EQ(out_of_order, 0) << "of 300 pipelined sends got a seq other than their send position";
  // Each send's time in the server went into the histogram (the server is
  // shared by this file's tests, hence the difference).
  EXPECT_EQ(ServerMetric("mpim_ws_send_seconds_count") - sends_before, 300);
}

TEST_F(WsMessagingE2eTest, ConversationIdIsTheSortedPairWhoeverSends) {
  auto [a, b, conv] = NewPair("pair");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  auto r1 = wa->Request(TextSend(b.id(), "x1", "a to b"));
  auto r2 = wb->Request(TextSend(a.id(), "x1", "b to a"));
  ASSERT_TRUE(IsSendResult(r1));
  ASSERT_TRUE(IsSendResult(r2));
  EXPECT_EQ(Str(*r1, "conv_id"), conv);
  EXPECT_EQ(Str(*r2, "conv_id"), conv);
  EXPECT_EQ(Int(*r1, "seq"), 1);
  EXPECT_EQ(Int(*r2, "seq"), 2);
  // The same client_msg_id from two senders is two messages.
  EXPECT_NE(Str(*r1, "msg_id"), Str(*r2, "msg_id"));
  auto m = wb->NextMsg(conv);
  ASSERT_TRUE(m) << wb->last_error();
  EXPECT_EQ(Str(MsgOf(*m), "msg_id"), Str(*r1, "msg_id"));
  EXPECT_EQ(Str(MsgOf(*m), "client_msg_id"), "x1");
  m = wa->NextMsg(conv);
  ASSERT_TRUE(m) << wa->last_error();
  EXPECT_EQ(Str(MsgOf(*m), "from"), b.id());
  EXPECT_EQ(MsgOf(*m).at("to"), (json::object{{"user", a.id()}}));
}

TEST_F(WsMessagingE2eTest, SameClientMsgIdIsOneMessageAcrossResendsReconnectsAndSessions) {
  auto [a, b, conv] = NewPair("dup");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  auto first = wa->Request(TextSend(b.id(), "dup-1", "once"));
  ASSERT_TRUE(IsSendResult(first));
  auto same_as_first = [&](const std::optional<json::object>& r) -> ::testing::AssertionResult {
    if (auto ok = IsSendResult(r); !ok) return ok;
    for (const char* k : {"msg_id", "conv_id", "seq", "ts"}) {
      if (r->at(k) != first->at(k)) {
        return ::testing::AssertionFailure()
               << k << " differs: " << json::serialize(*r) << " vs " << json::serialize(*first);
      }
    }
    return ::testing::AssertionSuccess();
  };
  EXPECT_TRUE(same_as_first(wa->Request(TextSend(b.id(), "dup-1", "once"))));
  // A different body under the same id still answers the first result.
  EXPECT_TRUE(same_as_first(wa->Request(TextSend(b.id(), "dup-1", "changed"))));
  // After a reconnect of the same session.
  wa.reset();
  wa = OpenWs(a.token(), WsAuth::kQuery);
  ASSERT_TRUE(wa);
  EXPECT_TRUE(same_as_first(wa->Request(TextSend(b.id(), "dup-1", "once"))));
  // From another session (login) of the same sender.
  auto wa2 = OpenWs(Login(a).access_token);
  ASSERT_TRUE(wa2);
  EXPECT_TRUE(same_as_first(wa2->Request(TextSend(b.id(), "dup-1", "once"))));
  // Through REST as well.
  ApiResponse rest = api_->Post(
      "/messages",
      "{\"to\":{\"user\":" + JsonString(b.id()) +
          "},\"client_msg_id\":\"dup-1\",\"type\":\"text\",\"body\":{\"text\":\"once\"}}",
      a.token());
  ASSERT_TRUE(rest.status == 200 || rest.status == 201) << rest.Describe();
  EXPECT_EQ(rest.json.as_object().at("msg_id"), first->at("msg_id"));
  EXPECT_EQ(rest.json.as_object().at("seq"), first->at("seq"));

  // The next new message takes the next seq, and B saw the first once.
  auto next = wa->Request(TextSend(b.id(), "dup-2", "next"));
  ASSERT_TRUE(IsSendResult(next));
  EXPECT_EQ(Int(*next, "seq"), Int(*first, "seq") + 1);
  auto m1 = wb->NextMsg(conv);
  auto m2 = wb->NextMsg(conv);
  ASSERT_TRUE(m1 && m2) << wb->last_error();
  EXPECT_EQ(Str(MsgOf(*m1), "msg_id"), Str(*first, "msg_id"));
  EXPECT_EQ(Str(Obj(MsgOf(*m1), "body") ? *Obj(MsgOf(*m1), "body") : json::object{}, "text"),
            "once");
  EXPECT_EQ(Int(MsgOf(*m2), "seq"), Int(*next, "seq"));
  auto [hist, more] = History(b.token(), conv, "?after_seq=0&limit=50");
  EXPECT_EQ(Seqs(hist), Range(1, 2));
  EXPECT_FALSE(more);
}

TEST_F(WsMessagingE2eTest, OfflineRecipientSeesTheConversationInHelloAndSyncsAllPages) {
  auto [a, b, conv] = NewPair("off");
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  auto replies = SendMany(*wa, b.id(), "off", 200);
  ASSERT_EQ(replies.size(), 200u);

  auto wb = OpenWs(b.token(), WsAuth::kFrame);
  ASSERT_TRUE(wb);
  const json::array* convs = Arr(wb->hello(), "conversations");
  ASSERT_TRUE(convs && convs->size() == 1) << json::serialize(wb->hello());
  const json::object& entry = convs->at(0).as_object();
  EXPECT_EQ(Str(entry, "conv_id"), conv);
  EXPECT_EQ(Int(entry, "last_seq"), 200);
  EXPECT_EQ(Int(entry, "read_seq"), 0);

  // Pages of 50: 4 pages, has_more true, true, true, false.
  int64_t after = 0;
  std::vector<json::object> all;
  for (int page = 0; page < 4; ++page) {
    auto r = wb->Request(
        json::object{{"op", "sync"}, {"conv_id", conv}, {"after_seq", after}, {"limit", 50}});
    ASSERT_TRUE(IsOkReply(r));
    const json::array* msgs = Arr(*r, "messages");
    ASSERT_TRUE(msgs) << json::serialize(*r);
    ASSERT_EQ(msgs->size(), 50u) << "page " << page;
    EXPECT_EQ(r->at("has_more"), json::value(page < 3)) << "page " << page;
    for (const auto& m : *msgs) {
      EXPECT_TRUE(IsMessage(m));
      all.push_back(m.as_object());
    }
    after = Int(all.back(), "seq");
  }
  ASSERT_EQ(Seqs(all), Range(1, 200));
  // Each stored message is the one its send reply named (send order is
  // PipelinedSendsFromOneSessionKeepTheirOrder's business).
  std::map<int64_t, std::pair<std::string, std::string>> sent;  // seq -> (msg_id, cmid)
  for (size_t i = 0; i < replies.size(); ++i) {
    sent[Int(replies[i], "seq")] = {Str(replies[i], "msg_id"), "off-" + std::to_string(i + 1)};
  }
  for (const auto& m : all) {
    EXPECT_EQ(Str(m, "msg_id"), sent[Int(m, "seq")].first) << Int(m, "seq");
    EXPECT_EQ(Str(m, "client_msg_id"), sent[Int(m, "seq")].second) << Int(m, "seq");
  }
  auto end = wb->Request(json::object{{"op", "sync"}, {"conv_id", conv}, {"after_seq", 200}});
  ASSERT_TRUE(IsOkReply(end));
  EXPECT_TRUE(Arr(*end, "messages") && Arr(*end, "messages")->empty()) << json::serialize(*end);
  EXPECT_EQ(end->at("has_more"), json::value(false));
  // No limit: the default page of 50.
  auto dflt = wb->Request(json::object{{"op", "sync"}, {"conv_id", conv}, {"after_seq", 0}});
  ASSERT_TRUE(IsOkReply(dflt));
  ASSERT_TRUE(Arr(*dflt, "messages"));
  EXPECT_EQ(Arr(*dflt, "messages")->size(), 50u);
  // Limits outside 1..page_max are refused.
  for (int64_t limit : {0, -1, 201}) {
    EXPECT_TRUE(
        IsErrorReply(wb->Request(json::object{
                         {"op", "sync"}, {"conv_id", conv}, {"after_seq", 0}, {"limit", limit}}),
                     "invalid_argument"))
        << limit;
  }
  // A conversation B is not in.
  Account c = NewAccount("off_c");
  auto other = wb->Request(
      json::object{{"op", "sync"}, {"conv_id", PrivateConvId(a.id(), c.id())}, {"after_seq", 0}});
  EXPECT_TRUE(IsErrorReply(other, "permission_denied") || IsErrorReply(other, "not_found"))
      << json::serialize(other ? *other : json::object{});
}

TEST_F(WsMessagingE2eTest, RestHistoryAgreesWithSync) {
  auto [a, b, conv] = NewPair("hist");
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  ASSERT_EQ(SendMany(*wa, b.id(), "h", 120).size(), 120u);
  auto synced = testing::SyncAll(*wb, conv, 0, 50);
  ASSERT_EQ(Seqs(synced), Range(1, 120));

  for (const std::string* token : {&b.session.access_token, &a.session.access_token}) {
    auto [all, more] = History(*token, conv, "?after_seq=0&limit=200");
    EXPECT_FALSE(more);
    ASSERT_EQ(all.size(), synced.size());
    for (size_t i = 0; i < all.size(); ++i) {
      EXPECT_EQ(all[i], synced[i])
          << json::serialize(all[i]) << " vs " << json::serialize(synced[i]);
    }
  }
  struct Page {
    std::string query;
    int64_t first, last;
    bool has_more;
  };
  for (const Page& p : std::vector<Page>{{"?after_seq=0&limit=50", 1, 50, true},
                                         {"?after_seq=100&limit=50", 101, 120, false},
                                         {"?after_seq=70&limit=50", 71, 120, false},
                                         {"?before_seq=121&limit=50", 71, 120, true},
                                         {"?before_seq=51&limit=50", 1, 50, false},
                                         {"?before_seq=30&limit=10", 20, 29, true},
                                         {"?after_seq=10&before_seq=16", 11, 15, false}}) {
    SCOPED_TRACE(p.query);
    auto [msgs, more] = History(b.token(), conv, p.query);
    EXPECT_EQ(Seqs(msgs), Range(p.first, p.last));
    EXPECT_EQ(more, p.has_more);
  }
  // Without a cursor: the latest page, ascending.
  auto [latest, latest_more] = History(b.token(), conv, "");
  EXPECT_EQ(Seqs(latest), Range(71, 120));
  EXPECT_TRUE(latest_more);

  for (const char* q : {"?limit=0", "?limit=201", "?limit=x", "?after_seq=-1", "?before_seq=x"}) {
    EXPECT_TRUE(IsError(api_->Get("/conversations/" + conv + "/messages" + q, b.token()), 400,
                        "invalid_argument"))
        << q;
  }
  EXPECT_TRUE(
      IsError(api_->Get("/conversations/nonsense/messages", b.token()), 400, "invalid_argument"));
  EXPECT_EQ(api_->Get("/conversations/" + conv + "/messages").status, 401);
  Account c = NewAccount("hist_c");
  ApiResponse outsider = api_->Get("/conversations/" + conv + "/messages", c.token());
  EXPECT_TRUE(IsError(outsider, 403, "permission_denied") || IsError(outsider, 404, "not_found"))
      << outsider.Describe();
}

TEST_F(WsMessagingE2eTest, ConversationListShowsCursorsUnreadLastMessageAndPeer) {
  auto [a, b, conv] = NewPair("list");
  Account c = NewAccount("list_c");
  auto wa = OpenWs(a.token());
  auto wc = OpenWs(c.token());
  ASSERT_TRUE(wa && wc);
  auto from_a = SendMany(*wa, b.id(), "la", 3);
  ASSERT_EQ(from_a.size(), 3u);
  // C writes until its message is at least a millisecond newer than A's
  // last one, so "most recent first" has one answer.
  int64_t a_last_ts = 0;
  std::string a_last_msg_id;
  for (const auto& r : from_a) {
    a_last_ts = std::max(a_last_ts, Int(r, "ts"));
    if (Int(r, "seq") == 3) a_last_msg_id = Str(r, "msg_id");
  }
  for (int i = 1; i <= 1000; ++i) {
    auto r = wc->Request(TextSend(b.id(), "lc" + std::to_string(i), "from c"));
    ASSERT_TRUE(IsSendResult(r));
    if (Int(*r, "ts") > a_last_ts) break;
  }
  const std::string& conv_ab = conv;
  const std::string conv_bc = PrivateConvId(b.id(), c.id());

  ApiResponse r = api_->Get("/conversations", b.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  json::array list = ConversationList(r);
  ASSERT_EQ(list.size(), 2u) << r.body;
  // Most recent first.
  EXPECT_EQ(Str(list[0].as_object(), "conv_id"), conv_bc);
  EXPECT_EQ(Str(list[1].as_object(), "conv_id"), conv_ab);
  json::object ab = FindConv(list, conv_ab);
  EXPECT_EQ(Str(ab, "type"), "private");
  ASSERT_TRUE(Obj(ab, "peer")) << json::serialize(ab);
  EXPECT_TRUE(testing::IsUserObject(ab.at("peer")));
  EXPECT_EQ(Str(*Obj(ab, "peer"), "user_id"), a.id());
  EXPECT_EQ(Int(ab, "last_seq"), 3);
  EXPECT_EQ(Int(ab, "read_seq"), 0);
  EXPECT_EQ(Int(ab, "unread"), 3);
  ASSERT_TRUE(Obj(ab, "last_message")) << json::serialize(ab);
  EXPECT_TRUE(IsMessage(ab.at("last_message")));
  EXPECT_EQ(Str(*Obj(ab, "last_message"), "msg_id"), a_last_msg_id);
  EXPECT_EQ(ab["muted"], json::value(false));
  EXPECT_EQ(ab["pinned"], json::value(false));
  EXPECT_FALSE(ab.contains("group")) << json::serialize(ab);

  // The sender's own messages are not unread for the sender.
  json::object a_view = FindConv(ConversationList(api_->Get("/conversations", a.token())), conv_ab);
  EXPECT_EQ(Int(a_view, "unread"), 0) << json::serialize(a_view);
  EXPECT_EQ(Str(*Obj(a_view, "peer"), "user_id"), b.id());

  // Reading through REST moves read_seq and unread.
  ApiResponse read = api_->Post("/conversations/" + conv_ab + "/read", "{\"seq\":2}", b.token());
  EXPECT_EQ(read.status, 204) << read.Describe();
  EXPECT_TRUE(read.body.empty());
  ab = FindConv(ConversationList(api_->Get("/conversations", b.token())), conv_ab);
  EXPECT_EQ(Int(ab, "read_seq"), 2);
  EXPECT_EQ(Int(ab, "unread"), 1);
  // limit=1 keeps the most recent only.
  json::array one = ConversationList(api_->Get("/conversations?limit=1", b.token()));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(Str(one[0].as_object(), "conv_id"), conv_bc);

  EXPECT_TRUE(
      IsError(api_->Post("/conversations/" + conv_ab + "/read", "{\"seq\":\"2\"}", b.token()), 400,
              "invalid_argument"));
  EXPECT_TRUE(IsError(api_->Post("/conversations/" + conv_ab + "/read", "{}", b.token()), 400,
                      "invalid_argument"));
  ApiResponse outsider =
      api_->Post("/conversations/" + conv_ab + "/read", "{\"seq\":1}", c.token());
  EXPECT_TRUE(IsError(outsider, 403, "permission_denied") || IsError(outsider, 404, "not_found"))
      << outsider.Describe();
}

TEST_F(WsMessagingE2eTest, RestSendBehavesLikeWsSendAndIsDeliveredLive) {
  auto [a, b, conv] = NewPair("rest");
  auto a_ws = OpenWs(Login(a).access_token);  // another session of the sender
  auto b1 = OpenWs(b.token());
  auto b2 = OpenWs(Login(b).access_token);
  ASSERT_TRUE(a_ws && b1 && b2);
  ApiResponse r = api_->Post("/messages",
                             "{\"to\":{\"user\":" + JsonString(b.id()) +
                                 "},\"client_msg_id\":\"rest-1\",\"body\":{\"text\":\"via rest\"}}",
                             a.token());
  ASSERT_TRUE(r.status == 200 || r.status == 201) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.body;
  const json::object& res = r.json.as_object();
  EXPECT_TRUE(testing::IsDecimalId(Str(res, "msg_id"))) << r.body;
  EXPECT_EQ(Str(res, "conv_id"), conv);
  EXPECT_EQ(Int(res, "seq"), 1);
  EXPECT_GT(Int(res, "ts"), 0);
  for (WsConn* ws : {b1.get(), b2.get(), a_ws.get()}) {
    auto m = ws->NextMsg(conv);
    ASSERT_TRUE(m) << ws->last_error();
    json::object msg = MsgOf(*m);
    EXPECT_EQ(Str(msg, "msg_id"), Str(res, "msg_id"));
    EXPECT_EQ(Int(msg, "seq"), 1);
    EXPECT_EQ(Str(msg, "type"), "text");  // the default type
    EXPECT_EQ(Str(msg, "client_msg_id"), "rest-1");
  }
  // A custom message through REST.
  ApiResponse custom = api_->Post(
      "/messages",
      "{\"to\":{\"user\":" + JsonString(b.id()) +
          "},\"client_msg_id\":\"rest-2\",\"type\":\"custom\",\"body\":{\"card\":[1,2]}}",
      a.token());
  ASSERT_TRUE(custom.status == 200 || custom.status == 201) << custom.Describe();
  auto m = b1->NextMsg(conv);
  ASSERT_TRUE(m) << b1->last_error();
  EXPECT_EQ(Str(MsgOf(*m), "type"), "custom");
  EXPECT_EQ(MsgOf(*m).at("body"), json::parse("{\"card\":[1,2]}"));
}

TEST_F(WsMessagingE2eTest, ReadSendsReceiptsToThePeerAndTheReadersOtherSessions) {
  auto [a, b, conv] = NewPair("rd");
  auto a1 = OpenWs(a.token());
  auto a2 = OpenWs(Login(a).access_token);
  testing::Session b_second = Login(b);
  auto b1 = OpenWs(b.token());
  auto b2 = OpenWs(b_second.access_token);
  ASSERT_TRUE(a1 && a2 && b1 && b2);
  ASSERT_EQ(SendMany(*a1, b.id(), "rd", 3).size(), 3u);

  auto r = b1->Request(json::object{{"op", "read"}, {"conv_id", conv}, {"seq", 2}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Int(*r, "read_seq"), 2) << json::serialize(*r);  // docs/protocol.md
  for (WsConn* ws : {a1.get(), a2.get(), b2.get()}) {
    auto receipt = ws->NextEvent("receipt");
    ASSERT_TRUE(receipt) << ws->last_error();
    EXPECT_EQ(Str(*receipt, "conv_id"), conv);
    EXPECT_EQ(Str(*receipt, "user"), b.id());
    EXPECT_EQ(Int(*receipt, "read_seq"), 2);
    EXPECT_FALSE(receipt->contains("rid"));
  }
  // Not to the reading session itself.
  EXPECT_TRUE(b1->Drain("receipt", Ms(300)).empty());

  // A read below the cursor does not move it back: the reply carries the
  // cursor, and any receipt repeats it (docs/protocol.md: cursors only move
  // forward; a receipt may repeat a value).
  r = b2->Request(json::object{{"op", "read"}, {"conv_id", conv}, {"seq", 1}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Int(*r, "read_seq"), 2) << json::serialize(*r);
  // Moving it again from the other device.
  r = b2->Request(json::object{{"op", "read"}, {"conv_id", conv}, {"seq", 3}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Int(*r, "read_seq"), 3) << json::serialize(*r);
  for (WsConn* ws : {a1.get(), b1.get()}) {
    int64_t seen = 0;
    while (seen < 3) {
      auto receipt = ws->NextEvent("receipt");
      ASSERT_TRUE(receipt) << ws->last_error();
      EXPECT_GE(Int(*receipt, "read_seq"), 2) << "a receipt moved backwards";
      seen = Int(*receipt, "read_seq");
    }
    EXPECT_EQ(seen, 3);
  }

  // read_seq is per user: every device and the REST listing see it.
  WsConn b3(port());
  ASSERT_TRUE(b3.Open(b_second.access_token, WsAuth::kQuery));
  for (const auto& c : *Arr(b3.hello(), "conversations")) {
    if (Str(c.as_object(), "conv_id") == conv) {
      EXPECT_EQ(Int(c.as_object(), "read_seq"), 3);
    }
  }
  json::object listed = FindConv(ConversationList(api_->Get("/conversations", b.token())), conv);
  EXPECT_EQ(Int(listed, "read_seq"), 3);
  EXPECT_EQ(Int(listed, "unread"), 0);
  // REST read also sends receipts.
  ASSERT_EQ(SendMany(*a1, b.id(), "rd2", 1).size(), 1u);
  EXPECT_EQ(api_->Post("/conversations/" + conv + "/read", "{\"seq\":4}", b.token()).status, 204);
  int64_t seen = 0;
  while (seen < 4) {
    auto receipt = a2->NextEvent("receipt");
    ASSERT_TRUE(receipt) << a2->last_error();
    seen = Int(*receipt, "read_seq");
  }
  EXPECT_EQ(seen, 4);
}

TEST_F(WsMessagingE2eTest, TypingReachesThePeersSessionsOnly) {
  auto [a, b, conv] = NewPair("ty");
  auto a1 = OpenWs(a.token());
  auto b1 = OpenWs(b.token());
  auto b2 = OpenWs(Login(b).access_token);
  ASSERT_TRUE(a1 && b1 && b2);
  ASSERT_EQ(SendMany(*a1, b.id(), "ty", 1).size(), 1u);
  ASSERT_TRUE(a1->Send(json::object{{"op", "typing"}, {"conv_id", conv}}));
  for (WsConn* ws : {b1.get(), b2.get()}) {
    auto t = ws->NextEvent("typing");
    ASSERT_TRUE(t) << ws->last_error();
    EXPECT_EQ(Str(*t, "conv_id"), conv);
    EXPECT_EQ(Str(*t, "user"), a.id());
  }
  // No reply (even with a rid) and no echo to the typist.
  ASSERT_TRUE(a1->Send(json::object{{"op", "typing"}, {"conv_id", conv}, {"rid", 77}}));
  EXPECT_TRUE(b1->NextEvent("typing")) << b1->last_error();
  EXPECT_TRUE(Pings(*a1));
  EXPECT_TRUE(a1->Drain("typing", Ms(200)).empty());
  EXPECT_TRUE(a1->Drain("reply", Ms(0)).empty()) << "typing got a reply";
  // Never stored.
  auto synced = testing::SyncAll(*b1, conv, 0, 50);
  EXPECT_EQ(synced.size(), 1u);
}

TEST_F(WsMessagingE2eTest, PresenceEventsAndOnlineInUserObjects) {
  Account a = NewAccount("pr_a");
  Account c = NewAccount("pr_c");
  auto watcher = OpenWs(c.token());
  ASSERT_TRUE(watcher);
  auto user_a = [&] { return api_->Get("/users/" + a.id(), c.token()); };
  ApiResponse before = user_a();
  ASSERT_EQ(before.status, 200);
  EXPECT_EQ(before.json.as_object().at("online"), json::value(false));

  auto sub = watcher->Request(json::object{{"op", "presence.sub"}, {"users", json::array{a.id()}}});
  ASSERT_TRUE(IsOkReply(sub));
  auto state = watcher->NextEvent("presence");
  ASSERT_TRUE(state) << watcher->last_error();
  EXPECT_EQ(Str(*state, "user"), a.id());
  EXPECT_EQ(state->at("online"), json::value(false));

  int64_t connected_at = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  auto s1 = OpenWs(a.token());
  ASSERT_TRUE(s1);
  auto online = watcher->NextEvent("presence");
  ASSERT_TRUE(online) << watcher->last_error();
  EXPECT_EQ(Str(*online, "user"), a.id());
  EXPECT_EQ(online->at("online"), json::value(true));
  ApiResponse during = user_a();
  ASSERT_EQ(during.status, 200);
  EXPECT_EQ(during.json.as_object().at("online"), json::value(true)) << during.body;
  EXPECT_TRUE(testing::IsUserObject(during.json));

  // A second socket keeps the user online; only the last one going takes
  // the user offline, with one event each way.
  auto s2 = OpenWs(Login(a).access_token);
  ASSERT_TRUE(s2);
  ASSERT_TRUE(s1->client().Close(1000, "bye", client::WsClock::now() + Ms(3000)).ok());
  ASSERT_TRUE(s2->client().Close(1000, "bye", client::WsClock::now() + Ms(3000)).ok());
  auto offline = watcher->NextEvent("presence");
  ASSERT_TRUE(offline) << watcher->last_error();
  EXPECT_EQ(offline->at("online"), json::value(false)) << json::serialize(*offline);
  EXPECT_GE(Int(*offline, "last_seen"), connected_at - 2000) << json::serialize(*offline);
  ApiResponse after = user_a();
  ASSERT_EQ(after.status, 200);
  EXPECT_EQ(after.json.as_object().at("online"), json::value(false));
  EXPECT_EQ(Int(after.json.as_object(), "last_seen"), Int(*offline, "last_seen")) << after.body;

  // Unsubscribed: no more events.
  ASSERT_TRUE(IsOkReply(
      watcher->Request(json::object{{"op", "presence.unsub"}, {"users", json::array{a.id()}}})));
  auto s3 = OpenWs(a.token());
  ASSERT_TRUE(s3);
  ASSERT_EQ(user_a().json.as_object().at("online"), json::value(true));
  EXPECT_TRUE(watcher->Drain("presence", Ms(300)).empty());
}

TEST_F(WsMessagingE2eTest, SendRefusals) {
  auto [a, b, conv] = NewPair("ref");
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  auto send = [&](json::object f) { return wa->Request(std::move(f)); };
  EXPECT_TRUE(IsErrorReply(send(TextSend(a.id(), "self", "me")), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(TextSend("987654321012", "ghost", "x")), "not_found"));
  // body: at most 64 KiB serialized (the frame itself stays under 128 KiB).
  EXPECT_TRUE(IsErrorReply(send(TextSend(b.id(), "big", std::string(70 * 1024, 'b'))),
                           "payload_too_large"));
  EXPECT_TRUE(IsSendResult(send(TextSend(b.id(), "fits", std::string(60 * 1024, 'b')))));
  // Field checks.
  auto with = [&](const char* key, json::value v) {
    json::object f = TextSend(b.id(), "fld", "x");
    f[key] = std::move(v);
    return f;
  };
  EXPECT_TRUE(IsErrorReply(send(with("client_msg_id", "")), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("client_msg_id", json::string(std::string(65, 'c')))),
                           "invalid_argument"));
  EXPECT_TRUE(IsSendResult(send(with("client_msg_id", json::string(std::string(64, 'c'))))));
  EXPECT_TRUE(IsErrorReply(send(with("type", "system")), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("type", "video")), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("body", json::object{{"txt", "x"}})), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("body", json::object{{"text", 5}})), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("qos", 2)), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("priority", "mega")), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("to", json::object{{"user", "abc"}})), "invalid_argument"));
  EXPECT_TRUE(IsErrorReply(send(with("to", json::object{})), "invalid_argument"));
  json::object custom = with("type", "custom");
  custom["client_msg_id"] = "custom-1";
  custom["body"] = json::object{{"anything", json::array{1, "two"}}};
  custom["priority"] = "urgent";
  custom["qos"] = 0;
  EXPECT_TRUE(IsSendResult(send(custom)));

  // A blocked sender: permission_denied, and nothing is stored.
  ASSERT_EQ(api_->Post("/blocks/" + a.id(), "", b.token()).status, 204);
  EXPECT_TRUE(IsErrorReply(send(TextSend(b.id(), "blocked", "hey")), "permission_denied"));
  ApiResponse rest = api_->Post("/messages",
                                "{\"to\":{\"user\":" + JsonString(b.id()) +
                                    "},\"client_msg_id\":\"blocked2\",\"body\":{\"text\":\"x\"}}",
                                a.token());
  EXPECT_TRUE(IsError(rest, 403, "permission_denied"));
  // The blocker may still write; unblocking lets the sender write again.
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wb);
  auto from_b = wb->Request(TextSend(a.id(), "from-b", "still here"));
  ASSERT_TRUE(IsSendResult(from_b)) << "the blocker cannot send";
  EXPECT_EQ(api_->Delete("/blocks/" + a.id(), b.token()).status, 204);
  auto unblocked = send(TextSend(b.id(), "unblocked", "hey"));
  ASSERT_TRUE(IsSendResult(unblocked));
  EXPECT_EQ(Int(*unblocked, "seq"), Int(*from_b, "seq") + 1) << "a refused send took a seq";
  EXPECT_TRUE(Pings(*wa));
}

}  // namespace
}  // namespace mpim
