#include "rpc/policy/circuit_breaker.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace mpim::rpc::policy {
namespace {

using State = CircuitBreaker::State;

CircuitBreakerConfig SmallConfig() {
  CircuitBreakerConfig config;
  config.window_ms = 10000;
  config.buckets = 10;
  config.min_calls = 10;
  config.error_rate = 0.5;
  config.open_ms = 1000;
  config.max_open_ms = 4000;
  config.half_open_calls = 2;
  return config;
}

class CircuitBreakerTest : public ::testing::Test {
 protected:
  std::unique_ptr<CircuitBreaker> Make(CircuitBreakerConfig config = SmallConfig(),
                                       CircuitBreaker::Listener listener = nullptr) {
    auto breaker = CircuitBreaker::Create(config, clock_, std::move(listener));
    EXPECT_TRUE(breaker.ok()) << breaker.status();
    return std::move(breaker).value();
  }

  // One call through the breaker; false when it was refused.
  static bool Call(CircuitBreaker& breaker, bool ok) {
    CircuitBreaker::Permit permit = breaker.Allow();
    if (!permit) return false;
    breaker.Record(permit, ok);
    return true;
  }

  // Trips a breaker made from SmallConfig() at the current time.
  static void Trip(CircuitBreaker& breaker) {
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(Call(breaker, false));
    ASSERT_EQ(breaker.state(), State::kOpen);
  }

  // Trips a breaker made from SmallConfig(), waits out the open period and
  // takes both probes.
  std::pair<CircuitBreaker::Permit, CircuitBreaker::Permit> TripAndProbe(CircuitBreaker& breaker) {
    Trip(breaker);
    clock_.AdvanceMs(1000);
    CircuitBreaker::Permit a = breaker.Allow();
    CircuitBreaker::Permit b = breaker.Allow();
    EXPECT_TRUE(a && b);
    return {a, b};
  }

  core::ManualClock clock_{0, 1000000};
};

TEST_F(CircuitBreakerTest, DoesNotTripBelowMinCallsWhateverTheErrorRate) {
  auto breaker = Make();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kClosed);  // 9 of 9 failed, but 9 < min_calls
  ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kOpen);
  EXPECT_EQ(breaker->trips(), 1);
}

TEST_F(CircuitBreakerTest, TripsExactlyAtTheErrorRate) {
  auto breaker = Make();
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(Call(*breaker, true));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kClosed);  // 5 / 11 < 0.5
  ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kOpen);  // 6 / 12 == 0.5
}

TEST_F(CircuitBreakerTest, SuccessesAloneNeverTrip) {
  auto breaker = Make();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(Call(*breaker, true));
  EXPECT_EQ(breaker->state(), State::kClosed);
  EXPECT_EQ(breaker->trips(), 0);
}

TEST_F(CircuitBreakerTest, RefusesWhileOpenThenLetsProbesThrough) {
  auto breaker = Make();
  Trip(*breaker);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(breaker->Allow());
  EXPECT_EQ(breaker->refused(), 5);
  clock_.AdvanceMs(999);
  EXPECT_FALSE(breaker->Allow());
  EXPECT_EQ(breaker->state(), State::kOpen);
  clock_.AdvanceMs(1);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
  CircuitBreaker::Permit a = breaker->Allow();
  CircuitBreaker::Permit b = breaker->Allow();
  EXPECT_TRUE(a);
  EXPECT_TRUE(b);
  EXPECT_FALSE(breaker->Allow());  // only half_open_calls probes
}

TEST_F(CircuitBreakerTest, ProbesThatSucceedCloseWithAnEmptyWindow) {
  auto breaker = Make();
  auto [a, b] = TripAndProbe(*breaker);
  breaker->Record(a, true);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);  // one success is not enough
  breaker->Record(b, true);
  EXPECT_EQ(breaker->state(), State::kClosed);
  // The failures that tripped it are forgotten: nine more do not trip it.
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, AFailedProbeReopensForLongerUpToTheCap) {
  auto breaker = Make();
  Trip(*breaker);
  clock_.AdvanceMs(1000);
  for (int64_t expected_open_ms : {2000, 4000, 4000}) {
    ASSERT_EQ(breaker->state(), State::kHalfOpen);
    CircuitBreaker::Permit probe = breaker->Allow();
    ASSERT_TRUE(probe);
    breaker->Record(probe, false);
    EXPECT_EQ(breaker->state(), State::kOpen);
    clock_.AdvanceMs(expected_open_ms - 1);
    EXPECT_EQ(breaker->state(), State::kOpen) << expected_open_ms;
    clock_.AdvanceMs(1);
    EXPECT_EQ(breaker->state(), State::kHalfOpen) << expected_open_ms;
  }
  EXPECT_EQ(breaker->trips(), 4);
}

