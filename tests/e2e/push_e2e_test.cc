// End to end: offline push through the webhook provider and the admin API
// (protocol.md sections 4 and 5; docs/push.md), against the real `mpim
// serve` and a local webhook endpoint (support/webhook_receiver.h).
//
//   - Devices: register (one per session, replaced), list, delete; bad
//     platform or token refused; logout removes the session's device.
//   - Who gets a push: a device whose session has no live WebSocket, never
//     the sender's, never a muted conversation's member; in private chats,
//     small groups and large groups (the fan-out job); the notification as
//     §4 says (signature, delivery id, preview, badge).
//   - Coalescing within push.coalesce_ms: the latest message wins.
//   - Outcomes: 5xx retried with growing delays and the same delivery id;
//     410 removes the device; other 4xx and exhausted attempts are dead
//     letters, which the admin API lists, shows, retries and deletes.
//   - The admin API: off without admin.api_key (404), 401 without the key.
//   - A provider down for a while: retries wait in the durable queue, and
//     the resident memory of the process that runs them stays flat.
//
// On `mpim serve`, or with MPIM_E2E_TARGET=cluster on the cluster of `mpim
// cluster up` (support/restart_target.h): logic nodes plan the pushes, the
// task node sends them.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/restart_target.h"
#include "support/server_process.h"
#include "support/webhook_receiver.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using testing::ReceivedPush;
using testing::RestartTarget;
using testing::ServerProcess;
using testing::UniqueName;
using testing::WebhookReceiver;
using testing::WsConn;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using Ms = std::chrono::milliseconds;

constexpr char kSecret[] = "webhook-secret-for-tests";
constexpr char kAdminKey[] = "admin-key-for-tests";
constexpr int kRetryBaseMs = 400;
constexpr int kMaxAttempts = 3;

json::object Parse(const std::string& body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  return !ec && v.is_object() ? v.as_object() : json::object{};
}

// The notification of a received push (empty if malformed).
json::object NotificationOf(const ReceivedPush& p) {
  json::object body = Parse(p.body);
  const auto* n = body.if_contains("notification");
  return n && n->is_object() ? n->as_object() : json::object{};
}
std::string TokenOf(const ReceivedPush& p) {
  json::object body = Parse(p.body);
  const auto* d = body.if_contains("device");
  return d && d->is_object() ? testing::Str(d->as_object(), "token") : "";
}

