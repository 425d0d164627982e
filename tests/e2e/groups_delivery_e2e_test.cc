// End-to-end: group messages and read state against the real `mpim` binary
// on the send path's inline fan-out (groups up to groups.fanout_threshold;
// docs/protocol.md section 3 "Ordering and delivery guarantees",
// section 2 "Conversations and messages"; docs/protocol.md section 2 "Groups"): every
// online session of a 50-member group gets every message in seq order,
// offline members sync everything, unread counts stay exact through mixed
// sends and reads, PATCH /conversations sets muted and pinned, and receipts
// reach the online members and the reader's other sessions only.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiResponse;
using testing::GroupRef;
using testing::Int;
using testing::IsError;
using testing::IsOkReply;
using testing::Ms;
using testing::MsgOf;
using testing::Seqs;
using testing::Str;
using testing::WsConn;

namespace json = boost::json;

struct DeliveryConfig {
  static auto Env() {
    // Acks are sent as messages arrive; a long ack timeout keeps re-sends
    // out of the order checks.
    return testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                           {"MPIM_LIMITS_SEND_BURST", "100000"},
                           {"MPIM_GATEWAY_ACK_TIMEOUT_MS", "60000"}});
  }
};

class GroupsDeliveryE2eTest : public testing::WsServerTest<DeliveryConfig> {
 protected:
  // POST /conversations/{conv}/read as `who`; a recorded failure unless 204.
  void RestRead(const Account& who, const std::string& conv, int64_t seq) {
    ApiResponse r = api_->Post("/conversations/" + conv + "/read",
                               "{\"seq\":" + std::to_string(seq) + "}", who.token());
    EXPECT_EQ(r.status, 204) << "read " << conv << " " << seq << ": " << r.Describe();
  }
  json::array Conversations(const Account& who) {
    return testing::ConversationList(api_->Get("/conversations", who.token()));
  }
};

std::vector<std::string> IdsOf(const std::vector<Account>& accounts) {
  std::vector<std::string> out;
  for (const auto& a : accounts) out.push_back(a.id());
  return out;
}

