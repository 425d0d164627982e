// End-to-end: the real `mpim serve` on a real mariadbd that the test kills
// and stops under it (issue 18; docs/storage.md "The MySQL/MariaDB engine",
// "Timeouts and failures"; docs/protocol.md section 3: an `ok` reply means
// durable, `send` is idempotent).
//
//   - No acknowledged message is lost: chat and group load (support/
//     chat_load.h) runs through three outages of mariadbd (`kill -9`,
//     SIGSTOP, `kill -9`); sends made while it is unreachable are answered
//     `unavailable`, never `ok`; once it is back (restarted on the same port
//     and data dir, or SIGCONT) the server finds it by itself, the
//     clients reconnect, catch up through hello + sync and resend what failed
//     with the same client_msg_id, and the AckChecker (support/ack_checker.h)
//     finds every acknowledged message stored once, in order, delivered.
//   - /readyz answers 503 while the database is unreachable (killed, or
//     stopped with SIGSTOP so that only the store's timeout can tell) within
//     a bound, a send answers `unavailable` and REST calls 503 `unavailable`
//     (not 500, not a hang); when the database returns, /readyz answers 200
//     again and sends succeed, with no restart of mpim.
//   - Through all of it the server never crashes: the same process serves
//     to the end and its log holds no crash.
//
// Each test owns its mariadbd (not SharedMariaDb(): it kills it). The store's
// timeout is 1 s (store.mysql_timeout_ms).
#include <gtest/gtest.h>
#include <signal.h>

#include <array>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/chat_load.h"
#include "support/eventually.h"
#include "support/group_helpers.h"
#include "support/mariadb_server.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using testing::ChatLoadPlan;
using testing::IsErrorReply;
using testing::IsSendResult;
using testing::Ms;
using testing::ServerProcess;
using testing::TextSend;
using testing::WaitForReadyz;
using testing::WsConn;

namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr int kStoreTimeoutMs = 1000;
constexpr int kFanoutThreshold = 5;  // groups above this use the fan-out job
// Four pairs; a group fanned out in the send path and one through the job.
const ChatLoadPlan kPlan{.pairs = 4, .groups = {{5, 2}, {7, 2}}};
constexpr int64_t kMinAcksPerCycle = 50;
constexpr int64_t kMinRefusedPerOutage = 20;  // `unavailable` replies while down
constexpr Ms kWait{30000};                    // deadline of every wait on the clients
// How soon the server must notice the database gone: a few store timeouts
// (the connector's timeouts are whole seconds; a probe may meet a read and
// a write timeout).
constexpr Ms kNoticeWithin{4 * kStoreTimeoutMs};
// How soon a call must be answered while the database is gone (no hang).
constexpr Ms kAnswerWithin{4 * kStoreTimeoutMs};
// How soon the server must find the database again once it is back: the
// reconnect back-off is at most 2 s.
constexpr Ms kRecoverWithin{10000};

// Lines a crashed or aborting process leaves in its log.
constexpr std::array<const char*, 8> kCrashMarks = {
    "terminate called", "Assertion", "AddressSanitizer",   "runtime error:", "Segmentation",
    "core dumped",      "FATAL",     "\"level\":\"fatal\""};

class MysqlFaultsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.Start()) << db_.error();
    const std::string url = db_.CreateDatabase("faults");
    ASSERT_FALSE(url.empty());
    server_ = std::make_unique<ServerProcess>(ServerProcess::Options{
        .extra_args = {"--set", "store.engine=mysql", "--set", "store.mysql_url=" + url, "--set",
                       "store.mysql_timeout_ms=" + std::to_string(kStoreTimeoutMs)},
        .env = testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                               {"MPIM_LIMITS_SEND_BURST", "100000"},
                               {"MPIM_GROUPS_FANOUT_THRESHOLD", std::to_string(kFanoutThreshold)},
                               {"MPIM_GROUPS_FANOUT_BATCH", "4"}})});
    ASSERT_TRUE(server_->Start()) << server_->error();
    pid_ = server_->pid();
  }

  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && server_) {
      std::printf("server log (last 6000 bytes):\n%s\n", server_->LogTail(6000).c_str());
    }
  }

  uint16_t port() const { return server_->port(); }

  // Ways to make the database unreachable, and to bring it back.
  struct Fault {
    const char* name;
    std::function<void()> make, mend;
  };
  Fault KillNine() {
    return {"kill -9", [this] { db_.Kill(); },
            [this] { ASSERT_TRUE(db_.Start()) << "mariadbd did not restart: " << db_.error(); }};
  }
  Fault Stop() {
    return {"SIGSTOP", [this] { db_.Pause(); }, [this] { db_.Resume(); }};
  }

  // The server that started is still running, and its log shows no crash.
  void ExpectSameServerAlive() {
    EXPECT_EQ(server_->pid(), pid_);
    EXPECT_EQ(server_->Wait(Ms(0)), std::nullopt) << "mpim exited";
    const std::string logs = server_->Logs();
    for (const char* mark : kCrashMarks) {
      EXPECT_EQ(logs.find(mark), std::string::npos) << "the server log has \"" << mark << "\"";
    }
  }

  // A REST call answered 503 `unavailable` within kAnswerWithin; "<what>
  // <ms> ms" for the report.
  std::string ExpectUnavailable(const std::string& what, const std::function<ApiResponse()>& call) {
    const auto t0 = Clock::now();
    ApiResponse r = call();
    const auto took = std::chrono::duration_cast<Ms>(Clock::now() - t0);
    EXPECT_TRUE(testing::IsError(r, 503, "unavailable")) << what << ": " << r.Describe();
    EXPECT_LE(took, kAnswerWithin) << what << " took " << took.count() << " ms";
    return what + " " + std::to_string(took.count()) + " ms";
  }

  testing::MariaDbServer db_;
  std::unique_ptr<ServerProcess> server_;
  pid_t pid_ = -1;
  testing::ChatLoadRun run_;
};