class PushE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  // Starts the server with the push settings and `more` ("key=value").
  void Start(std::vector<std::string> more) {
    std::vector<std::string> settings = {"push.webhook_url=" + receiver_.url(),
                                         std::string("push.webhook_secret=") + kSecret,
                                         "push.retry_base_ms=" + std::to_string(kRetryBaseMs),
                                         "push.max_attempts=" + std::to_string(kMaxAttempts),
                                         "push.coalesce_ms=0",
                                         std::string("admin.api_key=") + kAdminKey,
                                         "groups.fanout_threshold=3"};
    settings.insert(settings.end(), more.begin(), more.end());
    api_.reset();
    server_.reset();
    server_ = std::make_unique<RestartTarget>(testing::FastAuthEnv(), settings);
    ASSERT_TRUE(server_->Start()) << server_->error();
    api_ = std::make_unique<ApiClient>(server_->port());
  }

  void TearDown() override {
    if (HasFailure() && server_) {
      std::string logs = server_->Logs();
      if (logs.size() > 6000) logs = logs.substr(logs.size() - 6000);
      std::printf("server log (end):\n%s\n", logs.c_str());
    }
  }

  Account NewAccount(const std::string& prefix) { return api_->NewAccount(UniqueName(prefix)); }

  // Registers a webhook device for the account's session; its device_id.
  std::string AddDevice(const Account& a, const std::string& token) {
    ApiResponse r = api_->Post(
        "/devices", R"({"platform":"webhook","token":)" + testing::JsonString(token) + "}",
        a.token());
    EXPECT_EQ(r.status, 201) << r.Describe();
    return r.json.is_object() ? testing::Str(r.json.as_object(), "device_id") : "";
  }

  // POST /messages of a text to a user or a group; the reply's seq.
  int64_t Send(const Account& from, const std::string& to_kind, const std::string& to_id,
               const std::string& text) {
    json::object body{{"to", json::object{{to_kind, to_id}}},
                      {"client_msg_id", UniqueName("c")},
                      {"type", "text"},
                      {"body", json::object{{"text", text}}}};
    ApiResponse r = api_->Post("/messages", json::serialize(body), from.token());
    EXPECT_EQ(r.status, 200) << r.Describe();
    return r.json.is_object() ? testing::Int(r.json.as_object(), "seq") : -1;
  }

  // Waits for a push to `token` announcing `seq` of `conv_id`.
  bool WaitPush(const std::string& token, const std::string& conv_id, int64_t seq) {
    return receiver_.WaitFor([&](const std::vector<ReceivedPush>& all) {
      for (const ReceivedPush& p : all) {
        json::object n = NotificationOf(p);
        if (TokenOf(p) == token && testing::Str(n, "conv_id") == conv_id &&
            testing::Int(n, "seq") == seq) {
          return true;
        }
      }
      return false;
    });
  }
  // "seq@conv" of each push to `token`, for failure messages.
  std::string Describe(const std::string& token) {
    std::string out;
    for (const ReceivedPush& p : PushesTo(token)) {
      json::object n = NotificationOf(p);
      out += std::to_string(testing::Int(n, "seq")) + "@" + testing::Str(n, "conv_id") + " (" +
             p.delivery_id + ", " + std::to_string(p.answered) + ") ";
    }
    return out;
  }
  // The pushes to `token` so far.
  std::vector<ReceivedPush> PushesTo(const std::string& token) {
    std::vector<ReceivedPush> out;
    for (const ReceivedPush& p : receiver_.Received()) {
      if (TokenOf(p) == token) out.push_back(p);
    }
    return out;
  }

  // Messages whose pushes were planned, every node's.
  double Plans() {
    double n = 0;
    for (const char* result : {"queued", "none", "failed"}) {
      n += server_->MetricSum(std::string("mpim_push_plans_total{result=\"") + result + "\"}");
    }
    return n;
  }

  // The admin API's live sessions (-1 if it did not answer).
  int64_t Sessions() {
    ApiResponse r = Admin("GET", "/stats");
    return r.status == 200 ? testing::Int(r.json.as_object(), "sessions") : -1;
  }

  ApiResponse Admin(const std::string& method, const std::string& path,
                    const std::string& key = kAdminKey) {
    return api_->Call(method, "/api/v1/admin" + path, "", key);
  }

  WebhookReceiver receiver_;
  std::unique_ptr<RestartTarget> server_;
  std::unique_ptr<ApiClient> api_;
};