TEST_F(GroupsDeliveryE2eTest, FiftyMembersTenOnlineSessionsGetEveryMessageInOrder) {
  auto accounts = testing::RegisterMany(port(), "d50", 50, 4, true);
  ASSERT_FALSE(HasFailure());
  std::vector<std::string> ids = IdsOf(accounts);
  GroupRef g = testing::CreateGroup(*api_, accounts[0].token(), "fifty",
                                    std::vector<std::string>(ids.begin() + 1, ids.end()));
  ASSERT_FALSE(g.group_id.empty());

  // Three senders, and ten watching sessions: a second session of the
  // first sender and one session of nine other members.
  std::vector<std::unique_ptr<WsConn>> senders;
  for (int i = 0; i < 3; ++i) senders.push_back(OpenWs(accounts[i].token()));
  std::vector<std::unique_ptr<WsConn>> watchers;
  watchers.push_back(OpenWs(Login(accounts[0]).access_token));
  for (int i = 3; i < 12; ++i) watchers.push_back(OpenWs(accounts[i].token()));
  for (const auto& ws : senders) ASSERT_TRUE(ws);
  for (const auto& ws : watchers) ASSERT_TRUE(ws);

  // 60 sends from each sender, interleaved and pipelined.
  constexpr int kEach = 60;
  std::vector<std::vector<int64_t>> rids(3);
  for (int i = 1; i <= kEach; ++i) {
    for (int s = 0; s < 3; ++s) {
      const std::string key = "s" + std::to_string(s) + "-" + std::to_string(i);
      json::object f = testing::GroupTextSend(g.group_id, key, key);
      rids[s].push_back(senders[s]->NextRid());
      f["rid"] = rids[s].back();
      ASSERT_TRUE(senders[s]->Send(f)) << senders[s]->last_error();
    }
  }
  std::map<int64_t, std::string> msg_id_of;  // seq -> msg_id
  std::vector<std::set<int64_t>> sent_by(3);
  for (int s = 0; s < 3; ++s) {
    for (int64_t rid : rids[s]) {
      auto r = senders[s]->ReplyTo(rid, Ms(15000));
      ASSERT_TRUE(testing::IsSendResult(r)) << senders[s]->last_error();
      EXPECT_EQ(Str(*r, "conv_id"), g.conv_id);
      EXPECT_TRUE(msg_id_of.emplace(Int(*r, "seq"), Str(*r, "msg_id")).second)
          << "seq reused: " << json::serialize(*r);
      sent_by[s].insert(Int(*r, "seq"));
    }
  }
  ASSERT_EQ(msg_id_of.size(), 3u * kEach);
  const int64_t first = msg_id_of.begin()->first;
  const int64_t last = msg_id_of.rbegin()->first;
  EXPECT_EQ(last - first + 1, 3 * kEach) << "sends took a gapless run of seqs";
  std::set<int64_t> all;
  for (const auto& [seq, id] : msg_id_of) all.insert(seq);

  // Each watcher: every message once, in seq order, with the sent ids.
  for (size_t w = 0; w < watchers.size(); ++w) {
    SCOPED_TRACE("watcher " + std::to_string(w));
    std::vector<int64_t> got;
    for (size_t i = 0; i < all.size(); ++i) {
      auto m = watchers[w]->NextMsg(g.conv_id, Ms(10000));
      ASSERT_TRUE(m) << "after " << got.size() << ": " << watchers[w]->last_error();
      json::object msg = MsgOf(*m);
      got.push_back(Int(msg, "seq"));
      EXPECT_EQ(Str(msg, "msg_id"), msg_id_of[got.back()]);
      EXPECT_EQ(Str(*testing::Obj(msg, "to"), "group"), g.group_id);
    }
    EXPECT_EQ(got, std::vector<int64_t>(all.begin(), all.end()));
    watchers[w]->Ack(g.conv_id, last);
  }
  // Each sender's session: everything the other two sent, in seq order,
  // never twice. (protocol.md promises a session the user's messages "sent
  // from another session"; whether the sending session also sees its own
  // is left open here, but not out of order or twice.)
  for (int s = 0; s < 3; ++s) {
    SCOPED_TRACE("sender " + std::to_string(s));
    std::set<int64_t> others;
    for (int64_t seq : all) {
      if (!sent_by[s].count(seq)) others.insert(seq);
    }
    std::vector<int64_t> got = testing::CollectSeqs(*senders[s], g.conv_id, others, Ms(30000));
    for (const auto& m : senders[s]->Drain("msg", Ms(50))) got.push_back(Int(MsgOf(m), "seq"));
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()) &&
                std::adjacent_find(got.begin(), got.end()) == got.end())
        << "out of order or twice: " << ::testing::PrintToString(got);
    for (int64_t seq : others) EXPECT_TRUE(std::count(got.begin(), got.end(), seq)) << seq;
    for (int64_t seq : got) EXPECT_TRUE(all.count(seq)) << "unexpected seq " << seq;
  }
  // Nothing more (no duplicates) on the watchers.
  for (const auto& ws : watchers) EXPECT_TRUE(ws->Drain("msg", Ms(50)).empty());

  // The 38 offline members: hello lists the group at `last`, sync pages
  // bring every message from the start, as history does.
  const std::vector<int64_t> history =
      Seqs(testing::History(*api_, accounts[12].token(), g.conv_id));
  ASSERT_FALSE(history.empty());
  EXPECT_EQ(history.back(), last);
  for (size_t i = 0; i < history.size(); ++i) EXPECT_EQ(history[i], static_cast<int64_t>(i + 1));
  for (size_t i = 12; i < accounts.size(); ++i) {
    SCOPED_TRACE(accounts[i].username);
    WsConn ws(port());
    ASSERT_TRUE(ws.Open(accounts[i].token()));
    auto listed = testing::HelloConv(ws, g.conv_id);
    ASSERT_TRUE(listed) << json::serialize(ws.hello());
    EXPECT_EQ(Int(*listed, "last_seq"), last);
    auto synced = testing::SyncAll(ws, g.conv_id, 0, 100);
    EXPECT_EQ(Seqs(synced), history);
    for (const auto& m : synced) {
      auto it = msg_id_of.find(Int(m, "seq"));
      if (it != msg_id_of.end()) {
        EXPECT_EQ(Str(m, "msg_id"), it->second);
      }
    }
  }
}