TEST_F(MysqlFaultsE2eTest,
       MariadbdKilledAndStoppedUnderChatAndGroupLoadLosesNoAcknowledgedMessage) {
  const auto started = Clock::now();
  ASSERT_TRUE(run_.Start(port(), "mf", kPlan)) << "load not set up";
  testing::ChatLoad& load = run_.load;

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> extra_load_ms(100, 400);
  int64_t refused = 0;
  const Fault cycles[] = {KillNine(), Stop(), KillNine()};
  for (int cycle = 1; cycle <= static_cast<int>(std::size(cycles)); ++cycle) {
    const Fault& fault = cycles[cycle - 1];
    SCOPED_TRACE(fault.name);
    ASSERT_TRUE(run_.WaitConnected(kWait)) << "cycle " << cycle;
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerCycle, kWait)) << "cycle " << cycle;
    // Load runs on for a moment (pacing, not a wait for an event), then
    // mariadbd dies or stops wherever it is.
    load.Pause(Ms(extra_load_ms(rng)));
    fault.make();
    load.BeginOutage();  // from here an `ok` is a failure (see ChatLoad)
    // The load goes on: sends are refused, retried, refused again.
    const int64_t unavailable = load.unavailable.load();
    ASSERT_TRUE(load.WaitFor(
        [&] { return load.unavailable.load() >= unavailable + kMinRefusedPerOutage; }, kWait))
        << "cycle " << cycle << ": sends are not refused while mariadbd is unreachable"
        << run_.Laggards([](const testing::ChatLoadClient& c) { return c.unacked() == 0; });
    load.Pause(Ms(extra_load_ms(rng)));
    refused += load.unavailable.load() - unavailable;
    load.EndOutage();
    fault.mend();
    ASSERT_FALSE(HasFatalFailure());
    int last = 0;
    ASSERT_TRUE(WaitForReadyz(port(), 200, kRecoverWithin, &last))
        << "cycle " << cycle << ": /readyz answered " << last << " after mariadbd came back";
    load.Publish(port());  // the clients reconnect, catch up and resend
  }
  ASSERT_TRUE(run_.WaitConnected(kWait)) << "after the last restart";
  ASSERT_TRUE(run_.WaitAcks(kMinAcksPerCycle, kWait)) << "after the last restart";

  testing::ChatLoadSummary s = run_.Finish(port(), kWait);
  ExpectSameServerAlive();
  const auto seconds =
      std::chrono::duration_cast<std::chrono::duration<double>>(Clock::now() - started).count();
  std::printf(
      "mysql faults: %zu cycles of mariadbd (kill -9, SIGSTOP, kill -9) in %.1f s; %lld sends "
      "refused as unavailable while it was unreachable; %lld sends acknowledged (%lld ok replies; "
      "%lld resent after a reconnect, %lld of them already stored); %lld messages stored in %zu "
      "conversations; %lld receipts (%lld duplicates) for %lld receivers over %lld connections\n",
      std::size(cycles), seconds, static_cast<long long>(refused),
      static_cast<long long>(s.totals.acked_messages), static_cast<long long>(s.totals.acks),
      static_cast<long long>(s.resent), static_cast<long long>(s.resends_found_stored),
      static_cast<long long>(s.totals.stored_messages), s.conversations,
      static_cast<long long>(s.totals.receipts),
      static_cast<long long>(s.totals.duplicate_receipts),
      static_cast<long long>(s.totals.receivers), static_cast<long long>(s.connections));
  RecordProperty("acked_messages", std::to_string(s.totals.acked_messages));
  RecordProperty("refused", std::to_string(refused));
}

