// End-to-end: twenty `kill -9` cycles of `mpim serve` under chat and group
// load (issue 8 "Crashes and restarts"; docs/protocol.md
// section 3: an `ok` reply means durable, `send` is idempotent "even after
// ... a server restart", hello + sync catch-up, dedup by (conv_id, seq)).
//
// Load clients (support/chat_load.h), one thread each, send and receive
// over WebSocket: six user pairs (one side sends, the other receives) and
// two groups, one of 10 members fanned out in the send path and one of 12
// above the fan-out threshold (the durable job path), each with three
// senders; every member receives, one per group only connects after the
// last cycle. Each cycle
// waits until every client is connected and acknowledged sends are flowing,
// lets the load run a little longer, SIGKILLs the server and starts a new
// one on the same data dir (on a new port, which the clients follow).
// Clients reconnect with back-off (50 ms doubling to 1 s, jittered), catch
// up through hello + sync and resend their unacknowledged sends with the
// same client_msg_id. After the last cycle sending stops, every send is let
// finish, every conversation is read back over REST, every receiver is let
// catch up, and the AckChecker (tests/support/ack_checker.h) checks it all.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "support/chat_load.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::ChatLoadPlan;
using testing::Ms;
using testing::ServerProcess;

using Clock = std::chrono::steady_clock;

constexpr int kCycles = 20;
constexpr int kFanoutThreshold = 10;  // groups above this use the fan-out job
// Six pairs; groups of 10 and 12 members (the owner included), three senders each.
const ChatLoadPlan kPlan{.pairs = 6, .groups = {{10, 3}, {12, 3}}};
constexpr int64_t kMinAcksPerCycle = 50;
constexpr Ms kWait{60000};  // deadline of every wait on the clients

class CrashCyclesE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    run_.StopClients();
    if (HasFailure() && server_) {
      std::printf("server log (last 4000 bytes):\n%s\n", server_->LogTail(4000).c_str());
    }
  }

  // Starts the next server on the kept data dir (server_); the clients are
  // told by the caller.
  bool StartServer() {
    server_ = series_.Start();
    if (!server_) {
      ADD_FAILURE() << "server " << run_.load.Server().first + 1
                    << " did not start: " << series_.error();
      return false;
    }
    return true;
  }

  testing::ServerSeries series_{ServerProcess::Options{
      .env = testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                             {"MPIM_LIMITS_SEND_BURST", "100000"},
                             {"MPIM_GROUPS_FANOUT_THRESHOLD", std::to_string(kFanoutThreshold)},
                             {"MPIM_GROUPS_FANOUT_BATCH", "4"}})}};
  ServerProcess* server_ = nullptr;  // the current one
  testing::ChatLoadRun run_;
};

TEST_F(CrashCyclesE2eTest, TwentyKillNineCyclesUnderChatAndGroupLoadLoseAndDuplicateNothing) {
  const auto started = Clock::now();
  ASSERT_TRUE(StartServer());
  ASSERT_TRUE(run_.Start(server_->port(), "cc", kPlan)) << "load not set up";

  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<int> extra_load_ms(200, 900);
  for (int cycle = 1; cycle <= kCycles; ++cycle) {
    ASSERT_TRUE(run_.WaitConnected(kWait)) << "cycle " << cycle;
    ASSERT_TRUE(run_.WaitAcks(kMinAcksPerCycle, kWait)) << "cycle " << cycle;
    // Load runs on for a moment (pacing, not a wait for an event), then the
    // server dies wherever it is.
    run_.load.Pause(Ms(extra_load_ms(rng)));
    server_->Signal(SIGKILL);
    ASSERT_EQ(server_->Wait(Ms(20000)), -SIGKILL) << "cycle " << cycle;
    ASSERT_TRUE(StartServer()) << "cycle " << cycle;
    run_.load.Publish(server_->port());
  }

  testing::ChatLoadSummary s = run_.Finish(server_->port(), kWait);
  const auto seconds =
      std::chrono::duration_cast<std::chrono::duration<double>>(Clock::now() - started).count();
  std::printf(
      "crash cycles: %d kill -9 cycles in %.1f s; %lld sends acknowledged (%lld ok replies; %lld "
      "resent after a reconnect, %lld of them already stored); %lld messages stored in %zu "
      "conversations; %lld receipts (%lld duplicates) for %lld receivers over %lld connections\n",
      kCycles, seconds, static_cast<long long>(s.totals.acked_messages),
      static_cast<long long>(s.totals.acks), static_cast<long long>(s.resent),
      static_cast<long long>(s.resends_found_stored),
      static_cast<long long>(s.totals.stored_messages), s.conversations,
      static_cast<long long>(s.totals.receipts),
      static_cast<long long>(s.totals.duplicate_receipts),
      static_cast<long long>(s.totals.receivers), static_cast<long long>(s.connections));
  RecordProperty("acked_messages", std::to_string(s.totals.acked_messages));
  RecordProperty("resent", std::to_string(s.resent));
  RecordProperty("resends_found_stored", std::to_string(s.resends_found_stored));
}

}  // namespace
}  // namespace mpim
