// End-to-end: SIGTERM while chat traffic runs (docs/operations.md
// "Shutdown"; docs/protocol.md section 3: close code 1012, "a
// reply with ok:true means the message is durable", idempotent `send`).
// Several sessions keep qos 1 sends in flight when the signal arrives; every
// socket must get 1012, the process must exit 0 within
// server.drain_timeout_ms, and after a restart on the same data dir every
// acknowledged message is in history exactly once. Sends that got no ok
// reply are what a client retries: resent after the restart, they make
// every client_msg_id present exactly once.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <boost/json/serialize.hpp>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/http_client.h"
#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::Int;
using testing::IsSendResult;
using testing::Ms;
using testing::PrivateConvId;
using testing::ServerProcess;
using testing::Str;
using testing::TextSend;
using testing::UniqueName;
using testing::WsAuth;
using testing::WsConn;

namespace json = boost::json;

constexpr int kDrainTimeoutMs = 10000;
constexpr int kSenders = 4;
constexpr size_t kWindow = 16;  // sends in flight per session

// What one sending session saw.
struct SendLog {
  std::map<std::string, json::object> acked;   // client_msg_id -> ok reply
  std::map<std::string, std::string> refused;  // client_msg_id -> error code
  std::set<std::string> unanswered;            // sent (or tried), no reply before the close
  std::optional<int> close_code;
  std::string close_error;
  int attempted = 0;
};

// Sends text messages to `to` with up to kWindow in flight until the server
// closes the connection; counts acks into `acked_total`.
void SendUntilClosed(WsConn& ws, const std::string& to, const std::string& prefix,
                     std::atomic<int>& acked_total, SendLog& log) {
  std::map<int64_t, std::string> in_flight;  // rid -> client_msg_id
  bool can_send = true;
  for (;;) {
    while (can_send && in_flight.size() < kWindow) {
      std::string cmid = prefix + std::to_string(++log.attempted);
      json::object frame = TextSend(to, cmid, "under load " + cmid);
      int64_t rid = ws.NextRid();
      frame["rid"] = rid;
      in_flight[rid] = cmid;
      if (!ws.Send(frame)) can_send = false;  // the socket is going away
    }
    auto f = ws.NextFrame(Ms(15000));
    if (!f) break;
    if (Str(*f, "op") != "reply") continue;
    const json::value* rid = f->if_contains("rid");
    if (!rid || !rid->is_int64()) continue;  // e.g. an error for an ack
    auto it = in_flight.find(rid->as_int64());
    if (it == in_flight.end()) continue;
    if (IsSendResult(f)) {
      log.acked[it->second] = *f;
      acked_total.fetch_add(1);
    } else {
      const json::object* error = testing::Obj(*f, "error");
      log.refused[it->second] = error ? Str(*error, "code") : "?";
    }
    in_flight.erase(it);
  }
  for (const auto& [rid, cmid] : in_flight) log.unanswered.insert(cmid);
  log.close_code = ws.CloseCode(Ms(0));
  log.close_error = ws.last_error();
}