TEST_F(PushE2eTest, DevicesAreOnePerSessionAndGoWithTheSession) {
  Account a = NewAccount("dev");
  ApiResponse r = api_->Post("/devices", R"({"platform":"apns","token":"t1"})", a.token());
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_EQ(testing::Str(r.json.as_object(), "platform"), "apns");
  const std::string first = testing::Str(r.json.as_object(), "device_id");
  r = api_->Post("/devices", R"({"platform":"fcm","token":"t2"})", a.token());
  ASSERT_EQ(r.status, 201);
  const std::string second = testing::Str(r.json.as_object(), "device_id");
  EXPECT_NE(first, second);
  r = api_->Get("/devices", a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  ASSERT_TRUE(r.json.is_array());
  ASSERT_EQ(r.json.as_array().size(), 1u) << "a new registration replaces the session's device";
  const json::object& d = r.json.as_array()[0].as_object();
  EXPECT_EQ(testing::Str(d, "device_id"), second);
  EXPECT_EQ(testing::Str(d, "platform"), "fcm");
  EXPECT_GT(testing::Int(d, "created_at"), 0);

  // A second login (session) of the same user: its own device.
  testing::Session other = api_->Login(a.username);
  r = api_->Post("/devices", R"({"platform":"webhook","token":"t3"})", other.access_token);
  ASSERT_EQ(r.status, 201);
  EXPECT_EQ(api_->Get("/devices", a.token()).json.as_array().size(), 2u);

  for (const char* bad : {R"({"platform":"sms","token":"x"})", R"({"platform":"fcm","token":""})",
                          R"({"platform":"fcm"})", R"({"token":"x"})", "not json"}) {
    r = api_->Post("/devices", bad, a.token());
    EXPECT_EQ(r.status, 400) << bad << ": " << r.Describe();
    EXPECT_EQ(r.ErrorCode(), "invalid_argument");
  }
  r = api_->Post("/devices", R"({"platform":"fcm","token":")" + std::string(4097, 'x') + R"("})",
                 a.token());
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(api_->Post("/devices", R"({"platform":"fcm","token":"x"})").status, 401);

  // Delete: only one's own; then gone.
  Account b = NewAccount("devb");
  EXPECT_EQ(api_->Delete("/devices/" + second, b.token()).status, 404);
  EXPECT_EQ(api_->Delete("/devices/" + second, a.token()).status, 204);
  EXPECT_EQ(api_->Delete("/devices/" + second, a.token()).status, 404);
  EXPECT_EQ(api_->Delete("/devices/notanid", a.token()).status, 400);
  // Logout removes the session's device.
  EXPECT_EQ(api_->Post("/auth/logout", "", other.access_token).status, 204);
  EXPECT_TRUE(api_->Get("/devices", a.token()).json.as_array().empty());
}

TEST_F(PushE2eTest, OfflineDevicesGetSignedPushesButNotTheSenderNorALiveSession) {
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  const std::string bob_device = AddDevice(bob, "bob-token");
  AddDevice(alice, "alice-token");
  const std::string conv = testing::PrivateConvId(alice.id(), bob.id());

  const int64_t seq1 = Send(alice, "user", bob.id(), "hello bob, are you there?");
  ASSERT_TRUE(WaitPush("bob-token", conv, seq1));
  std::vector<ReceivedPush> got = PushesTo("bob-token");
  ASSERT_EQ(got.size(), 1u);
  const ReceivedPush& p = got[0];
  EXPECT_EQ(p.signature, "sha256=" + testing::HmacSha256Hex(kSecret, p.body));
  EXPECT_FALSE(p.delivery_id.empty());
  EXPECT_NE(p.content_type.find("application/json"), std::string::npos);
  json::object body = Parse(p.body);
  const json::object& device = body.at("device").as_object();
  EXPECT_EQ(testing::Str(device, "device_id"), bob_device);
  EXPECT_EQ(testing::Str(device, "user_id"), bob.id());
  EXPECT_EQ(testing::Str(device, "platform"), "webhook");
  json::object n = NotificationOf(p);
  EXPECT_EQ(testing::Str(n, "from"), alice.id());
  EXPECT_FALSE(testing::Str(n, "msg_id").empty());
  EXPECT_EQ(testing::Str(n, "preview"), "hello bob, are you there?");
  EXPECT_EQ(testing::Int(n, "badge"), 1);

  // Bob online (a live WebSocket of the device's session): no push. Then
  // offline again: the next one is pushed, with badge 3 (all unread).
  {
    WsConn ws(server_->port(1));  // another gateway than the REST client's, on a cluster
    ASSERT_TRUE(ws.Open(bob.token()));
    // Live once the route table has the session (on a cluster the route
    // reaches Redis a moment after the hello).
    ASSERT_TRUE(testing::PollUntil([&] { return Sessions() == 1; }, Ms(10000)));
    const double plans = Plans();
    Send(alice, "user", bob.id(), "while you are here");
    ASSERT_TRUE(ws.NextMsg(conv).has_value());
    // Planned (after the reply) while the socket is still open.
    ASSERT_TRUE(testing::PollUntil([&] { return Plans() > plans; }, Ms(10000)));
  }
  // The gateway removes the route when the socket closes: wait for it.
  ASSERT_TRUE(testing::PollUntil([&] { return Sessions() == 0; }, Ms(10000)));
  const int64_t seq3 = Send(alice, "user", bob.id(), "and now you are gone");
  ASSERT_TRUE(WaitPush("bob-token", conv, seq3));
  got = PushesTo("bob-token");
  ASSERT_EQ(got.size(), 2u) << "nothing for the message bob got live: " << Describe("bob-token");
  EXPECT_EQ(testing::Int(NotificationOf(got[1]), "badge"), 3);
  EXPECT_NE(got[1].delivery_id, got[0].delivery_id);
  EXPECT_TRUE(PushesTo("alice-token").empty()) << "never the sender's own device";

  // Muted: nothing; unmuted again: pushed.
  ASSERT_EQ(api_->Patch("/conversations/" + conv, R"({"muted":true})", bob.token()).status, 204);
  const double plans = Plans();
  Send(alice, "user", bob.id(), "muted");
  // Planned (after the reply, on a cluster on another node) before unmuting.
  ASSERT_TRUE(testing::PollUntil([&] { return Plans() > plans; }, Ms(10000)));
  ASSERT_EQ(api_->Patch("/conversations/" + conv, R"({"muted":false})", bob.token()).status, 204);
  const int64_t seq5 = Send(alice, "user", bob.id(), "unmuted");
  ASSERT_TRUE(WaitPush("bob-token", conv, seq5)) << Describe("bob-token");
  EXPECT_EQ(PushesTo("bob-token").size(), 3u)
      << "nothing for the muted message: " << Describe("bob-token");
}

TEST_F(PushE2eTest, GroupsSmallAndLargePushEveryOfflineMember) {
  Account owner = NewAccount("own");
  std::vector<Account> members;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    members.push_back(NewAccount("mem"));
    ids.push_back(members.back().id());
    AddDevice(members.back(), "member-token-" + std::to_string(i));
  }
  AddDevice(owner, "owner-token");
  // Small (2 members + owner = 3, at the threshold): pushed from the send.
  // Its members are in no other group here: pushes to one device that are
  // still queued together are merged, the latest winning (protocol.md
  // section 4), so a member of both groups may rightly get only the large
  // group's (seen under a loaded parallel ctest, session 18).
  testing::GroupRef small = testing::CreateGroup(*api_, owner.token(), "small", {ids[4], ids[5]});
  ASSERT_FALSE(small.group_id.empty());
  // Large (5 > 3): pushed by the fan-out job, page by page.
  testing::GroupRef large =
      testing::CreateGroup(*api_, owner.token(), "large", {ids[0], ids[1], ids[2], ids[3]});
  ASSERT_FALSE(large.group_id.empty());
  const int64_t s1 = Send(owner, "group", small.group_id, "to the small group");
  const int64_t s2 = Send(owner, "group", large.group_id, "to the large group");
  for (int i = 4; i < 6; ++i) {
    const std::string token = "member-token-" + std::to_string(i);
    EXPECT_TRUE(WaitPush(token, small.conv_id, s1)) << i << ": " << Describe(token);
  }
  for (int i = 0; i < 4; ++i) {
    const std::string token = "member-token-" + std::to_string(i);
    EXPECT_TRUE(WaitPush(token, large.conv_id, s2)) << i << ": " << Describe(token);
  }
  EXPECT_TRUE(PushesTo("owner-token").empty());
}

