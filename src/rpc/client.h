// The client side of calls between roles: one Client per role it calls
// (a gateway holds one for `logic`), over the nodes discovery lists for
// that role. Per call it
//   - picks an endpoint: by a hash of CallOptions::key with the key
//     balancer (a conversation's sends go to one logic node), else with the
//     plain balancer (least loaded by calls in flight) (lb/registry.h);
//   - asks that endpoint's circuit breaker (policy/circuit_breaker.h); a
//     refused or unhealthy endpoint is passed over for another one;
//   - sends on one of the endpoint's channels (a small pool, connected at
//     once, health-checked with grpc.health.v1 Check, replaced when broken),
//     with the call's deadline;
//   - retries a call marked retryable (reads; sends, which are idempotent by
//     client_msg_id) that failed with `unavailable`, on another endpoint
//     where there is one, after a full-jitter back-off, while the deadline,
//     the attempts and the retry budget (policy/retry_budget.h) allow;
//   - counts calls, errors by code, latency and breaker state per method and
//     endpoint (mpim_rpc_client_*: docs/rpc.md).
//
// gRPC 1.51 has no public API for custom balancing policies, hence one
// channel pool per endpoint and the choice made here.
//
// Threading: Call() from any thread; it never blocks. `done` runs exactly
// once, on a gRPC thread (or on the calling thread when the call fails
// before it is sent): it must not block; post into the io loop. The
// destructor waits for calls in flight to finish (each has a deadline).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "discovery/discovery.h"
#include "rpc/lb/registry.h"
#include "rpc/policy/backoff.h"
#include "rpc/policy/circuit_breaker.h"
#include "rpc/policy/retry_budget.h"

namespace google::protobuf {
class Message;
}

namespace mpim::rpc {

struct ClientConfig {
  std::string role;                        // calls go to the nodes of this role
  std::string balancer = "least_loaded";   // calls without a key
  std::string key_balancer = "ring_hash";  // calls with a key
  lb::BalancerConfig lb;
  int64_t deadline_ms = 2000;  // a call's deadline when the caller gives none
  int max_attempts = 3;        // retryable calls: attempts in all, >= 1
  policy::BackoffConfig backoff{.base_ms = 10, .cap_ms = 200};  // full jitter between attempts
  policy::CircuitBreakerConfig breaker;                         // one breaker per endpoint
  policy::RetryBudgetConfig retry_budget;
  int channels_per_endpoint = 2;       // the pool: channels (HTTP/2 connections) per endpoint
  int64_t health_interval_ms = 1000;   // grpc.health.v1 Check per endpoint; 0: none
  int health_failures_to_replace = 3;  // failed checks in a row before the pool is rebuilt

  // kInvalidArgument naming the first bad field, OK otherwise.
  [[nodiscard]] core::Status Validate() const;
};

struct CallOptions {
  // The balancing key (a conversation id): calls with the same key go to
  // the same endpoint while the endpoint set is stable.
  std::optional<std::string> key;
  // Safe to send more than once: retried on `unavailable`.
  bool retryable = false;
  // When the whole call (every attempt) must be over; unset: now +
  // ClientConfig::deadline_ms. Pass the incoming request's deadline here so
  // it propagates into every call it causes.
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// What Endpoints() reports, for metrics, status pages and tests.
struct EndpointInfo {
  std::string name;
  std::string address;
  bool healthy = true;
  policy::CircuitBreaker::State breaker = policy::CircuitBreaker::State::kClosed;
  int64_t in_flight = 0;
  int64_t pool_rebuilds = 0;
};

class Client {
 public:
  using Done = std::function<void(core::Status)>;

  // kInvalidArgument for a bad config. `discovery`, `clock` and `metrics`
  // must outlive the client. The endpoints are the nodes of config.role that
  // discovery lists, now and after every change.
  static core::StatusOr<std::unique_ptr<Client>> Create(ClientConfig config,
                                                        discovery::Discovery& discovery,
                                                        core::Clock& clock,
                                                        core::MetricsRegistry& metrics);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Calls `method` ("/package.Service/Method") with `request`, filling
  // `response`; both must live until `done` has run. `unavailable` when no
  // endpoint of the role is known or every one refuses.
  void Call(std::string method, const google::protobuf::Message& request,
            google::protobuf::Message* response, CallOptions options, Done done);

