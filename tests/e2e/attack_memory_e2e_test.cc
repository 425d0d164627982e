// Issue #8: after hostile clients go away, the server's memory returns near
// its baseline, and well-behaved clients are served throughout. Waves of
// connections that upgrade and never authenticate, HTTP requests whose
// headers never finish (slowloris), and authenticated sockets sending
// near-limit junk frames and fragments, each wave torn down before the next.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/ws_client.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::IsOkReply;
using testing::Pings;
using testing::WsConn;

namespace asio = boost::asio;

struct AttackConfig {
  static auto Env() {
    return testing::WsEnv(
        {{"MPIM_LIMITS_CONNECTIONS_PER_ADDRESS", "0"}, {"MPIM_GATEWAY_AUTH_TIMEOUT_MS", "60000"}});
  }
};

class AttackMemoryE2eTest : public testing::WsServerTest<AttackConfig> {
 protected:
  // Resident memory of the server (VmRSS), KiB.
  int64_t ServerRssKib() {
    std::ifstream status("/proc/" + std::to_string(server_->pid()) + "/status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
  }

  // The server's open HTTP connections (WebSockets included), from /metrics.
  int64_t OpenConnections() {
    auto r = api_->Call("GET", "/metrics");
    const std::string key = "\nmpim_http_connections_open ";
    size_t at = r.body.find(key);
    if (at == std::string::npos) return -1;
    return std::stoll(r.body.substr(at + key.size()));
  }

  // Waits until the server's resident memory is at most `kib` (it trims its
  // heap shortly after connections go); the last reading, above `kib` if it
  // did not get there within 10 s.
  int64_t RssFallsTo(int64_t kib) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    int64_t rss = ServerRssKib();
    while (rss > kib && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      rss = ServerRssKib();
    }
    return rss;
  }

  // Waits until the server holds at most `n` connections (the attackers'
  // sockets are closed on the server side too).
  ::testing::AssertionResult ConnectionsFallTo(int64_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    int64_t open = -1;
    while (std::chrono::steady_clock::now() < deadline) {
      open = OpenConnections();
      if (open >= 0 && open <= n) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return ::testing::AssertionFailure() << open << " connections still open, want <= " << n;
  }
};

TEST_F(AttackMemoryE2eTest, MemoryReturnsNearBaselineAfterWavesOfHostileClients) {
  if (testing::ServerSanitized()) {
    // The server under test is a sanitizer build: its allocator quarantines
    // freed memory (hundreds of MiB) and malloc_trim does not apply. The
    // Release suite (`make test`) measures this.
    GTEST_SKIP() << "resident memory is not meaningful under a sanitizer allocator";
  }
  constexpr int kWaves = 3;
  constexpr int kUnauthenticated = 1500;
  constexpr int kSlowloris = 300;
  constexpr int kJunkSenders = 40;
  // What a wave may leave behind (allocator caches, Asio's descriptor pool),
  // and what a later wave may add to what the first left.
  constexpr int64_t kNearBaselineKib = 6 * 1024;
  constexpr int64_t kReuseKib = 2 * 1024;

  Account alice = NewAccount("calm_a");
  Account bob = NewAccount("calm_b");
  auto a = OpenWs(alice.token());
  auto b = OpenWs(bob.token());
  ASSERT_TRUE(a && b);
  const std::string conv = testing::PrivateConvId(alice.id(), bob.id());
  std::vector<Account> junk_accounts;
  for (int i = 0; i < kJunkSenders; ++i) junk_accounts.push_back(NewAccount("junk"));

  // Warm up what the attack will touch once (thread caches, the listener),
  // then take the baseline.
  int seq_sent = 0;
  auto chat = [&]() -> ::testing::AssertionResult {
    ++seq_sent;
    auto r = a->Request(testing::TextSend(bob.id(), "calm-" + std::to_string(seq_sent), "hi"));
    if (!IsOkReply(r)) return ::testing::AssertionFailure() << "send: " << a->last_error();
    if (!b->NextMsg(conv)) return ::testing::AssertionFailure() << "no msg: " << b->last_error();
    return Pings(*b);
  };
  ASSERT_TRUE(chat());
  const int64_t connections_before = OpenConnections();
  const int64_t baseline = ServerRssKib();
  ASSERT_GT(baseline, 0);
  int64_t peak = baseline;

  asio::io_context io;
  std::vector<int64_t> after_wave;
  for (int wave = 0; wave < kWaves; ++wave) {
    SCOPED_TRACE("wave " + std::to_string(wave));
    {
      // Upgrades that never authenticate.
      std::vector<std::unique_ptr<client::WsClient>> idle;
      for (int i = 0; i < kUnauthenticated; ++i) {
        auto c = std::make_unique<client::WsClient>();
        if (c->Connect("127.0.0.1", port(), "/ws").ok()) idle.push_back(std::move(c));
      }
      EXPECT_GT(idle.size(), 0u);
      // HTTP headers that never finish.
      std::vector<std::unique_ptr<asio::ip::tcp::socket>> loris;
      for (int i = 0; i < kSlowloris; ++i) {
        auto s = std::make_unique<asio::ip::tcp::socket>(io);
        boost::system::error_code ec;
        s->connect({asio::ip::make_address("127.0.0.1"), port()}, ec);
        if (ec) continue;
        asio::write(*s, asio::buffer(std::string("GET /api/v1/users/me HTTP/1.1\r\nHost: x\r\nX-")),
                    ec);
        loris.push_back(std::move(s));
      }
      // Authenticated junk: near-limit frames that are not JSON, and
      // half-sent fragmented messages left hanging.
      std::vector<std::unique_ptr<WsConn>> junk;
      for (const Account& acct : junk_accounts) {
        auto ws = OpenWs(acct.token());
        if (!ws) continue;
        std::string big(120 * 1024, '[');
        ASSERT_TRUE(ws->client().SendText(big).ok());
        std::string start = client::WsClient::EncodeClientFrame(1, std::string(60 * 1024, '{'));
        start[0] = static_cast<char>(start[0] & 0x7F);  // FIN off: more fragments promised
        ASSERT_TRUE(ws->client().SendRaw(start).ok());
        junk.push_back(std::move(ws));
      }
      // The calm pair is served in the middle of it.
      EXPECT_TRUE(chat());
      peak = std::max(peak, ServerRssKib());
      // Everyone leaves (abruptly: destructors drop the sockets).
    }
    ASSERT_TRUE(ConnectionsFallTo(connections_before));
    EXPECT_TRUE(chat());
    // The server trims its heap within 100 ms of many connections going:
    // wait (with a deadline) for its memory to be back where the checks
    // below want it, and keep the last reading either way.
    int64_t want = baseline + kNearBaselineKib;
    if (!after_wave.empty()) want = std::min(want, after_wave.front() + kReuseKib);
    after_wave.push_back(RssFallsTo(want));
  }

  const int64_t after = after_wave.back();
  std::printf("server RSS: baseline %lld KiB, peak %lld KiB, after each wave",
              static_cast<long long>(baseline), static_cast<long long>(peak));
  for (int64_t kib : after_wave) std::printf(" %lld", static_cast<long long>(kib));
  std::printf(" KiB\n");
  // Near the baseline: most of what a wave took is given back (allocator
  // caches and Asio's descriptor pool keep a few MiB for the next wave)...
  EXPECT_LE(after - baseline, kNearBaselineKib) << "peak " << peak;
  // ...and later waves reuse it rather than pile up.
  EXPECT_LE(after - after_wave.front(), kReuseKib);
}

}  // namespace
}  // namespace mpim