TEST_F(PushE2eTest, PushesToOneDeviceWithinTheWindowAreCoalescedTheLatestWins) {
  Start({"push.coalesce_ms=1500"});  // later settings win
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  AddDevice(bob, "coalesced");
  const std::string conv = testing::PrivateConvId(alice.id(), bob.id());
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) last = Send(alice, "user", bob.id(), "burst " + std::to_string(i));
  ASSERT_TRUE(WaitPush("coalesced", conv, last));
  std::vector<ReceivedPush> got = PushesTo("coalesced");
  ASSERT_LE(got.size(), 2u) << "five messages within the window: at most the first, then one";
  EXPECT_EQ(testing::Str(NotificationOf(got.back()), "preview"), "burst 4");
  EXPECT_EQ(testing::Int(NotificationOf(got.back()), "badge"), 5);
  if (got.size() == 2) {
    EXPECT_GE(std::chrono::duration_cast<Ms>(got[1].at - got[0].at).count(), 1000)
        << "the second waits out the window";
  }
}

TEST_F(PushE2eTest, RetriesGrowThenDeadLetterWhichTheAdminApiRetriesAndDeletes) {
  Account alice = NewAccount("alice");
  Account bob = NewAccount("bob");
  AddDevice(bob, "flaky");
  const std::string conv = testing::PrivateConvId(alice.id(), bob.id());
  // Every attempt fails with 503: three attempts, then a dead letter.
  receiver_.SetPolicy([](const std::string&, size_t) { return 503; });
  const int64_t seq = Send(alice, "user", bob.id(), "will fail");
  ASSERT_TRUE(receiver_.WaitFor(
      [](const std::vector<ReceivedPush>& all) { return all.size() >= kMaxAttempts; }));
  std::vector<ReceivedPush> tries = receiver_.Received();
  ASSERT_EQ(tries.size(), static_cast<size_t>(kMaxAttempts));
  for (const ReceivedPush& t : tries) EXPECT_EQ(t.delivery_id, tries[0].delivery_id);
  const auto gap1 = std::chrono::duration_cast<Ms>(tries[1].at - tries[0].at).count();
  const auto gap2 = std::chrono::duration_cast<Ms>(tries[2].at - tries[1].at).count();
  EXPECT_GE(gap1, kRetryBaseMs * 3 / 4) << "the first retry after about retry_base_ms";
  EXPECT_GE(gap2, kRetryBaseMs * 3 / 2) << "then doubling";

  json::array dead;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        ApiResponse r = Admin("GET", "/jobs?state=dead&kind=push");
        if (r.status != 200) return false;
        dead = r.json.as_object().at("jobs").as_array();
        return dead.size() == 1;
      },
      Ms(10000)));
  const json::object& job = dead[0].as_object();
  const std::string job_id = testing::Str(job, "job_id");
  EXPECT_EQ(job_id, tries[0].delivery_id) << "the delivery id is the job's";
  EXPECT_EQ(testing::Str(job, "kind"), "push");
  EXPECT_EQ(testing::Str(job, "state"), "dead");
  EXPECT_EQ(testing::Int(job, "attempts"), kMaxAttempts);
  EXPECT_EQ(testing::Int(job, "max_attempts"), kMaxAttempts);
  EXPECT_NE(testing::Str(job, "last_error").find("503"), std::string::npos)
      << testing::Str(job, "last_error");
  EXPECT_GT(testing::Int(job, "created_at"), 0);
  EXPECT_FALSE(job.contains("payload")) << "the list leaves payloads out";
  ApiResponse one = Admin("GET", "/jobs/" + job_id);
  ASSERT_EQ(one.status, 200) << one.Describe();
  const json::object& payload = one.json.as_object().at("payload").as_object();
  EXPECT_EQ(testing::Str(payload, "conv_id"), conv);
  EXPECT_EQ(testing::Int(payload, "seq"), seq);
  ApiResponse stats = Admin("GET", "/stats");
  ASSERT_EQ(stats.status, 200);
  EXPECT_EQ(testing::Int(stats.json.as_object().at("jobs").as_object(), "dead"), 1);
  EXPECT_GE(testing::Int(stats.json.as_object(), "users"), 2);
  // The metrics say the same (summed over the nodes on a cluster).
  EXPECT_EQ(server_->MetricSum(R"(mpim_jobs_total{kind="push",outcome="dead"})"), 1);
  EXPECT_EQ(server_->MetricSum(R"(mpim_jobs_total{kind="push",outcome="retried"})"),
            kMaxAttempts - 1);
  EXPECT_EQ(server_->MetricSum(R"(mpim_push_deliveries_total{provider="webhook",outcome="retry"})"),
            kMaxAttempts);
  EXPECT_GE(server_->MetricSum(R"(mpim_push_provider_seconds_count{provider="webhook"})"),
            kMaxAttempts);
  EXPECT_GE(server_->MetricSum(R"(mpim_jobs_enqueued_total{kind="push"})"), 1);
  EXPECT_TRUE(testing::PollUntil(
      [&] { return server_->MetricSum(R"(mpim_jobs_queued{kind="push",state="dead"})") == 1; },
      Ms(5000)))
      << "the queue gauge, refreshed every second";

  // Retried with the receiver answering again: delivered, and gone.
  receiver_.SetPolicy(nullptr);
  EXPECT_EQ(Admin("POST", "/jobs/" + job_id + "/retry").status, 202);
  ASSERT_TRUE(receiver_.WaitFor([](const std::vector<ReceivedPush>& all) {
    return all.size() == kMaxAttempts + 1 && all.back().answered == 200;
  }));
  EXPECT_EQ(receiver_.Received().back().delivery_id, job_id);
  ASSERT_TRUE(
      testing::PollUntil([&] { return Admin("GET", "/jobs/" + job_id).status == 404; }, Ms(10000)));
  EXPECT_EQ(Admin("POST", "/jobs/" + job_id + "/retry").status, 404);

  // A 400 is a dead letter at once; deleting it.
  receiver_.SetPolicy([](const std::string&, size_t) { return 400; });
  Send(alice, "user", bob.id(), "rejected");
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        ApiResponse r = Admin("GET", "/jobs?state=dead");
        return r.status == 200 && r.json.as_object().at("jobs").as_array().size() == 1;
      },
      Ms(10000)));
  const std::string rejected = testing::Str(
      Admin("GET", "/jobs?state=dead").json.as_object().at("jobs").as_array()[0].as_object(),
      "job_id");
  EXPECT_EQ(testing::Int(Admin("GET", "/jobs/" + rejected).json.as_object(), "attempts"), 1);
  EXPECT_EQ(Admin("DELETE", "/jobs/" + rejected).status, 204);
  EXPECT_EQ(Admin("GET", "/jobs/" + rejected).status, 404);

  // 410: the device is removed.
  receiver_.SetPolicy([](const std::string&, size_t) { return 410; });
  Send(alice, "user", bob.id(), "gone");
  ASSERT_TRUE(testing::PollUntil(
      [&] { return api_->Get("/devices", bob.token()).json.as_array().empty(); }, Ms(10000)));
}