  // Call() and wait: for start-up, tools and tests, never an io thread.
  core::Status CallAndWait(std::string method, const google::protobuf::Message& request,
                           google::protobuf::Message* response, CallOptions options = {});

  std::vector<EndpointInfo> Endpoints() const;

  // The endpoint a call with CallOptions::key = `key` goes to first (its
  // name), as the key balancer picks it now; empty when none is known.
  // Callers that coalesce calls per endpoint group by it.
  std::string Owner(const std::string& key) const;

  // What may change while the client runs (the config centre).
  struct LiveSettings {
    std::string balancer;
    std::string key_balancer;  // a hashing balancer (lb::IsHashing)
    int64_t deadline_ms = 2000;
    int max_attempts = 3;
    policy::CircuitBreakerConfig breaker;  // every endpoint's, and new ones'
  };
  // Validates, then applies to calls from now on (balancers are rebuilt
  // at once); invalid_argument naming the bad field leaves all as it was.
  core::Status Update(const LiveSettings& settings);

  struct Endpoint;  // defined in client.cc
  struct Snapshot;
  struct CallState;

 private:
  Client(ClientConfig config, discovery::Discovery& discovery, core::Clock& clock,
         core::MetricsRegistry& metrics);

  void OnNodes(const std::vector<discovery::Node>& nodes);
  void Rebalance();  // rebuilds the snapshot from endpoints_ (health changes)
  std::shared_ptr<const Snapshot> snapshot() const;
  void Attempt(const std::shared_ptr<CallState>& call);
  void Finish(const std::shared_ptr<CallState>& call, core::Status status);
  // Checks every endpoint's health (not on the first tick, at start-up),
  // then schedules the next tick.
  void HealthTick(bool cancelled);
  void CheckHealth();
  void TimerLoop();
  // Runs `task` on the timer thread at `steady_ms` (clock_.SteadyMs()), or
  // with `cancelled` true at once when the client is stopping.
  void At(int64_t steady_ms, std::function<void(bool cancelled)> task);

  const ClientConfig config_;
  discovery::Discovery& discovery_;
  core::Clock& clock_;
  std::unique_ptr<policy::RetryBudget> budget_;

  core::CounterFamily& calls_;
  core::CounterFamily& retries_;
  core::HistogramFamily& latency_;
  core::GaugeFamily& breaker_state_;

  std::atomic<int64_t> deadline_ms_;
  std::atomic<int> max_attempts_;
  mutable std::mutex mu_;  // guards endpoints_, snapshot_ and the balancer names
  std::string balancer_;
  std::string key_balancer_;
  policy::CircuitBreakerConfig breaker_;              // for endpoints made from now on
  std::vector<std::shared_ptr<Endpoint>> endpoints_;  // by name
  std::shared_ptr<const Snapshot> snapshot_;

  // Calls and health checks whose state (and with it a reference to a
  // channel) still exists; the destructor waits for none. Counted by
  // InFlight, the first member of that state, so the count drops only
  // after the channel reference is gone: the last reference to gRPC's
  // objects must not be dropped on one of gRPC's callback threads (gRPC
  // 1.51's callback completion queue would then shut itself down from its
  // own thread and free its queue twice).
  class InFlight;
  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  int64_t calls_in_flight_ = 0;

  int watch_id_ = 0;
  std::mutex timer_mu_;  // guards timers_ and stopping_
  std::condition_variable timer_cv_;
  std::multimap<int64_t, std::function<void(bool)>> timers_;
  bool stopping_ = false;
  std::atomic<bool> first_tick_{true};
  std::thread timer_thread_;
};

}  // namespace mpim::rpc