TEST_F(CircuitBreakerTest, ClosingResetsTheOpenPeriod) {
  auto breaker = Make();
  Trip(*breaker);
  clock_.AdvanceMs(1000);
  CircuitBreaker::Permit probe = breaker->Allow();
  breaker->Record(probe, false);  // next open period: 2000
  clock_.AdvanceMs(2000);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Call(*breaker, true));
  ASSERT_EQ(breaker->state(), State::kClosed);
  Trip(*breaker);
  clock_.AdvanceMs(1000);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
}

TEST_F(CircuitBreakerTest, OldFailuresSlideOutOfTheWindow) {
  auto breaker = Make();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(*breaker, false));
  clock_.AdvanceMs(10000);  // the slice of those nine has left the window
  ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, FailuresStillInTheWindowCount) {
  auto breaker = Make();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(*breaker, false));
  clock_.AdvanceMs(9999);  // still the oldest slice of the window
  ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kOpen);
}

TEST_F(CircuitBreakerTest, OutcomesFromBeforeAChangeOfStateAreIgnored) {
  auto breaker = Make();
  // Admitted while closed; they end after the breaker tripped.
  CircuitBreaker::Permit slow_ok = breaker->Allow();
  CircuitBreaker::Permit slow_failed = breaker->Allow();
  ASSERT_TRUE(slow_ok && slow_failed);
  Trip(*breaker);
  clock_.AdvanceMs(1000);
  ASSERT_EQ(breaker->state(), State::kHalfOpen);
  breaker->Record(slow_ok, true);       // not a probe: must not count towards closing
  breaker->Record(slow_failed, false);  // nor reopen it
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
  CircuitBreaker::Permit a = breaker->Allow();
  CircuitBreaker::Permit b = breaker->Allow();
  ASSERT_TRUE(a && b);
  breaker->Record(a, true);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
  breaker->Record(b, true);
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, ReleaseGivesAProbeSlotBack) {
  auto breaker = Make();
  auto [a, b] = TripAndProbe(*breaker);
  ASSERT_FALSE(breaker->Allow());
  breaker->Release(a);  // the caller cancelled it: no outcome
  CircuitBreaker::Permit c = breaker->Allow();
  EXPECT_TRUE(c);
  EXPECT_FALSE(breaker->Allow());
  breaker->Record(b, true);
  breaker->Record(c, true);
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST_F(CircuitBreakerTest, TheListenerSeesEveryChangeInOrder) {
  std::vector<std::pair<State, State>> seen;
  auto breaker = Make(SmallConfig(), [&](State from, State to) { seen.emplace_back(from, to); });
  Trip(*breaker);
  clock_.AdvanceMs(1000);
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Call(*breaker, true));
  std::vector<std::pair<State, State>> want = {{State::kClosed, State::kOpen},
                                               {State::kOpen, State::kHalfOpen},
                                               {State::kHalfOpen, State::kClosed}};
  EXPECT_EQ(seen, want);
  EXPECT_EQ(StateName(State::kHalfOpen), "half_open");
}