// The expected read state, kept by the test from its own sends and reads.
struct Model {
  struct Msg {
    std::string conv;
    int64_t seq;
    std::string from;
  };
  std::vector<Msg> msgs;
  std::map<std::pair<std::string, std::string>, int64_t> read;  // (user, conv) -> read_seq

  int64_t Unread(const std::string& user, const std::string& conv) const {
    auto it = read.find({user, conv});
    const int64_t r = it == read.end() ? 0 : it->second;
    int64_t n = 0;
    for (const auto& m : msgs) n += m.conv == conv && m.seq > r && m.from != user;
    return n;
  }
  void Read(const std::string& user, const std::string& conv, int64_t seq) {
    int64_t& r = read[{user, conv}];
    r = std::max(r, seq);
  }
};

TEST_F(GroupsDeliveryE2eTest, UnreadCountsStayExactThroughMixedSendsAndReads) {
  Account a = NewAccount("ur_a");
  Account b = NewAccount("ur_b");
  Account c = NewAccount("ur_c");
  Account d = NewAccount("ur_d");
  GroupRef g1 = testing::CreateGroup(*api_, a.token(), "one", {b.id(), c.id(), d.id()});
  GroupRef g2 = testing::CreateGroup(*api_, b.token(), "two", {a.id(), c.id()});
  ASSERT_FALSE(g1.group_id.empty() || g2.group_id.empty());
  std::map<std::string, std::unique_ptr<WsConn>> ws;
  for (const Account* u : {&a, &b, &c, &d}) {
    ws[u->id()] = OpenWs(u->token());
    ASSERT_TRUE(ws[u->id()]);
  }
  // Start from zero: everyone reads what the group set-up wrote.
  Model model;
  for (const Account* u : {&a, &b, &c, &d}) {
    for (const auto& conv : Conversations(*u)) {
      const json::object& o = conv.as_object();
      RestRead(*u, Str(o, "conv_id"), Int(o, "last_seq"));
      model.Read(u->id(), Str(o, "conv_id"), Int(o, "last_seq"));
    }
    for (const auto& conv : Conversations(*u)) {
      EXPECT_EQ(Int(conv.as_object(), "unread"), 0) << json::serialize(conv);
    }
  }

  auto send = [&](const Account& from, const GroupRef& g, int n) {
    static int counter = 0;
    auto replies =
        testing::SendGroupMany(*ws[from.id()], g.group_id, "ur" + std::to_string(++counter), n);
    for (const auto& r : replies) model.msgs.push_back({g.conv_id, Int(r, "seq"), from.id()});
    return replies;
  };
  auto ws_read = [&](const Account& who, const GroupRef& g, int64_t seq) {
    auto r =
        ws[who.id()]->Request(json::object{{"op", "read"}, {"conv_id", g.conv_id}, {"seq", seq}});
    ASSERT_TRUE(IsOkReply(r)) << ws[who.id()]->last_error();
    model.Read(who.id(), g.conv_id, seq);
    EXPECT_EQ(Int(*r, "read_seq"), (model.read[{who.id(), g.conv_id}])) << json::serialize(*r);
  };

  auto a1 = send(a, g1, 3);
  auto b1 = send(b, g1, 2);
  ws_read(c, g1, Int(a1[1], "seq"));
  auto d1 = send(d, g1, 1);
  RestRead(b, g1.conv_id, Int(d1[0], "seq"));
  model.Read(b.id(), g1.conv_id, Int(d1[0], "seq"));
  auto a2 = send(a, g2, 2);
  auto c2 = send(c, g2, 1);
  ws_read(a, g2, Int(a2[1], "seq"));  // a read up to its own messages only
  ws_read(c, g1, Int(a1[0], "seq"));  // below c's cursor: no move back
  auto b2 = send(b, g2, 2);
  auto a3 = send(a, g1, 1);
  ws_read(d, g1, Int(b1[1], "seq"));

  for (const Account* u : {&a, &b, &c, &d}) {
    SCOPED_TRACE(u->username);
    json::array list = Conversations(*u);
    for (const GroupRef* g : {&g1, &g2}) {
      if (u == &d && g == &g2) continue;  // not a member
      json::object conv = testing::FindConv(list, g->conv_id);
      EXPECT_EQ(Int(conv, "unread"), model.Unread(u->id(), g->conv_id)) << json::serialize(conv);
      EXPECT_EQ(Int(conv, "read_seq"), (model.read[{u->id(), g->conv_id}]));
      EXPECT_EQ(Str(conv, "type"), "group");
    }
  }
  // Spot checks of the model itself, so that a wrong model cannot pass.
  EXPECT_EQ(model.Unread(c.id(), g1.conv_id), 5);  // a1[2], b1 x2, d1, a3
  EXPECT_EQ(model.Unread(a.id(), g2.conv_id), 3);  // c2, b2 x2
  EXPECT_EQ(model.Unread(a.id(), g1.conv_id), 3);  // b1 x2, d1

  // Most recent activity first: a's g1 (a3) after g2 (b2).
  json::array a_list = Conversations(a);
  EXPECT_EQ(testing::ConvIds(a_list), (std::vector<std::string>{g1.conv_id, g2.conv_id}));
  // Pinned first, whatever the activity; muted shows; a's sessions hear "updated".
  ApiResponse r = api_->Patch("/conversations/" + g2.conv_id, "{\"pinned\":true}", a.token());
  EXPECT_TRUE(r.status == 200 || r.status == 204) << r.Describe();
  // (protocol.md: `conv` "updated" is a settings change for this user.)
  if (auto updated = ws[a.id()]->NextEvent("conv")) {
    EXPECT_EQ(Str(*updated, "conv_id"), g2.conv_id);
    EXPECT_EQ(Str(*updated, "event"), "updated");
  } else {
    ADD_FAILURE() << "no conv updated event after PATCH /conversations: "
                  << ws[a.id()]->last_error();
  }
  r = api_->Patch("/conversations/" + g1.conv_id, "{\"muted\":true}", a.token());
  EXPECT_TRUE(r.status == 200 || r.status == 204) << r.Describe();
  a_list = Conversations(a);
  EXPECT_EQ(testing::ConvIds(a_list), (std::vector<std::string>{g2.conv_id, g1.conv_id}));
  json::object pinned = testing::FindConv(a_list, g2.conv_id);
  json::object muted = testing::FindConv(a_list, g1.conv_id);
  EXPECT_EQ(pinned["pinned"], json::value(true));
  EXPECT_EQ(pinned["muted"], json::value(false));
  EXPECT_EQ(muted["muted"], json::value(true));
  EXPECT_EQ(muted["pinned"], json::value(false));
  // Settings are per user: b's view is unchanged.
  json::object b_view = testing::FindConv(Conversations(b), g2.conv_id);
  EXPECT_EQ(b_view["pinned"], json::value(false));
  // Unpinning puts activity order back; the body is checked.
  r = api_->Patch("/conversations/" + g2.conv_id, "{\"pinned\":false}", a.token());
  EXPECT_TRUE(r.status == 200 || r.status == 204) << r.Describe();
  EXPECT_EQ(testing::ConvIds(Conversations(a)), (std::vector<std::string>{g1.conv_id, g2.conv_id}));
  for (const char* bad : {"{\"muted\":\"yes\"}", "{\"pinned\":1}", "[]"}) {
    EXPECT_TRUE(IsError(api_->Patch("/conversations/" + g1.conv_id, bad, a.token()), 400,
                        "invalid_argument"))
        << bad;
  }
  EXPECT_TRUE(IsError(api_->Patch("/conversations/" + g2.conv_id, "{\"muted\":true}", d.token()),
                      403, "permission_denied"));
  // Muting changes nothing about counts.
  EXPECT_EQ(Int(testing::FindConv(Conversations(a), g1.conv_id), "unread"),
            model.Unread(a.id(), g1.conv_id));
}

