// End-to-end: large groups against the real `mpim` binary (issue 6
// "Fan-out"; docs/protocol.md section 3 "Ordering and delivery
// guarantees"; docs/configuration.md groups.fanout_threshold): a group of
// 2,000 members, created through the API, above the fan-out threshold, so
// that sends go through the durable fan-out job. 100 online sessions get
// every message exactly once; receipts go only to the reader's other
// sessions; a SIGKILL in the middle of a fan-out, a restart on the same
// data dir and a reconnect (hello + sync) still deliver everything.
//
// One server (and one data dir, kept across the restart) for the file; the
// accounts and the group are made once in SetUpTestSuite.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>
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
using testing::ApiResponse;
using testing::GroupRef;
using testing::Int;
using testing::IsOkReply;
using testing::Ms;
using testing::MsgOf;
using testing::Str;
using testing::WsConn;

namespace json = boost::json;

constexpr int kMembers = 2000;
constexpr int kOnline = 100;
constexpr int kThreshold = 100;  // far below kMembers: the job path
constexpr int kBatch = 100;      // 20 pages per message

class GroupsFanoutE2eTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    setup_error_.clear();
    server_ = std::make_unique<testing::RestartTarget>(
        testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                        {"MPIM_LIMITS_SEND_BURST", "100000"},
                        {"MPIM_GATEWAY_ACK_TIMEOUT_MS", "60000"},
                        {"MPIM_GROUPS_FANOUT_THRESHOLD", std::to_string(kThreshold)},
                        {"MPIM_GROUPS_FANOUT_BATCH", std::to_string(kBatch)}}));
    if (!StartServer()) return;
    const uint16_t port = server_->port();
    ApiClient api(port);
    owner_ = api.NewAccount(testing::UniqueName("fo_owner"));
    online_ = testing::RegisterMany(port, "fo_on", kOnline, 8, true);
    auto offline = testing::RegisterMany(port, "fo_off", kMembers - kOnline - 1, 8, false);
    std::vector<std::string> online_ids, offline_ids;
    for (const auto& a : online_) online_ids.push_back(a.id());
    for (const auto& a : offline) offline_ids.push_back(a.id());
    if (::testing::Test::HasFailure()) {
      setup_error_ = "accounts not created";
      return;
    }
    group_ = testing::CreateGroup(api, owner_.token(), "two thousand", online_ids);
    if (group_.group_id.empty()) {
      setup_error_ = "group not created";
      return;
    }
    // The rest in bulk adds of 500.
    for (size_t i = 0; i < offline_ids.size(); i += 500) {
      std::vector<std::string> chunk(
          offline_ids.begin() + static_cast<std::ptrdiff_t>(i),
          offline_ids.begin() + static_cast<std::ptrdiff_t>(std::min(i + 500, offline_ids.size())));
      ApiResponse r = testing::AddMembers(api, owner_.token(), group_.group_id, chunk);
      if (r.status != 200) {
        setup_error_ = "bulk add: " + r.Describe();
        return;
      }
    }
  }
  static void TearDownTestSuite() { server_.reset(); }
  void TearDown() override {
    if (HasFailure() && server_) std::printf("server logs:\n%s\n", server_->Logs().c_str());
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  // (Re)starts the server on its kept data.
  static bool StartServer() {
    if (!server_->Start()) {
      setup_error_ = "server did not start: " + server_->error();
      return false;
    }
    return true;
  }

  // Fan-out jobs done so far (on every node).
  static double FanoutJobsOk() {
    return server_->MetricSum(R"(mpim_jobs_total{kind="fanout",outcome="ok"})");
  }

  // One session per online member (their login from the set-up), on the
  // gateways in turn.
  static std::vector<std::unique_ptr<WsConn>> OpenOnline() {
    std::vector<std::unique_ptr<WsConn>> out;
    for (const auto& a : online_) {
      auto ws = std::make_unique<WsConn>(server_->port(out.size()));
      if (auto ok = ws->Open(a.token()); !ok) {
        ADD_FAILURE() << a.username << ": " << ok.message();
        return {};
      }
      out.push_back(std::move(ws));
    }
    return out;
  }

  static inline std::unique_ptr<testing::RestartTarget> server_;
  static inline std::string setup_error_;
  static inline Account owner_;
  static inline std::vector<Account> online_;
  static inline GroupRef group_;
};