TEST_F(CircuitBreakerTest, BadConfigsAreRefusedWithTheFieldNamed) {
  struct Case {
    std::string field;
    void (*edit)(CircuitBreakerConfig&);
  };
  const Case cases[] = {
      {"buckets", [](CircuitBreakerConfig& c) { c.buckets = 0; }},
      {"window_ms", [](CircuitBreakerConfig& c) { c.window_ms = 0; }},
      {"window_ms", [](CircuitBreakerConfig& c) { c.window_ms = 10005; }},
      {"min_calls", [](CircuitBreakerConfig& c) { c.min_calls = 0; }},
      {"error_rate", [](CircuitBreakerConfig& c) { c.error_rate = 0; }},
      {"error_rate", [](CircuitBreakerConfig& c) { c.error_rate = 1.01; }},
      {"error_rate", [](CircuitBreakerConfig& c) { c.error_rate = std::nan(""); }},
      {"open_ms", [](CircuitBreakerConfig& c) { c.open_ms = 0; }},
      {"max_open_ms", [](CircuitBreakerConfig& c) { c.max_open_ms = 999; }},
      {"half_open_calls", [](CircuitBreakerConfig& c) { c.half_open_calls = 0; }},
  };
  EXPECT_TRUE(CircuitBreakerConfig{}.Validate().ok());
  CircuitBreakerConfig edge = SmallConfig();
  edge.error_rate = 1.0;
  EXPECT_TRUE(edge.Validate().ok());
  for (const Case& c : cases) {
    CircuitBreakerConfig config = SmallConfig();
    c.edit(config);
    core::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(std::string(status.message()).find(c.field), std::string::npos) << status;
    EXPECT_EQ(CircuitBreaker::Create(config, clock_).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(CircuitBreakerTest, UpdateConfigKeepsTheStateAndAppliesNewThresholds) {
  auto breaker = Make();
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Call(*breaker, false));
  CircuitBreakerConfig config = SmallConfig();
  config.min_calls = 6;
  ASSERT_TRUE(breaker->UpdateConfig(config).ok());
  ASSERT_TRUE(Call(*breaker, false));  // the five before still count
  EXPECT_EQ(breaker->state(), State::kOpen);

  config.error_rate = 2;  // bad: refused, nothing changes
  EXPECT_EQ(breaker->UpdateConfig(config).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(breaker->config().error_rate, 0.5);
  config.error_rate = 0.5;
  config.open_ms = 5000;
  config.max_open_ms = 5000;
  ASSERT_TRUE(breaker->UpdateConfig(config).ok());
  EXPECT_EQ(breaker->state(), State::kOpen);  // still open: the period already running ends as set
  clock_.AdvanceMs(1000);
  EXPECT_EQ(breaker->state(), State::kHalfOpen);
}

TEST_F(CircuitBreakerTest, ANewWindowShapeStartsTheWindowEmpty) {
  auto breaker = Make();
  for (int i = 0; i < 9; ++i) ASSERT_TRUE(Call(*breaker, false));
  CircuitBreakerConfig config = SmallConfig();
  config.window_ms = 5000;
  config.buckets = 5;
  ASSERT_TRUE(breaker->UpdateConfig(config).ok());
  ASSERT_TRUE(Call(*breaker, false));
  EXPECT_EQ(breaker->state(), State::kClosed);
}

TEST(CountsAsEndpointFailureTest, CountsWhatSaysThePeerIsSick) {
  for (absl::StatusCode code :
       {absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded,
        absl::StatusCode::kInternal, absl::StatusCode::kResourceExhausted}) {
    EXPECT_TRUE(CountsAsEndpointFailure(code)) << absl::StatusCodeToString(code);
  }
  for (absl::StatusCode code :
       {absl::StatusCode::kOk, absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
        absl::StatusCode::kPermissionDenied, absl::StatusCode::kAlreadyExists,
        absl::StatusCode::kUnauthenticated, absl::StatusCode::kCancelled}) {
    EXPECT_FALSE(CountsAsEndpointFailure(code)) << absl::StatusCodeToString(code);
  }
}

TEST_F(CircuitBreakerTest, ConcurrentCallersTripItOnceAndThenAreAllRefused) {
  CircuitBreakerConfig config = SmallConfig();
  config.min_calls = 100;
  auto breaker = Make(config);
  std::atomic<int> admitted{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        CircuitBreaker::Permit permit = breaker->Allow();
        if (!permit) {
          refused.fetch_add(1);
          continue;
        }
        admitted.fetch_add(1);
        breaker->Record(permit, false);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(breaker->trips(), 1);
  EXPECT_EQ(breaker->state(), State::kOpen);
  EXPECT_GE(admitted.load(), 100);
  EXPECT_EQ(admitted.load() + refused.load(), 8000);
  EXPECT_EQ(breaker->refused(), refused.load());
}

}  // namespace
}  // namespace mpim::rpc::policy