TEST_F(GroupsDeliveryE2eTest, ReceiptsReachOnlineMembersAndTheReadersOtherSessionsOnly) {
  Account a = NewAccount("rc_a");
  Account b = NewAccount("rc_b");
  Account c = NewAccount("rc_c");
  Account out = NewAccount("rc_x");
  GroupRef g = testing::CreateGroup(*api_, a.token(), "receipts", {b.id(), c.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto a1 = OpenWs(a.token());
  auto a2 = OpenWs(Login(a).access_token);
  auto b1 = OpenWs(b.token());
  auto c1 = OpenWs(c.token());
  auto x1 = OpenWs(out.token());
  ASSERT_TRUE(a1 && a2 && b1 && c1 && x1);
  auto sent = testing::SendGroupMany(*b1, g.group_id, "rc", 3);
  ASSERT_EQ(sent.size(), 3u);
  const int64_t seq2 = Int(sent[1], "seq");

  auto r = a1->Request(json::object{{"op", "read"}, {"conv_id", g.conv_id}, {"seq", seq2}});
  ASSERT_TRUE(IsOkReply(r));
  EXPECT_EQ(Int(*r, "read_seq"), seq2);
  for (WsConn* ws : {a2.get(), b1.get(), c1.get()}) {
    auto receipt = ws->NextEvent("receipt");
    ASSERT_TRUE(receipt) << ws->last_error();
    EXPECT_EQ(Str(*receipt, "conv_id"), g.conv_id);
    EXPECT_EQ(Str(*receipt, "user"), a.id());
    EXPECT_EQ(Int(*receipt, "read_seq"), seq2);
    EXPECT_FALSE(receipt->contains("rid"));
  }
  EXPECT_TRUE(a1->Drain("receipt", Ms(300)).empty()) << "the reading session got its own receipt";
  EXPECT_TRUE(x1->Drain("receipt", Ms(0)).empty()) << "a non-member got a receipt";

  // A REST read: every member's online session hears it.
  ApiResponse rest = api_->Post("/conversations/" + g.conv_id + "/read",
                                "{\"seq\":" + std::to_string(Int(sent[2], "seq")) + "}", c.token());
  EXPECT_EQ(rest.status, 204) << rest.Describe();
  for (WsConn* ws : {a1.get(), a2.get(), b1.get()}) {
    auto receipt = ws->NextEvent("receipt");
    ASSERT_TRUE(receipt) << ws->last_error();
    EXPECT_EQ(Str(*receipt, "user"), c.id());
    EXPECT_EQ(Int(*receipt, "read_seq"), Int(sent[2], "seq"));
  }
  EXPECT_TRUE(x1->Drain("receipt", Ms(300)).empty()) << "a non-member got a receipt";
  // Read state is per user: c's cursor shows in c's listing.
  json::object conv = testing::FindConv(
      testing::ConversationList(api_->Get("/conversations", c.token())), g.conv_id);
  EXPECT_EQ(Int(conv, "read_seq"), Int(sent[2], "seq"));
  EXPECT_EQ(Int(conv, "unread"), 0);
}

}  // namespace
}  // namespace mpim
