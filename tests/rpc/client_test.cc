// The RPC client (src/rpc/client.h) against real gRPC servers
// (EchoServer) that answer, fail, stall or stop on cue: balancing, keys,
// deadlines, retries and their budget, the circuit breaker, health checks,
// nodes that leave and join, and its metrics.
#include "rpc/client.h"

#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rpc/echo_server.h"
#include "support/fakes/fake_discovery.h"
#include "support/metrics_text.h"
#include "testing/echo.pb.h"

namespace mpim::rpc {
namespace {

using testing::EchoServer;
using State = policy::CircuitBreaker::State;

constexpr char kEcho[] = "/mpim.testing.Echo/Echo";

class ClientTest : public ::testing::Test {
 protected:
  // `n` servers named logic-0.. and listed in discovery as role logic.
  void Serve(int n) {
    for (int i = 0; i < n; ++i) {
      servers_.push_back(std::make_unique<EchoServer>("logic-" + std::to_string(i)));
    }
    List();
  }

  // Lists every running server (and only those in `only`, when given).
  void List(std::vector<int> only = {}) {
    std::vector<discovery::Node> nodes;
    for (size_t i = 0; i < servers_.size(); ++i) {
      if (!only.empty() && std::find(only.begin(), only.end(), i) == only.end()) continue;
      nodes.push_back(
          {.name = servers_[i]->name(), .role = "logic", .address = servers_[i]->address()});
    }
    // A node of another role, never called.
    nodes.push_back({.name = "gateway-0", .role = "gateway", .address = "127.0.0.1:1"});
    discovery_.Set(nodes);
  }