TEST_F(PushE2eTest, TheAdminApiNeedsItsKeyAndPagesJobs) {
  EXPECT_EQ(Admin("GET", "/stats", "").status, 401);
  EXPECT_EQ(Admin("GET", "/stats", "wrong").status, 401);
  Account a = NewAccount("adm");
  EXPECT_EQ(Admin("GET", "/stats", a.token()).status, 401) << "a user's token is not the key";
  EXPECT_EQ(Admin("GET", "/jobs?state=bogus").status, 400);
  EXPECT_EQ(Admin("GET", "/jobs?limit=0").status, 400);
  EXPECT_EQ(Admin("GET", "/jobs/abc").status, 400);
  EXPECT_EQ(Admin("GET", "/jobs/123456").status, 404);

  // Three dead letters, paged two at a time.
  Account bob = NewAccount("bob");
  AddDevice(bob, "dead");
  receiver_.SetPolicy([](const std::string&, size_t) { return 400; });
  const std::string conv = testing::PrivateConvId(a.id(), bob.id());
  for (int i = 0; i < 3; ++i) {
    Send(a, "user", bob.id(), "m" + std::to_string(i));
    // One at a time: pushes to one device would otherwise coalesce.
    ASSERT_TRUE(testing::PollUntil(
        [&] {
          ApiResponse r = Admin("GET", "/jobs?state=dead");
          return r.status == 200 &&
                 r.json.as_object().at("jobs").as_array().size() == static_cast<size_t>(i + 1);
        },
        Ms(10000)));
  }
  ApiResponse page = Admin("GET", "/jobs?state=dead&kind=push&limit=2");
  ASSERT_EQ(page.status, 200);
  ASSERT_EQ(page.json.as_object().at("jobs").as_array().size(), 2u);
  const std::string next = testing::Str(page.json.as_object(), "next");
  ASSERT_FALSE(next.empty());
  page = Admin("GET", "/jobs?state=dead&kind=push&limit=2&after=" + next);
  ASSERT_EQ(page.json.as_object().at("jobs").as_array().size(), 1u);
  EXPECT_FALSE(page.json.as_object().contains("next"));
  EXPECT_TRUE(Admin("GET", "/jobs?kind=fanout").json.as_object().at("jobs").as_array().empty());
}