TEST_F(MysqlFaultsE2eTest, ReadyzIs503WhileMariadbdIsUnreachableAndTheServerRecoversByItself) {
  ApiClient api(port());
  const Account a = api.NewAccount(testing::UniqueName("mf_a"));
  const Account b = api.NewAccount(testing::UniqueName("mf_b"));
  const std::string conv = testing::PrivateConvId(a.id(), b.id());
  WsConn ws(port());
  ASSERT_TRUE(ws.Open(a.token()));
  int sends = 0;
  // A send of a new message, and its reply (nullopt: none within kAnswerWithin).
  auto send = [&] {
    const std::string cmid = "rz-" + std::to_string(++sends);
    return ws.Request(TextSend(b.id(), cmid, cmid), kAnswerWithin);
  };
  int last = 0;
  ASSERT_TRUE(WaitForReadyz(port(), 200, kAnswerWithin, &last)) << last;
  ASSERT_TRUE(IsSendResult(send()));
  // A scrape answers (a hung database never holds it) and says mpim_ready.
  auto scraped_ready = [&](const char* value) {
    return testing::Eventually([&] {
      ApiResponse m = api.Call("GET", "/metrics");
      return m.status == 200 &&
             m.body.find(std::string("\nmpim_ready ") + value + "\n") != std::string::npos;
    });
  };
  EXPECT_TRUE(scraped_ready("1"));

  for (const Fault& fault : {KillNine(), Stop()}) {
    SCOPED_TRACE(fault.name);
    const auto t0 = Clock::now();
    fault.make();
    EXPECT_TRUE(WaitForReadyz(port(), 503, kNoticeWithin, &last))
        << "/readyz still answers " << last << " after " << kNoticeWithin.count() << " ms";
    const auto noticed = std::chrono::duration_cast<Ms>(Clock::now() - t0);
    EXPECT_TRUE(scraped_ready("0")) << "/metrics while mariadbd is " << fault.name;

    const auto t_send = Clock::now();
    auto refused = send();
    ASSERT_TRUE(refused.has_value()) << "no answer to a send: " << ws.last_error();
    EXPECT_TRUE(IsErrorReply(refused, "unavailable")) << json::serialize(*refused);
    std::string answers =
        "send " + std::to_string(std::chrono::duration_cast<Ms>(Clock::now() - t_send).count()) +
        " ms";
    answers += ", " + ExpectUnavailable("GET history", [&] {
                 return api.Get("/conversations/" + conv + "/messages?limit=10", b.token());
               });
    answers +=
        ", " + ExpectUnavailable("PATCH /users/me", [&] {
          return api.Call("PATCH", "/api/v1/users/me", R"({"display_name":"down"})", a.token());
        });
    answers += ", " + ExpectUnavailable("POST /auth/login", [&] {
                 return api.Post("/auth/login",
                                 R"({"username":)" + testing::JsonString(a.username) +
                                     R"(,"password":)" + testing::JsonString(a.password) + "}");
               });

    const auto t1 = Clock::now();
    fault.mend();
    EXPECT_TRUE(WaitForReadyz(port(), 200, kRecoverWithin, &last))
        << "/readyz still answers " << last << " after " << kRecoverWithin.count() << " ms";
    const auto recovered = std::chrono::duration_cast<Ms>(Clock::now() - t1);
    EXPECT_TRUE(scraped_ready("1")) << "/metrics after mariadbd came back";
    EXPECT_TRUE(IsSendResult(send())) << ws.last_error();
    ApiResponse history = api.Get("/conversations/" + conv + "/messages?limit=10", b.token());
    EXPECT_EQ(history.status, 200) << history.Describe();
    std::printf(
        "%s: /readyz 503 after %lld ms; unavailable answered in: %s; /readyz 200 again %lld ms "
        "after mariadbd came back\n",
        fault.name, static_cast<long long>(noticed.count()), answers.c_str(),
        static_cast<long long>(recovered.count()));
  }
  // Every acknowledged message is there, each once, seqs 1..n: the first
  // send and one after each fault.
  auto stored = testing::History(api, b.token(), conv);
  EXPECT_EQ(testing::Seqs(stored), (std::vector<int64_t>{1, 2, 3}));
  ExpectSameServerAlive();
}

}  // namespace
}  // namespace mpim