  std::unique_ptr<Client> Make(ClientConfig config = {}) {
    config.role = "logic";
    auto client = Client::Create(config, discovery_, core::SystemClock(), metrics_);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // One Echo call; the answering server's name, or the error.
  core::StatusOr<std::string> Echo(Client& client, CallOptions options = {}) {
    testing::EchoRequest request;
    request.set_payload("hi");
    testing::EchoReply reply;
    core::Status status = client.CallAndWait(kEcho, request, &reply, std::move(options));
    if (!status.ok()) return status;
    EXPECT_EQ(reply.payload(), "hi");
    return reply.server();
  }

  std::map<std::string, int> Spread(Client& client, int calls, CallOptions options = {}) {
    std::map<std::string, int> by_server;
    for (int i = 0; i < calls; ++i) {
      auto answered = Echo(client, options);
      by_server[answered.ok() ? *answered : answered.status().ToString()]++;
    }
    return by_server;
  }

  State BreakerOf(Client& client, const std::string& name) {
    for (const EndpointInfo& e : client.Endpoints()) {
      if (e.name == name) return e.breaker;
    }
    ADD_FAILURE() << "no endpoint " << name;
    return State::kClosed;
  }

  // Health checks off and a breaker that trips after 5 failed calls and
  // stays open `open_ms`.
  static ClientConfig QuickBreaker(int64_t open_ms) {
    ClientConfig config{.health_interval_ms = 0};
    config.breaker.min_calls = 5;
    config.breaker.open_ms = open_ms;
    config.breaker.max_open_ms = std::max<int64_t>(open_ms, 30000);
    return config;
  }

  testing::FakeDiscovery discovery_;
  core::MetricsRegistry metrics_;
  std::vector<std::unique_ptr<EchoServer>> servers_;
};

TEST_F(ClientTest, CallsOnlyTheNodesOfItsRoleAndSpreadsOverThem) {
  Serve(3);
  auto client = Make();
  std::map<std::string, int> spread = Spread(*client, 300);
  ASSERT_EQ(spread.size(), 3U) << ::testing::PrintToString(spread);
  for (const auto& [server, n] : spread) EXPECT_GT(n, 50) << server;
  ASSERT_EQ(client->Endpoints().size(), 3U);
}

TEST_F(ClientTest, EachBalancerByNameServes) {
  Serve(2);
  for (std::string_view name : lb::BalancerNames()) {
    auto client = Make({.balancer = std::string(name), .key_balancer = std::string(name)});
    EXPECT_TRUE(Echo(*client).ok()) << name;
    EXPECT_TRUE(Echo(*client, {.key = "g:1"}).ok()) << name;
  }
  EXPECT_FALSE(Client::Create({.role = "logic", .balancer = "fastest"}, discovery_,
                              core::SystemClock(), metrics_)
                   .ok());
  EXPECT_FALSE(Client::Create({}, discovery_, core::SystemClock(), metrics_).ok());
}

TEST_F(ClientTest, AKeyGoesToOneNodeAndKeysSpread) {
  Serve(3);
  auto client = Make();
  std::map<std::string, std::string> home;
  for (int k = 0; k < 60; ++k) {
    std::string key = "g:" + std::to_string(k);
    auto first = Echo(*client, {.key = key});
    ASSERT_TRUE(first.ok()) << first.status();
    home[key] = *first;
    for (int again = 0; again < 3; ++again) EXPECT_EQ(*Echo(*client, {.key = key}), *first);
  }
  std::map<std::string, int> per_server;
  for (const auto& [key, server] : home) per_server[server]++;
  EXPECT_EQ(per_server.size(), 3U);

  // Another client (another gateway) places every key alike.
  auto other = Make();
  for (const auto& [key, server] : home) EXPECT_EQ(*Echo(*other, {.key = key}), server) << key;
}

TEST_F(ClientTest, NoNodeOfTheRoleIsUnavailable) {
  discovery_.Set({{.name = "gateway-0", .role = "gateway", .address = "127.0.0.1:1"}});
  auto client = Make();
  auto answered = Echo(*client);
  ASSERT_FALSE(answered.ok());
  EXPECT_EQ(answered.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(answered.status().message().find("no logic node"), std::string_view::npos);
}

TEST_F(ClientTest, ARetryableCallThatMeetsUnavailableIsSentToAnotherNode) {
  Serve(2);
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  ClientConfig config{.health_interval_ms = 0};
  config.breaker.min_calls = 1000000;  // the breaker would pass logic-0 by: keep it out
  auto client = Make(config);
  // Retryable: every call ends on the good node.
  std::map<std::string, int> spread = Spread(*client, 40, {.retryable = true});
  EXPECT_EQ(spread, (std::map<std::string, int>{{"logic-1", 40}}));
  EXPECT_GT(servers_[0]->calls(), 0);
  // Not retryable: the calls that meet the failing node fail.
  std::map<std::string, int> once = Spread(*client, 40);
  EXPECT_GT(once["logic-1"], 0);
  EXPECT_LT(once["logic-1"], 40) << ::testing::PrintToString(once);
}

TEST_F(ClientTest, OtherErrorsAreNotRetried) {
  Serve(2);
  servers_[0]->Fail(grpc::StatusCode::INVALID_ARGUMENT);
  servers_[1]->Fail(grpc::StatusCode::INVALID_ARGUMENT);
  auto client = Make();
  auto answered = Echo(*client, {.retryable = true});
  ASSERT_FALSE(answered.ok());
  EXPECT_EQ(answered.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(answered.status().message().find("injected"), std::string_view::npos);
  EXPECT_EQ(servers_[0]->calls() + servers_[1]->calls(), 1);
}

TEST_F(ClientTest, TheDeadlineBoundsEveryAttempt) {
  Serve(2);
  servers_[0]->Stall(5000);
  servers_[1]->Stall(5000);
  auto client = Make({.deadline_ms = 10000});
  auto started = std::chrono::steady_clock::now();
  auto answered =
      Echo(*client, {.retryable = true, .deadline = started + std::chrono::milliseconds(300)});
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_FALSE(answered.ok());
  EXPECT_EQ(answered.status().code(), absl::StatusCode::kDeadlineExceeded);
  // The caller's deadline, not the stall (5 s) nor the config's (10 s).
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  EXPECT_EQ(servers_[0]->calls() + servers_[1]->calls(), 1);

  // A deadline already past sends nothing.
  auto late = Echo(*client, {.deadline = std::chrono::steady_clock::now()});
  EXPECT_EQ(late.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(servers_[0]->calls() + servers_[1]->calls(), 1);
}

TEST_F(ClientTest, TheBreakerOpensOnAFailingNodeAndCallsPassItBy) {
  Serve(2);
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  auto client = Make(QuickBreaker(60000));
  // Keyed calls to the failing node's keys fail until its breaker opens...
  for (int i = 0; i < 40 && BreakerOf(*client, "logic-0") != State::kOpen; ++i) {
    (void)Echo(*client, {.key = "k" + std::to_string(i)});
  }
  ASSERT_EQ(BreakerOf(*client, "logic-0"), State::kOpen);
  EXPECT_EQ(BreakerOf(*client, "logic-1"), State::kClosed);
  // ... then every call, keyed or not, goes to the other node, and the
  // failing one sees no more calls.
  int64_t reached = servers_[0]->calls();
  for (int i = 0; i < 40; ++i) {
    auto answered = Echo(*client, {.key = "k" + std::to_string(i)});
    ASSERT_TRUE(answered.ok()) << answered.status();
    EXPECT_EQ(*answered, "logic-1");
  }
  EXPECT_EQ(servers_[0]->calls(), reached);
  std::string exposition = metrics_.Exposition();
  EXPECT_EQ(testing::SeriesValue(
                exposition, R"(mpim_rpc_client_breaker_state{role="logic",endpoint="logic-0"})"),
            1);
}

TEST_F(ClientTest, WithEveryBreakerOpenCallsFailFastWithoutBeingSent) {
  Serve(1);
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  auto client = Make(QuickBreaker(60000));
  for (int i = 0; i < 5; ++i) (void)Echo(*client);
  ASSERT_EQ(BreakerOf(*client, "logic-0"), State::kOpen);
  int64_t reached = servers_[0]->calls();
  auto answered = Echo(*client, {.retryable = true});
  EXPECT_EQ(answered.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(answered.status().message().find("circuit open"), std::string_view::npos);
  EXPECT_EQ(servers_[0]->calls(), reached);
}

TEST_F(ClientTest, TheBreakerClosesAgainWhenTheNodeRecovers) {
  Serve(1);
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  ClientConfig config = QuickBreaker(200);
  config.breaker.half_open_calls = 2;
  auto client = Make(config);
  for (int i = 0; i < 5; ++i) (void)Echo(*client);
  ASSERT_EQ(BreakerOf(*client, "logic-0"), State::kOpen);
  servers_[0]->Answer();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(Echo(*client).ok());
  EXPECT_TRUE(Echo(*client).ok());
  EXPECT_EQ(BreakerOf(*client, "logic-0"), State::kClosed);
}

TEST_F(ClientTest, TheRetryBudgetCapsRetriesWhenEveryNodeFails) {
  Serve(2);
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  servers_[1]->Fail(grpc::StatusCode::UNAVAILABLE);
  ClientConfig config{.max_attempts = 5, .health_interval_ms = 0};
  config.breaker.min_calls = 1000000;  // keep the breakers out of it
  config.retry_budget.ratio = 0.1;
  config.retry_budget.min_retries_per_sec = 0;
  config.backoff = {.base_ms = 1, .cap_ms = 1};
  auto client = Make(config);
  constexpr int kCalls = 200;
  for (int i = 0; i < kCalls; ++i) {
    EXPECT_EQ(Echo(*client, {.retryable = true}).status().code(), absl::StatusCode::kUnavailable);
  }
  // Without the budget 200 calls would make 1,000 attempts; with it, at
  // most 10% more than the first attempts.
  int64_t attempts = servers_[0]->calls() + servers_[1]->calls();
  EXPECT_GE(attempts, kCalls);
  EXPECT_LE(attempts, kCalls + kCalls / 10 + 1);
  std::string exposition = metrics_.Exposition();
  EXPECT_EQ(testing::SeriesValue(
                exposition, std::string(R"(mpim_rpc_client_retries_total{role="logic",method=")") +
                                kEcho + "\"}"),
            static_cast<double>(attempts - kCalls));
}

TEST_F(ClientTest, ANodeThatStopsIsPassedOverAndOneThatJoinsTakesCalls) {
  Serve(3);
  List({0, 1});
  auto client = Make({.health_interval_ms = 100});
  EXPECT_EQ(Spread(*client, 60).size(), 2U);

  // logic-0 stops: retryable calls all succeed on logic-1 at once, and the
  // health checks take logic-0 out of the balancer.
  servers_[0]->Stop();
  std::map<std::string, int> spread = Spread(*client, 60, {.retryable = true});
  EXPECT_EQ(spread, (std::map<std::string, int>{{"logic-1", 60}}));
  for (int i = 0; i < 100; ++i) {
    auto endpoints = client->Endpoints();
    if (!endpoints[0].healthy) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(client->Endpoints()[0].healthy);
  EXPECT_EQ(Spread(*client, 20), (std::map<std::string, int>{{"logic-1", 20}}));

  // logic-2 joins: it takes calls.
  List({0, 1, 2});
  EXPECT_EQ(Spread(*client, 100, {.retryable = true}).count("logic-2"), 1U);

  // logic-0 comes back on its port: healthy again and called again.
  servers_[0]->Start();
  for (int i = 0; i < 150 && !client->Endpoints()[0].healthy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(client->Endpoints()[0].healthy);
  // Retryable: the health check proved one channel of its pool; another may
  // still be reconnecting for a moment (seen once on a loaded box).
  spread = Spread(*client, 100, {.retryable = true});
  EXPECT_EQ(spread.size(), 3U) << ::testing::PrintToString(spread);
}

TEST_F(ClientTest, ANodeNotServingIsLeftOutAndItsChannelsReplacedAfterFailures) {
  Serve(2);
  auto client = Make({.health_interval_ms = 50, .health_failures_to_replace = 3});
  servers_[0]->SetServing(false);
  for (int i = 0; i < 100 && client->Endpoints()[0].pool_rebuilds == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(client->Endpoints()[0].healthy);
  EXPECT_GE(client->Endpoints()[0].pool_rebuilds, 1);
  EXPECT_EQ(Spread(*client, 30), (std::map<std::string, int>{{"logic-1", 30}}));
  servers_[0]->SetServing(true);
  for (int i = 0; i < 100 && !client->Endpoints()[0].healthy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(Spread(*client, 100).size(), 2U);
}

TEST_F(ClientTest, CountsAttemptsByCodeAndLatencyByMethod) {
  Serve(1);
  auto client = Make();
  ASSERT_TRUE(Echo(*client).ok());
  servers_[0]->Fail(grpc::StatusCode::NOT_FOUND);
  ASSERT_FALSE(Echo(*client).ok());
  std::string exposition = metrics_.Exposition();
  std::string labels =
      std::string(R"(role="logic",method=")") + kEcho + R"(",endpoint="logic-0",code=)";
  EXPECT_EQ(testing::SeriesValue(exposition, "mpim_rpc_client_calls_total{" + labels + "\"ok\"}"),
            1);
  EXPECT_EQ(
      testing::SeriesValue(exposition, "mpim_rpc_client_calls_total{" + labels + "\"not_found\"}"),
      1);
  EXPECT_EQ(testing::SeriesValue(
                exposition,
                std::string(R"(mpim_rpc_client_latency_seconds_count{role="logic",method=")") +
                    kEcho + "\"}"),
            2);
}

TEST_F(ClientTest, ManyCallsAtOnceFromManyThreadsAllComplete) {
  Serve(3);
  servers_[1]->Fail(grpc::StatusCode::UNAVAILABLE);
  auto client = Make();
  std::atomic<int> ok{0};
  std::atomic<int> done{0};
  constexpr int kThreads = 4;
  constexpr int kEach = 250;
  std::vector<testing::EchoRequest> requests(kThreads * kEach);
  std::vector<testing::EchoReply> replies(kThreads * kEach);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        int n = t * kEach + i;
        requests[n].set_payload("hi");
        client->Call(kEcho, requests[n], &replies[n],
                     {.key = n % 2 == 0 ? std::optional<std::string>("g:" + std::to_string(n))
                                        : std::nullopt,
                      .retryable = true},
                     [&](core::Status status) {
                       if (status.ok()) ok.fetch_add(1);
                       done.fetch_add(1);
                     });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < 500 && done.load() < kThreads * kEach; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(done.load(), kThreads * kEach);
  // Retries within the budget (20% + 10/s) carry most calls past the
  // failing node; what is left over fails, never hangs.
  EXPECT_GT(ok.load(), kThreads * kEach / 2);
  client.reset();  // waits for nothing: every call is done
}

// The configuration centre's path: balancers, deadline and attempts change
// while the client runs; a bad setting is refused whole.
TEST_F(ClientTest, LiveSettingsSwapTheBalancersAndAreValidatedFirst) {
  Serve(3);
  auto client = Make();
  ASSERT_TRUE(client);
  EXPECT_FALSE(client->Update({"round_robin", "round_robin", 2000, 3}).ok())
      << "a key balancer that does not hash";
  EXPECT_FALSE(client->Update({"nosuch", "ring_hash", 2000, 3}).ok());
  EXPECT_FALSE(client->Update({"round_robin", "ring_hash", 0, 3}).ok());
  EXPECT_FALSE(client->Update({"round_robin", "ring_hash", 2000, 0}).ok());
  ASSERT_TRUE(client->Update({"round_robin", "maglev", 2000, 3}).ok());
  // round_robin: each endpoint in turn.
  auto spread = Spread(*client, 30);
  ASSERT_EQ(spread.size(), 3u);
  for (const auto& [server, calls] : spread) EXPECT_EQ(calls, 10) << server;
  // Keyed calls still land on one endpoint.
  EXPECT_EQ(Spread(*client, 10, {.key = "g:1001"}).size(), 1u);

  // Breaker thresholds: refused when bad; applied to every endpoint's
  // breaker at once (one failure in one call trips it).
  policy::CircuitBreakerConfig bad;
  bad.error_rate = 0;
  EXPECT_FALSE(client->Update({"round_robin", "maglev", 2000, 1, bad}).ok());
  policy::CircuitBreakerConfig touchy;
  touchy.min_calls = 1;
  touchy.error_rate = 0.01;
  touchy.open_ms = 60000;
  touchy.max_open_ms = 60000;
  ASSERT_TRUE(client->Update({"round_robin", "maglev", 2000, 1, touchy}).ok());
  servers_[0]->Fail(grpc::StatusCode::UNAVAILABLE);
  Spread(*client, 6);
  bool open = false;
  for (const EndpointInfo& e : client->Endpoints()) {
    if (e.name == "logic-0") open = e.breaker == policy::CircuitBreaker::State::kOpen;
  }
  EXPECT_TRUE(open) << "the new thresholds did not apply to an existing endpoint";
}

}  // namespace
}  // namespace mpim::rpc