TEST_F(GroupsFanoutE2eTest, HundredOnlineSessionsGetEveryMessageExactlyOnceThroughTheJobPath) {
  ApiClient api(server_->port());
  EXPECT_EQ(Int(testing::GetGroup(api, owner_.token(), group_.group_id), "member_count"), kMembers);
  EXPECT_EQ(testing::AllMembers(api, owner_.token(), group_.group_id).size(),
            static_cast<size_t>(kMembers));
  auto sessions = OpenOnline();
  ASSERT_EQ(sessions.size(), static_cast<size_t>(kOnline));
  WsConn sender(server_->port());
  ASSERT_TRUE(sender.Open(owner_.token()));
  const double jobs_before = FanoutJobsOk();

  constexpr int kSends = 30;
  auto replies = testing::SendGroupMany(sender, group_.group_id, "x1", kSends);
  ASSERT_EQ(replies.size(), static_cast<size_t>(kSends));
  std::set<int64_t> sent;
  std::map<int64_t, std::string> msg_id_of;
  for (const auto& r : replies) {
    sent.insert(Int(r, "seq"));
    msg_id_of[Int(r, "seq")] = Str(r, "msg_id");
  }
  ASSERT_EQ(sent.size(), static_cast<size_t>(kSends));

  for (size_t i = 0; i < sessions.size(); ++i) {
    SCOPED_TRACE(online_[i].username);
    std::vector<int64_t> got = testing::CollectSeqs(*sessions[i], group_.conv_id, sent, Ms(60000));
    for (const auto& m : sessions[i]->Drain("msg", Ms(20))) got.push_back(Int(MsgOf(m), "seq"));
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end())) << ::testing::PrintToString(got);
    for (int64_t seq : sent) {
      EXPECT_EQ(std::count(got.begin(), got.end(), seq), 1) << "seq " << seq;
    }
  }
  // The job path ran: at least one fan-out job per message.
  EXPECT_TRUE(testing::PollUntil([&] { return FanoutJobsOk() >= jobs_before + kSends; }, Ms(20000)))
      << "fan-out jobs ok: before " << jobs_before << ", now " << FanoutJobsOk();
  // And the offline members find everything: one of them, through history.
  std::set<int64_t> stored;
  for (const auto& m : testing::History(api, owner_.token(), group_.conv_id)) {
    stored.insert(Int(m, "seq"));
    if (msg_id_of.count(Int(m, "seq"))) {
      EXPECT_EQ(Str(m, "msg_id"), msg_id_of[Int(m, "seq")]);
    }
  }
  for (int64_t seq : sent) EXPECT_TRUE(stored.count(seq)) << seq;
}

TEST_F(GroupsFanoutE2eTest, LargeGroupReceiptsGoOnlyToTheReadersOtherSessions) {
  ApiClient api(server_->port());
  auto sessions = OpenOnline();
  ASSERT_EQ(sessions.size(), static_cast<size_t>(kOnline));
  const Account& reader = online_[0];
  WsConn reader2(server_->port(1));  // its first session is on port(0)
  ASSERT_TRUE(reader2.Open(api.Login(reader.username).access_token));
  WsConn sender(server_->port());
  ASSERT_TRUE(sender.Open(owner_.token()));
  auto first = testing::SendGroupMany(sender, group_.group_id, "rc1", 1);
  ASSERT_EQ(first.size(), 1u);
  const int64_t seq = Int(first[0], "seq");

  auto r =
      sessions[0]->Request(json::object{{"op", "read"}, {"conv_id", group_.conv_id}, {"seq", seq}});
  ASSERT_TRUE(IsOkReply(r)) << sessions[0]->last_error();
  EXPECT_EQ(Int(*r, "read_seq"), seq);
  auto receipt = reader2.NextEvent("receipt");
  ASSERT_TRUE(receipt) << reader2.last_error();
  EXPECT_EQ(Str(*receipt, "conv_id"), group_.conv_id);
  EXPECT_EQ(Str(*receipt, "user"), reader.id());
  EXPECT_EQ(Int(*receipt, "read_seq"), seq);
  // A REST read too reaches the reader's sessions.
  api.Post("/conversations/" + group_.conv_id + "/read", "{\"seq\":" + std::to_string(seq) + "}",
           online_[1].token());
  // Read state is kept.
  json::object conv = testing::FindConv(
      testing::ConversationList(api.Get("/conversations", reader.token())), group_.conv_id);
  EXPECT_EQ(Int(conv, "read_seq"), seq);
  EXPECT_EQ(Int(conv, "unread"), 0);

  // A message sent after the reads reaches every session; no receipt came
  // to any of them before it (nor to the owner's session).
  auto marker = testing::SendGroupMany(sender, group_.group_id, "rc2", 1);
  ASSERT_EQ(marker.size(), 1u);
  const std::set<int64_t> want{Int(marker[0], "seq")};
  for (size_t i = 0; i < sessions.size(); ++i) {
    SCOPED_TRACE(online_[i].username);
    auto got = testing::CollectSeqs(*sessions[i], group_.conv_id, want, Ms(30000));
    EXPECT_TRUE(std::count(got.begin(), got.end(), *want.begin())) << sessions[i]->last_error();
    auto receipts = sessions[i]->Drain("receipt", Ms(0));
    // online_[1]'s own REST read may reach its own session.
    for (const auto& rc : receipts) {
      EXPECT_TRUE(i == 1 && Str(rc, "user") == online_[1].id())
          << "a large group broadcast a receipt: " << json::serialize(rc);
    }
  }
  EXPECT_TRUE(sender.Drain("receipt", Ms(200)).empty());
}

