// End-to-end: recall and full-text search against the real `mpim` binary
// (docs/protocol.md section 2 `POST /messages/{id}/recall`,
// `GET /search/messages`, section 3 `recall` events; docs/protocol.md "Recall and
// search"): the sender recalls within messages.recall_window_ms and not
// after, group owners and admins at any time; a recalled body is a tombstone
// in history, sync, the conversation list and search; search finds text
// messages by word, only in the caller's conversations and membership
// spans, validates q, and is fed asynchronously (polled with a deadline).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiResponse;
using testing::GroupRef;
using testing::Int;
using testing::IsError;
using testing::JsonString;
using testing::Ms;
using testing::MsgOf;
using testing::Obj;
using testing::Str;
using testing::WsConn;

namespace json = boost::json;

constexpr int kRecallWindowMs = 3000;
// How long indexing may take before a test calls it a failure.
constexpr Ms kIndexDeadline{15000};

struct RecallSearchConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                           {"MPIM_LIMITS_SEND_BURST", "100000"},
                           {"MPIM_MESSAGES_RECALL_WINDOW_MS", std::to_string(kRecallWindowMs)}});
  }
};

// A word no other message has: letters only, so that any tokenizer keeps it
// whole.
std::string UniqueWord(std::string_view stem) {
  static int n = 0;
  std::string word(stem);
  int v = ++n;
  do {
    word += static_cast<char>('a' + v % 26);
    v /= 26;
  } while (v > 0);
  return word + "zq";
}

class RecallSearchE2eTest : public testing::WsServerTest<RecallSearchConfig> {
 protected:
  ApiResponse Recall(const Account& who, const std::string& msg_id) {
    return api_->Post("/messages/" + msg_id + "/recall", "", who.token());
  }
  // One text send over WebSocket; the reply.
  json::object SendText(WsConn& ws, const json::object& frame) {
    auto r = ws.Request(frame);
    EXPECT_TRUE(testing::IsSendResult(r)) << ws.last_error();
    return r ? *r : json::object{};
  }
  // The msg_ids `who` finds for `q` (and `conv_id`).
  std::vector<std::string> Found(const Account& who, const std::string& q,
                                 const std::string& conv_id = "") {
    return testing::SearchIds(testing::Search(*api_, who.token(), q, conv_id));
  }
  // Polls until `who`'s search for `q` holds `msg_id`.
  bool Indexed(const Account& who, const std::string& q, const std::string& msg_id) {
    return testing::PollUntil(
        [&] {
          auto ids = Found(who, q);
          return std::find(ids.begin(), ids.end(), msg_id) != ids.end();
        },
        kIndexDeadline);
  }
  static bool Contains(const std::vector<std::string>& ids, const std::string& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }
};

// Success when `m` is the tombstone of a recalled message: recalled true,
// body {}, the same ids and seq.
::testing::AssertionResult IsTombstone(const json::object& m, const json::object& sent) {
  const json::value* recalled = m.if_contains("recalled");
  const json::object* body = Obj(m, "body");
  if (!recalled || *recalled != json::value(true) || !body || !body->empty() ||
      Str(m, "msg_id") != Str(sent, "msg_id") || Int(m, "seq") != Int(sent, "seq")) {
    return ::testing::AssertionFailure()
           << "not the tombstone of " << json::serialize(sent) << ": " << json::serialize(m);
  }
  return ::testing::AssertionSuccess();
}

// The message of `seq` in `messages`, or an empty object.
json::object BySeq(const std::vector<json::object>& messages, int64_t seq) {
  for (const auto& m : messages) {
    if (Int(m, "seq") == seq) return m;
  }
  return {};
}