// A provider that refuses every connection for a while: pushes keep being
// planned and retried, and wait in the durable queue (one per device, the
// newest message merged in), so the resident memory of the process that
// runs them levels off instead of growing with the backlog.
TEST_F(PushE2eTest, AProviderDownForAWhileLeavesMemoryFlat) {
  // A port nobody listens on: every attempt is a refused connection.
  const std::string down = "http://127.0.0.1:" + std::to_string(testing::FreePort()) + "/hook";
  Start({"push.webhook_url=" + down, "push.retry_base_ms=50", "push.max_attempts=100"});
  Account owner = NewAccount("own");
  std::vector<std::string> ids;
  constexpr int kMembers = 60;
  for (int i = 0; i < kMembers; ++i) {
    Account m = NewAccount("mem");
    AddDevice(m, "down-" + std::to_string(i));
    ids.push_back(m.id());
  }
  testing::GroupRef group = testing::CreateGroup(*api_, owner.token(), "down", ids);
  ASSERT_FALSE(group.group_id.empty());
  auto rss = [&] { return server_->MetricSum("process_resident_memory_bytes"); };
  auto attempts = [&] {
    return server_->MetricSum(R"(mpim_push_deliveries_total{provider="webhook",outcome="retry"})");
  };
  // 4 messages a second to the group, for 3 s to warm up, then 8 s more.
  auto send_for = [&](std::chrono::seconds how_long) {
    const auto until = Clock::now() + how_long;
    int i = 0;
    while (Clock::now() < until) {
      Send(owner, "group", group.group_id, "while the provider is down " + std::to_string(i++));
      std::this_thread::sleep_for(Ms(250));  // pacing the load, not waiting for an event
    }
  };
  send_for(std::chrono::seconds(3));
  const double rss_before = rss();
  const double attempts_before = attempts();
  send_for(std::chrono::seconds(8));
  const double rss_after = rss();
  const double attempts_after = attempts();
  std::printf("provider down: %.0f failed attempts in 8 s; RSS %.1f -> %.1f MiB\n",
              attempts_after - attempts_before, rss_before / 1048576, rss_after / 1048576);
  EXPECT_GE(attempts_after - attempts_before, kMembers) << "pushes kept being retried";
  // ASan keeps freed memory in quarantine (256 MiB): resident memory grows
  // with any allocation, so the bound holds only for a normal build.
  if (!testing::ServerSanitized()) {
    EXPECT_LT(rss_after - rss_before, 8.0 * 1048576) << "memory grew with the backlog";
  }
  ApiResponse stats = Admin("GET", "/stats");
  ASSERT_EQ(stats.status, 200);
  const auto& jobs = stats.json.as_object().at("jobs").as_object();
  EXPECT_LE(testing::Int(jobs, "ready") + testing::Int(jobs, "leased"), kMembers + 2)
      << "one push per device waits: newer messages merge into it";
}

TEST(PushE2eAdminOffTest, WithoutAnApiKeyTheAdminPathsAreNotFound) {
  RestartTarget server(testing::FastAuthEnv());
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  EXPECT_EQ(api.Call("GET", "/api/v1/admin/stats", "", "anything").status, 404);
  EXPECT_EQ(api.Call("GET", "/api/v1/admin/jobs").status, 404);
}

}  // namespace
}  // namespace mpim