// Last in the file: it restarts the server.
TEST_F(GroupsFanoutE2eTest, RestartInTheMiddleOfAFanOutStillDeliversEverything) {
  auto sessions = OpenOnline();
  ASSERT_EQ(sessions.size(), static_cast<size_t>(kOnline));
  WsConn sender(server_->port());
  ASSERT_TRUE(sender.Open(owner_.token()));
  int64_t base = 0;  // the conversation's last seq before this test's sends
  {
    ApiClient api(server_->port());
    auto history = testing::History(api, owner_.token(), group_.conv_id);
    ASSERT_FALSE(history.empty());
    base = Int(history.back(), "seq");
  }
  // Everything up to `base` counts as seen: every session acks it.
  for (const auto& ws : sessions) ASSERT_TRUE(ws->Ack(group_.conv_id, base)) << ws->last_error();

  // Pipeline 60 sends; SIGKILL as soon as 10 are acknowledged.
  constexpr int kSends = 60;
  std::vector<int64_t> rids;
  for (int i = 1; i <= kSends; ++i) {
    json::object f = testing::GroupTextSend(group_.group_id, "k" + std::to_string(i),
                                            "kill " + std::to_string(i));
    rids.push_back(sender.NextRid());
    f["rid"] = rids.back();
    ASSERT_TRUE(sender.Send(f)) << sender.last_error();
  }
  std::map<int64_t, std::string> acked;  // seq -> msg_id
  for (int i = 0; i < 10; ++i) {
    auto r = sender.ReplyTo(rids[static_cast<size_t>(i)], Ms(15000));
    ASSERT_TRUE(testing::IsSendResult(r)) << sender.last_error();
    acked[Int(*r, "seq")] = Str(*r, "msg_id");
  }
  ASSERT_TRUE(server_->Kill());
  for (size_t i = 10; i < rids.size(); ++i) {
    auto r = sender.ReplyTo(rids[i], Ms(1000));
    if (!r) break;
    if (testing::IsSendResult(r)) acked[Int(*r, "seq")] = Str(*r, "msg_id");
  }

  // What each session got live before the kill (acked as it came).
  std::vector<std::set<int64_t>> have(sessions.size());
  size_t incomplete = 0;
  for (size_t i = 0; i < sessions.size(); ++i) {
    int64_t contiguous = base;
    while (auto m = sessions[i]->NextMsg(group_.conv_id, Ms(1000))) {
      const int64_t seq = Int(MsgOf(*m), "seq");
      have[i].insert(seq);
      while (have[i].count(contiguous + 1)) ++contiguous;
      sessions[i]->Ack(group_.conv_id, contiguous);
    }
    for (const auto& [seq, id] : acked) {
      if (!have[i].count(seq)) {
        ++incomplete;
        break;
      }
    }
  }
  sessions.clear();
  sender.client().Abort();
  std::fprintf(stderr,
               "[ info ] %zu acknowledged sends; %zu of %d sessions lacked one of them at the "
               "kill\n",
               acked.size(), incomplete, kOnline);

  ASSERT_TRUE(StartServer()) << setup_error_;
  ApiClient api(server_->port());
  // Every acknowledged send survived, with its id.
  auto history = testing::History(api, owner_.token(), group_.conv_id, base);
  std::map<int64_t, std::string> stored;
  for (const auto& m : history) stored[Int(m, "seq")] = Str(m, "msg_id");
  for (const auto& [seq, id] : acked) EXPECT_EQ(stored[seq], id) << "acknowledged seq " << seq;
  ASSERT_FALSE(stored.empty());
  const int64_t last = stored.rbegin()->first;

  // A client reconnects each session: hello says whether anything is
  // missing; it syncs after its contiguous prefix when it is. Whatever
  // comes live meanwhile counts too. Every session ends up with every
  // stored message.
  for (size_t i = 0; i < have.size(); ++i) {
    SCOPED_TRACE(online_[i].username);
    WsConn ws(server_->port(i));
    ASSERT_TRUE(ws.Open(online_[i].token()));
    int64_t contiguous = base;
    while (have[i].count(contiguous + 1)) ++contiguous;
    auto listed = testing::HelloConv(ws, group_.conv_id);
    if (contiguous < last) {
      ASSERT_TRUE(listed) << "hello does not list the conversation, but seqs " << contiguous + 1
                          << ".." << last
                          << " never reached this session: " << json::serialize(ws.hello());
    }
    if (listed && Int(*listed, "last_seq") > contiguous) {
      EXPECT_EQ(Int(*listed, "last_seq"), last);
      for (const auto& m : testing::SyncAll(ws, group_.conv_id, contiguous, 200)) {
        have[i].insert(Int(m, "seq"));
      }
    }
    for (const auto& m : ws.Drain("msg", Ms(0))) {
      if (Str(MsgOf(m), "conv_id") == group_.conv_id) have[i].insert(Int(MsgOf(m), "seq"));
    }
    std::vector<int64_t> missing;
    for (const auto& [seq, id] : stored) {
      if (!have[i].count(seq)) missing.push_back(seq);
    }
    EXPECT_TRUE(missing.empty()) << ::testing::PrintToString(missing);
  }
}

}  // namespace
}  // namespace mpim