TEST(ShutdownE2eTest, SigtermUnderLoadDrainsAndLosesNoAcknowledgedMessage) {
  testing::ServerSeries servers({
      .extra_args = {"--set", "server.drain_timeout_ms=" + std::to_string(kDrainTimeoutMs)},
      .env = testing::WsEnv(
          {{"MPIM_LIMITS_SEND_PER_SEC", "1000000"}, {"MPIM_LIMITS_SEND_BURST", "1000000"}}),
  });
  ServerProcess* s1 = servers.Start();
  ASSERT_TRUE(s1) << servers.error();
  struct Pair {
    Account a, b;
    std::string conv;
  };
  std::vector<Pair> pairs;
  {
    ApiClient api(s1->port());
    for (int i = 0; i < kSenders; ++i) {
      Pair p{api.NewAccount(UniqueName("term_a")), api.NewAccount(UniqueName("term_b")), ""};
      p.conv = PrivateConvId(p.a.id(), p.b.id());
      pairs.push_back(std::move(p));
    }
  }
  // Senders (one thread each), receivers that never read until the end, and
  // one socket that never authenticates.
  std::vector<std::unique_ptr<WsConn>> senders, receivers;
  for (const Pair& p : pairs) {
    senders.push_back(std::make_unique<WsConn>(s1->port()));
    ASSERT_TRUE(senders.back()->Open(p.a.token(), WsAuth::kHeader));
    receivers.push_back(std::make_unique<WsConn>(s1->port()));
    ASSERT_TRUE(receivers.back()->Open(p.b.token(), WsAuth::kQuery));
  }
  WsConn unauthenticated(s1->port());
  ASSERT_TRUE(unauthenticated.Connect().ok()) << unauthenticated.last_error();

  std::atomic<int> acked_total{0};
  std::vector<SendLog> logs(kSenders);
  std::vector<std::thread> threads;
  for (int i = 0; i < kSenders; ++i) {
    threads.emplace_back([&, i] {
      SendUntilClosed(*senders[static_cast<size_t>(i)], pairs[static_cast<size_t>(i)].b.id(),
                      "s" + std::to_string(i) + "-", acked_total, logs[static_cast<size_t>(i)]);
    });
  }
  // Traffic is flowing: 1,500 acks in, then the signal.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (acked_total.load() < 1500 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(Ms(10));  // polling a counter, not a sync
  }
  ASSERT_GE(acked_total.load(), 1500) << "no traffic before the signal; logs:\n" << s1->Logs();
  s1->Signal(SIGTERM);

  // The first 1012 means the drain has begun: from then on nothing new is
  // served, and /readyz never says ready.
  auto first = receivers[0]->CloseCode(Ms(kDrainTimeoutMs));
  ASSERT_TRUE(first) << receivers[0]->last_error();
  EXPECT_EQ(*first, 1012);
  {
    client::HttpClient late("127.0.0.1", s1->port(), Ms(2000));
    auto ready = late.Get("/readyz");
    if (ready.ok()) {
      EXPECT_EQ(ready->status, 503) << ready->body;
    }
    WsConn late_ws(s1->port());
    if (late_ws.Connect().ok()) {
      EXPECT_EQ(late_ws.CloseCode(Ms(kDrainTimeoutMs)), 1012) << late_ws.last_error();
    }
  }
  for (size_t i = 1; i < receivers.size(); ++i) {
    auto code = receivers[i]->CloseCode(Ms(kDrainTimeoutMs));
    ASSERT_TRUE(code) << receivers[i]->last_error();
    EXPECT_EQ(*code, 1012);
  }
  auto unauth_code = unauthenticated.CloseCode(Ms(kDrainTimeoutMs));
  ASSERT_TRUE(unauth_code) << unauthenticated.last_error();
  EXPECT_EQ(*unauth_code, 1012);
  for (auto& t : threads) t.join();

  std::map<std::string, std::string> refused_codes;
  int acked = 0, refused = 0, unanswered = 0;
  for (const SendLog& log : logs) {
    EXPECT_EQ(log.close_code, 1012) << log.close_error;
    acked += static_cast<int>(log.acked.size());
    refused += static_cast<int>(log.refused.size());
    unanswered += static_cast<int>(log.unanswered.size());
    for (const auto& [cmid, code] : log.refused) refused_codes[code] = cmid;
  }
  // A send refused during the drain is refused as retryable, never as the
  // client's fault.
  for (const auto& [code, cmid] : refused_codes) {
    EXPECT_EQ(code, "unavailable") << cmid;
  }

  auto exit_code = s1->Wait(Ms(kDrainTimeoutMs + 10000));
  ASSERT_TRUE(exit_code.has_value()) << "still running; logs:\n" << s1->Logs();
  EXPECT_EQ(*exit_code, 0) << s1->Logs();
  // Drained before the timeout, not cut off by it.
  EXPECT_EQ(s1->Logs().find("drain timeout reached"), std::string::npos) << s1->Logs();
  senders.clear();
  receivers.clear();

  ServerProcess* s2 = servers.Start();
  ASSERT_TRUE(s2) << servers.error();
  ApiClient api(s2->port());
  for (size_t i = 0; i < pairs.size(); ++i) {
    SCOPED_TRACE("pair " + std::to_string(i));
    const Pair& p = pairs[i];
    const SendLog& log = logs[i];
    auto history = testing::History(api, p.b.token(), p.conv);
    std::map<std::string, json::object> stored;
    for (size_t k = 0; k < history.size(); ++k) {
      ASSERT_EQ(Int(history[k], "seq"), static_cast<int64_t>(k + 1)) << "a gap or reuse in seq";
      std::string cmid = Str(history[k], "client_msg_id");
      EXPECT_TRUE(stored.emplace(cmid, history[k]).second) << cmid << " stored twice";
    }
    for (const auto& [cmid, reply] : log.acked) {
      auto it = stored.find(cmid);
      ASSERT_NE(it, stored.end()) << "acknowledged " << cmid << " is not in history";
      EXPECT_EQ(Str(it->second, "msg_id"), Str(reply, "msg_id")) << cmid;
      EXPECT_EQ(Int(it->second, "seq"), Int(reply, "seq")) << cmid;
    }
    // The client retries whatever got no ok: a message stored before the
    // shutdown comes back with its first result, one that was not is stored
    // now; either way each client_msg_id ends up in history once.
    auto ws = std::make_unique<WsConn>(s2->port());
    ASSERT_TRUE(ws->Open(p.a.token()));
    std::set<std::string> retry(log.unanswered);
    for (const auto& [cmid, code] : log.refused) retry.insert(cmid);
    for (const std::string& cmid : retry) {
      auto r = ws->Request(TextSend(p.b.id(), cmid, "under load " + cmid));
      ASSERT_TRUE(IsSendResult(r)) << cmid << " " << ws->last_error();
      if (auto it = stored.find(cmid); it != stored.end()) {
        EXPECT_EQ(Str(*r, "msg_id"), Str(it->second, "msg_id")) << cmid;
      }
    }
    auto after = testing::History(api, p.b.token(), p.conv);
    std::set<std::string> cmids;
    for (size_t k = 0; k < after.size(); ++k) {
      ASSERT_EQ(Int(after[k], "seq"), static_cast<int64_t>(k + 1));
      EXPECT_TRUE(cmids.insert(Str(after[k], "client_msg_id")).second);
    }
    EXPECT_EQ(cmids.size(), log.acked.size() + retry.size());
    EXPECT_EQ(static_cast<int>(cmids.size()), log.attempted);
  }
  std::printf("acked %d, refused %d, unanswered %d at SIGTERM\n", acked, refused, unanswered);
}

}  // namespace
}  // namespace mpim