TEST_F(RecallSearchE2eTest, SenderRecallsWithinTheWindowAndEverySessionHearsIt) {
  Account a = NewAccount("rw_a");
  Account b = NewAccount("rw_b");
  Account c = NewAccount("rw_c");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "recall", {b.id(), c.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto a1 = OpenWs(a.token());
  auto a2 = OpenWs(Login(a).access_token);
  auto b1 = OpenWs(b.token());
  auto b2 = OpenWs(Login(b).access_token);
  auto c1 = OpenWs(c.token());
  ASSERT_TRUE(a1 && a2 && b1 && b2 && c1);
  const std::string secret = UniqueWord("secret");
  json::object kept = SendText(*b1, testing::GroupTextSend(g.group_id, "rw0", "kept text"));
  json::object sent =
      SendText(*b1, testing::GroupTextSend(g.group_id, "rw1", "the " + secret + " plan"));
  ASSERT_FALSE(sent.empty());
  for (WsConn* ws : {a1.get(), c1.get()}) {
    for (int i = 0; i < 2; ++i) ASSERT_TRUE(ws->NextMsg(g.conv_id)) << ws->last_error();
  }

  ApiResponse r = Recall(b, Str(sent, "msg_id"));
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(r.json.is_object()) << r.body;
  EXPECT_TRUE(testing::IsMessage(r.json));
  EXPECT_TRUE(IsTombstone(r.json.as_object(), sent));
  EXPECT_EQ(r.body.find(secret), std::string::npos) << r.body;
  for (WsConn* ws : {a1.get(), a2.get(), b1.get(), b2.get(), c1.get()}) {
    auto e = ws->NextEvent("recall");
    ASSERT_TRUE(e) << ws->last_error();
    EXPECT_EQ(Str(*e, "conv_id"), g.conv_id);
    EXPECT_EQ(Int(*e, "seq"), Int(sent, "seq"));
    EXPECT_EQ(Str(*e, "msg_id"), Str(sent, "msg_id"));
    EXPECT_FALSE(e->contains("rid"));
  }
  // Recalling again is fine.
  EXPECT_EQ(Recall(b, Str(sent, "msg_id")).status, 200);

  // The text is gone from history, sync and the conversation list.
  auto history = testing::History(*api_, c.token(), g.conv_id);
  EXPECT_TRUE(IsTombstone(BySeq(history, Int(sent, "seq")), sent));
  EXPECT_EQ(Str(*Obj(BySeq(history, Int(kept, "seq")), "body"), "text"), "kept text");
  for (const auto& m : history) EXPECT_EQ(json::serialize(m).find(secret), std::string::npos);
  auto synced = testing::SyncAll(*c1, g.conv_id, 0, 50);
  EXPECT_TRUE(IsTombstone(BySeq(synced, Int(sent, "seq")), sent));
  for (const auto& m : synced) EXPECT_EQ(json::serialize(m).find(secret), std::string::npos);
  ApiResponse list = api_->Get("/conversations", a.token());
  EXPECT_EQ(list.body.find(secret), std::string::npos) << list.body;
  json::object conv = testing::FindConv(testing::ConversationList(list), g.conv_id);
  ASSERT_TRUE(Obj(conv, "last_message")) << json::serialize(conv);
  EXPECT_TRUE(IsTombstone(*Obj(conv, "last_message"), sent));

  // A private message, recalled by its sender; the peer hears it.
  auto pa = OpenWs(Login(a).access_token);
  ASSERT_TRUE(pa);
  json::object priv = SendText(*c1, testing::TextSend(a.id(), "rw2", "private " + secret));
  ASSERT_TRUE(pa->NextMsg(testing::PrivateConvId(a.id(), c.id())));
  EXPECT_TRUE(IsError(Recall(a, Str(priv, "msg_id")), 403, "permission_denied"))
      << "only the sender may recall a private message";
  r = Recall(c, Str(priv, "msg_id"));
  ASSERT_EQ(r.status, 200) << r.Describe();
  auto e = pa->NextEvent("recall");
  ASSERT_TRUE(e) << pa->last_error();
  EXPECT_EQ(Str(*e, "msg_id"), Str(priv, "msg_id"));
  EXPECT_EQ(Str(*e, "conv_id"), testing::PrivateConvId(a.id(), c.id()));
}

TEST_F(RecallSearchE2eTest, AfterTheWindowOnlyOwnersAndAdminsRecall) {
  Account owner = NewAccount("ra_o");
  Account admin = NewAccount("ra_a");
  Account m1 = NewAccount("ra_m1");
  Account m2 = NewAccount("ra_m2");
  Account out = NewAccount("ra_x");
  GroupRef g = testing::CreateGroup(*api_, owner.token(), "window", {admin.id(), m1.id(), m2.id()});
  ASSERT_FALSE(g.group_id.empty());
  ASSERT_EQ(testing::SetRole(*api_, owner.token(), g.group_id, admin.id(), "admin").status, 200);
  auto w1 = OpenWs(m1.token());
  auto wo = OpenWs(owner.token());
  ASSERT_TRUE(w1 && wo);
  const auto sent_at = std::chrono::steady_clock::now();
  json::object x = SendText(*w1, testing::GroupTextSend(g.group_id, "x", "x"));
  json::object y = SendText(*w1, testing::GroupTextSend(g.group_id, "y", "y"));
  json::object z = SendText(*w1, testing::GroupTextSend(g.group_id, "z", "z"));
  json::object w = SendText(*wo, testing::GroupTextSend(g.group_id, "w", "w"));
  json::object p = SendText(*w1, testing::TextSend(m2.id(), "p", "private p"));
  ASSERT_FALSE(x.empty() || y.empty() || z.empty() || w.empty() || p.empty());

  // Within the window: other plain members and outsiders may not.
  EXPECT_TRUE(IsError(Recall(m2, Str(x, "msg_id")), 403, "permission_denied"));
  EXPECT_TRUE(IsError(Recall(out, Str(x, "msg_id")), 403, "permission_denied"));
  EXPECT_TRUE(IsError(Recall(m2, Str(p, "msg_id")), 403, "permission_denied"));
  EXPECT_TRUE(IsError(Recall(m1, "987654321012345"), 404, "not_found"));
  EXPECT_TRUE(IsError(Recall(m1, "abc"), 400, "invalid_argument"));
  EXPECT_TRUE(
      IsError(api_->Post("/messages/" + Str(x, "msg_id") + "/recall", ""), 401, "unauthenticated"));

  // Time has to pass here: the window is a duration, not an event.
  std::this_thread::sleep_until(sent_at + Ms(kRecallWindowMs + 500));
  EXPECT_TRUE(IsError(Recall(m1, Str(x, "msg_id")), 403, "permission_denied"));
  EXPECT_TRUE(IsError(Recall(m1, Str(p, "msg_id")), 403, "permission_denied"));
  ApiResponse r = Recall(admin, Str(x, "msg_id"));
  EXPECT_EQ(r.status, 200) << r.Describe();
  if (r.json.is_object()) {
    EXPECT_TRUE(IsTombstone(r.json.as_object(), x));
  }
  r = Recall(owner, Str(y, "msg_id"));
  EXPECT_EQ(r.status, 200) << r.Describe();
  r = Recall(admin, Str(w, "msg_id"));
  EXPECT_EQ(r.status, 200) << "an admin recalls the owner's message too: " << r.Describe();
  // The members' sessions hear each one.
  for (const json::object* sent : {&x, &y, &w}) {
    auto e = w1->NextEvent("recall");
    ASSERT_TRUE(e) << w1->last_error();
    EXPECT_EQ(Str(*e, "msg_id"), Str(*sent, "msg_id"));
  }
  auto history = testing::History(*api_, m2.token(), g.conv_id);
  EXPECT_TRUE(IsTombstone(BySeq(history, Int(x, "seq")), x));
  EXPECT_TRUE(IsTombstone(BySeq(history, Int(y, "seq")), y));
  EXPECT_TRUE(IsTombstone(BySeq(history, Int(w, "seq")), w));
  json::object kept = BySeq(history, Int(z, "seq"));
  EXPECT_FALSE(kept.contains("recalled") && kept.at("recalled") == json::value(true));
  EXPECT_EQ(Str(*Obj(kept, "body"), "text"), "z");
}

TEST_F(RecallSearchE2eTest, SearchFindsTextMessagesOnlyInTheCallersConversations) {
  Account a = NewAccount("sr_a");
  Account b = NewAccount("sr_b");
  Account c = NewAccount("sr_c");
  Account d = NewAccount("sr_d");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "search", {b.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  const std::string word = UniqueWord("kiwi");
  json::object in_group =
      SendText(*wa, testing::GroupTextSend(g.group_id, "s1", "hello " + word + " world"));
  json::object custom{{"op", "send"},
                      {"to", json::object{{"group", g.group_id}}},
                      {"client_msg_id", "s2"},
                      {"type", "custom"},
                      {"body", json::object{{"text", word}}}};
  SendText(*wa, custom);
  json::object private_ad =
      SendText(*wa, testing::TextSend(d.id(), "s3", "Hello " + word + " again"));
  ASSERT_FALSE(in_group.empty() || private_ad.empty());

  ASSERT_TRUE(Indexed(b, word, Str(in_group, "msg_id"))) << "not searchable in time";
  ASSERT_TRUE(Indexed(a, word, Str(private_ad, "msg_id"))) << "not searchable in time";
  // b: the group's text message only (not the custom one, not a's chat with d).
  EXPECT_EQ(Found(b, word), std::vector<std::string>{Str(in_group, "msg_id")});
  // a: both; narrowed to one conversation.
  auto mine = Found(a, word);
  EXPECT_EQ(mine.size(), 2u);
  EXPECT_TRUE(Contains(mine, Str(in_group, "msg_id")));
  EXPECT_TRUE(Contains(mine, Str(private_ad, "msg_id")));
  EXPECT_EQ(Found(a, word, testing::PrivateConvId(a.id(), d.id())),
            std::vector<std::string>{Str(private_ad, "msg_id")});
  EXPECT_EQ(Found(a, word, g.conv_id), std::vector<std::string>{Str(in_group, "msg_id")});
  EXPECT_EQ(testing::SearchIds(testing::Search(*api_, a.token(), word, "", 1)).size(), 1u);
  // d: the private message only; c: nothing.
  EXPECT_EQ(Found(d, word), std::vector<std::string>{Str(private_ad, "msg_id")});
  EXPECT_TRUE(Found(c, word).empty());
  // Words, case-insensitively; every word must match.
  EXPECT_TRUE(Contains(Found(b, "HELLO " + word), Str(in_group, "msg_id")));
  EXPECT_TRUE(Found(b, word + " " + UniqueWord("absent")).empty());
  // The results are whole Message objects.
  ApiResponse r = testing::Search(*api_, b.token(), word);
  ASSERT_EQ(r.status, 200) << r.Describe();
  const auto& found = r.json.as_object().at("messages").as_array();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(Str(found[0].as_object(), "conv_id"), g.conv_id);
  EXPECT_EQ(Int(found[0].as_object(), "seq"), Int(in_group, "seq"));
  EXPECT_EQ(Str(*Obj(found[0].as_object(), "body"), "text"), "hello " + word + " world");
}

TEST_F(RecallSearchE2eTest, SearchStaysWithinMembershipSpans) {
  Account a = NewAccount("sp_a");
  Account b = NewAccount("sp_b");
  Account n = NewAccount("sp_n");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "spans", {b.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  const std::string word = UniqueWord("span");
  json::object early = SendText(*wa, testing::GroupTextSend(g.group_id, "e", word + " early"));
  ASSERT_EQ(testing::AddMembers(*api_, a.token(), g.group_id, {n.id()}).status, 200);
  json::object late = SendText(*wa, testing::GroupTextSend(g.group_id, "l", word + " late"));
  ASSERT_EQ(testing::RemoveMember(*api_, b.token(), g.group_id, b.id()).status, 204);
  json::object gone = SendText(*wa, testing::GroupTextSend(g.group_id, "g", word + " gone"));
  ASSERT_TRUE(Indexed(a, word, Str(gone, "msg_id")));
  ASSERT_TRUE(Indexed(a, word, Str(early, "msg_id")));
  EXPECT_EQ(Found(a, word).size(), 3u);

  auto newcomer = Found(n, word);
  EXPECT_FALSE(Contains(newcomer, Str(early, "msg_id"))) << "found from before joining";
  EXPECT_TRUE(Contains(newcomer, Str(late, "msg_id")));
  EXPECT_TRUE(Contains(newcomer, Str(gone, "msg_id")));
  // A departed member never finds what came after leaving. (Whether the
  // old span stays searchable, as it stays readable in history, is left
  // open: docs/protocol.md searches "the conversations the caller belongs to".)
  auto departed = Found(b, word);
  EXPECT_FALSE(Contains(departed, Str(gone, "msg_id"))) << "found from after leaving";
  for (const auto& id : departed) {
    EXPECT_TRUE(id == Str(early, "msg_id") || id == Str(late, "msg_id")) << id;
  }
}

TEST_F(RecallSearchE2eTest, SearchValidatesItsParameters) {
  Account a = NewAccount("sv_a");
  Account b = NewAccount("sv_b");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "validate", {b.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  const std::string word = UniqueWord("quote");
  json::object sent =
      SendText(*wa, testing::GroupTextSend(g.group_id, "q", "say \"" + word + "\" (twice) -now"));
  ASSERT_TRUE(Indexed(b, word, Str(sent, "msg_id")));

  const std::string tok = b.token();
  EXPECT_TRUE(IsError(api_->Get("/search/messages", tok), 400, "invalid_argument"));
  EXPECT_TRUE(IsError(testing::Search(*api_, tok, ""), 400, "invalid_argument"));
  EXPECT_TRUE(IsError(testing::Search(*api_, tok, std::string(257, 'q')), 400, "invalid_argument"));
  EXPECT_EQ(testing::Search(*api_, tok, std::string(256, 'q')).status, 200);
  for (const char* limit : {"0", "201", "x", "-1"}) {
    EXPECT_TRUE(IsError(api_->Get("/search/messages?q=" + word + "&limit=" + limit, tok), 400,
                        "invalid_argument"))
        << limit;
  }
  EXPECT_TRUE(IsError(testing::Search(*api_, tok, word, "bogus"), 400, "invalid_argument"));
  EXPECT_TRUE(IsError(api_->Get("/search/messages?q=" + word), 401, "unauthenticated"));
  // FTS5 syntax characters are plain text: never an error when there is a word.
  for (std::string q :
       {"\"" + word, word + "\"", word + " AND", "OR " + word, "NEAR(" + word + ")", "col:" + word,
        "-" + word, word + "*", "(" + word, word + " ^", "{" + word + "}", word + " NOT x"}) {
    ApiResponse r = testing::Search(*api_, tok, q);
    EXPECT_EQ(r.status, 200) << q << ": " << r.Describe();
  }
  EXPECT_TRUE(Contains(Found(b, "\"" + word + "\""), Str(sent, "msg_id")));
  EXPECT_TRUE(Contains(Found(b, "(" + word), Str(sent, "msg_id")));
  // Punctuation alone has no words: refused or empty, never a server error.
  for (const char* q : {"\"", "*", "()", "-", ":"}) {
    ApiResponse r = testing::Search(*api_, tok, q);
    EXPECT_TRUE(IsError(r, 400, "invalid_argument") ||
                (r.status == 200 && testing::SearchIds(r).empty()))
        << q << ": " << r.Describe();
  }
}

TEST_F(RecallSearchE2eTest, RecalledTextIsGoneFromSearchAndStaysGone) {
  Account a = NewAccount("rg_a");
  Account b = NewAccount("rg_b");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "gone", {b.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  // Indexed, then recalled: gone at once.
  const std::string w1 = UniqueWord("first");
  json::object m1 = SendText(*wa, testing::GroupTextSend(g.group_id, "g1", w1));
  ASSERT_TRUE(Indexed(b, w1, Str(m1, "msg_id")));
  ASSERT_EQ(Recall(a, Str(m1, "msg_id")).status, 200);
  EXPECT_TRUE(Found(b, w1).empty());
  EXPECT_TRUE(Found(a, w1).empty());
  // Recalled right after sending, perhaps before it was indexed: a later
  // index pass must not bring it back.
  const std::string w2 = UniqueWord("second");
  json::object m2 = SendText(*wa, testing::GroupTextSend(g.group_id, "g2", w2));
  ASSERT_EQ(Recall(a, Str(m2, "msg_id")).status, 200);
  const std::string w3 = UniqueWord("third");
  json::object m3 = SendText(*wa, testing::GroupTextSend(g.group_id, "g3", w3));
  ASSERT_TRUE(Indexed(b, w3, Str(m3, "msg_id")));
  EXPECT_TRUE(Found(b, w2).empty());
  EXPECT_TRUE(Found(a, w2).empty());
}

// A crash loses the index entries still queued (the indexer writes every
// 50 ms), never for good: the restarted server indexes the messages the
// index lacks. (`mpim serve` on SQLite only; the variants on other engines
// skip it.)
TEST(SearchCrashE2eTest, MessagesUnindexedAtACrashAreFoundAfterTheRestart) {
  if (std::getenv("MPIM_E2E_TARGET") || std::getenv("MPIM_TEST_STORE")) {
    GTEST_SKIP() << "runs on `mpim serve` with SQLite only";
  }
  testing::ServerSeries series({.env = RecallSearchConfig::Env()});
  testing::ServerProcess* first = series.Start();
  ASSERT_NE(first, nullptr) << series.error();
  const std::string word = UniqueWord("crash");
  constexpr int kMessages = 150;
  std::vector<std::string> sent;
  {
    testing::ApiClient api(first->port());
    Account a = api.NewAccount("sc_a");
    Account b = api.NewAccount("sc_b");
    for (int i = 0; i < kMessages; ++i) {
      json::object send{{"to", {{"user", b.id()}}},
                        {"client_msg_id", "sc-" + std::to_string(i)},
                        {"body", {{"text", word + " number " + std::to_string(i)}}}};
      ApiResponse r = api.Post("/messages", json::serialize(send), a.token());
      ASSERT_EQ(r.status, 200) << r.Describe();
      sent.push_back(Str(r.json.as_object(), "msg_id"));
    }
    // At once, before the indexer's next write: the last sends' entries are
    // only in its queue.
    first->Signal(SIGKILL);
    ASSERT_TRUE(first->Wait(Ms(10000)).has_value());
  }
  testing::ServerProcess* second = series.Start();
  ASSERT_NE(second, nullptr) << series.error();
  testing::ApiClient api(second->port());
  const std::string token = api.Login("sc_b").access_token;
  std::vector<std::string> found;
  testing::PollUntil(
      [&] {
        found = testing::SearchIds(testing::Search(api, token, word, "", 200));
        return found.size() >= sent.size();
      },
      kIndexDeadline);
  std::sort(found.begin(), found.end());
  for (const std::string& id : sent) {
    EXPECT_TRUE(std::binary_search(found.begin(), found.end(), id)) << "not found: " << id;
  }
  EXPECT_EQ(found.size(), sent.size());
  RecordProperty("caught_up", std::to_string(api.Metric("mpim_index_caught_up_total")));
}

}  // namespace
}  // namespace mpim
