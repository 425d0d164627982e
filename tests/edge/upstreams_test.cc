// edge::Upstreams: the gateways an edge knows, their health (real /readyz
// endpoints: HttpTestServer), and the balancer over the healthy ones.
#include "edge/upstreams.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <thread>

#include "core/ports.h"
#include "net/http_test_server.h"
#include "net/io_pool.h"

namespace mpim::edge {
namespace {

using Ms = std::chrono::milliseconds;
using testing::HttpTestAnswer;
using testing::HttpTestServer;

bool Eventually(const std::function<bool()>& done, Ms timeout = Ms(10000)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(Ms(10));
  }
  return true;
}

// A /readyz endpoint whose answer the test flips.
struct Gateway {
  Gateway() {
    server.SetHandler([this](const testing::HttpTestRequest&) {
      HttpTestAnswer a;
      a.status = ready.load() ? 200 : 503;
      return a;
    });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server.port()); }
  HttpTestServer server;
  std::atomic<bool> ready{true};
};

class UpstreamsTest : public ::testing::Test {
 protected:
  void SetUp() override { pool_.Start(); }
  void TearDown() override {
    if (upstreams_) upstreams_->Stop();
    pool_.Stop();
  }
  Upstreams& Make(std::string balancer, int64_t health_interval_ms = 50) {
    UpstreamOptions options;
    options.balancer = std::move(balancer);
    options.health_interval_ms = health_interval_ms;
    options.health_timeout_ms = 500;
    auto made = Upstreams::Make(pool_.At(0), options, metrics_);
    EXPECT_TRUE(made.ok()) << made.status();
    upstreams_ = std::move(*made);
    upstreams_->Start();
    return *upstreams_;
  }

  net::IoPool pool_{1};
  core::MetricsRegistry metrics_;
  std::unique_ptr<Upstreams> upstreams_;
};

TEST_F(UpstreamsTest, AnUnknownBalancerIsRefused) {
  net::IoPool pool(1);
  UpstreamOptions options;
  options.balancer = "nope";
  EXPECT_FALSE(Upstreams::Make(pool.At(0), options, metrics_).ok());
}

TEST_F(UpstreamsTest, NothingKnownNothingPicked) {
  Upstreams& u = Make("round_robin", 0);
  EXPECT_EQ(u.Pick(std::nullopt), nullptr);
  EXPECT_EQ(u.size(), 0u);
}

TEST_F(UpstreamsTest, AKeyStaysOnOneGatewayAndOnlyAFewMoveWhenOneJoins) {
  Upstreams& u = Make("ring_hash", 0);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.3:80"}});
  std::map<std::string, std::string> placed;
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "u" + std::to_string(i);
    auto first = u.Pick(key);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(u.Pick(key)->address, first->address);
    placed[key] = first->address;
  }
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.3:80"}, {"10.0.0.4:80"}});
  int moved = 0;
  for (const auto& [key, address] : placed) {
    const std::string now = u.Pick(key)->address;
    if (now != address) {
      ++moved;
      EXPECT_EQ(now, "10.0.0.4:80") << "a key moved between gateways that stayed";
    }
  }
  // About a quarter go to the newcomer (ring with 150 points each).
  EXPECT_GT(moved, 3000 / 4 / 2);
  EXPECT_LT(moved, 3000 / 4 * 3 / 2);
}

TEST_F(UpstreamsTest, AFailedConnectionTakesAGatewayOutUntilItsCheckPasses) {
  Gateway a, b;
  Upstreams& u = Make("round_robin");
  u.Update({{a.address()}, {b.address()}});
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 2; }));
  std::shared_ptr<Upstream> ua;
  for (int i = 0; i < 4 && !ua; ++i) {
    auto p = u.Pick(std::nullopt);
    if (p->address == a.address()) ua = p;
  }
  ASSERT_NE(ua, nullptr);
  a.ready = false;  // so the next checks keep it out
  u.ReportFailure(ua);
  EXPECT_EQ(u.healthy(), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(u.Pick(std::nullopt)->address, b.address());
  a.ready = true;
  EXPECT_TRUE(Eventually([&] { return u.healthy() == 2; }));
  bool a_again = false;
  for (int i = 0; i < 4; ++i) a_again = a_again || u.Pick(std::nullopt)->address == a.address();
  EXPECT_TRUE(a_again);
}

TEST_F(UpstreamsTest, AFailedHealthCheckTakesAGatewayOutAndAllDownStillPicks) {
  Gateway a, b;
  Upstreams& u = Make("round_robin");
  u.Update({{a.address()}, {b.address()}});
  b.ready = false;
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 1; }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(u.Pick(std::nullopt)->address, a.address());
  a.ready = false;
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 0; }));
  // None healthy: any of them rather than none.
  EXPECT_NE(u.Pick(std::nullopt), nullptr);
  // A gateway that is gone (nothing listens) fails its checks too.
  const uint16_t closed = core::FreeLoopbackPort();
  u.Update({{a.address()}, {"127.0.0.1:" + std::to_string(closed)}});
  a.ready = true;
  // A new gateway starts healthy: wait until the checks have put `a` back
  // and the closed one out.
  ASSERT_TRUE(Eventually([&] {
    if (u.healthy() != 1) return false;
    for (int i = 0; i < 4; ++i) {
      if (u.Pick(std::nullopt)->address != a.address()) return false;
    }
    return true;
  }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(u.Pick(std::nullopt)->address, a.address());
}

TEST_F(UpstreamsTest, AvoidSkipsTheGatewayARetryFailedOn) {
  Upstreams& u = Make("ring_hash", 0);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}});
  auto first = u.Pick(std::string("k"));
  auto again = u.Pick(std::string("k"), first.get());
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again->address, first->address);
}

}  // namespace
}  // namespace mpim::edge
