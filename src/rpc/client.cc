#include "rpc/client.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <algorithm>
#include <random>
#include <unordered_set>

#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "core/trace.h"
#include "grpc/health/v1/health.pb.h"
#include "rpc/lb/hash.h"
#include "rpc/status.h"

namespace mpim::rpc {

using Message = google::protobuf::Message;
using GenericStub = grpc::TemplatedGenericStub<Message, Message>;
using policy::CircuitBreaker;

namespace {

const core::Logger& Log() {
  static const core::Logger logger("rpc");
  return logger;
}

constexpr std::string_view kHealthCheck = "/grpc.health.v1.Health/Check";

std::chrono::system_clock::time_point WallDeadline(int64_t remaining_ms) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(std::max<int64_t>(0, remaining_ms));
}

}  // namespace

struct Client::Endpoint {
  std::string name;
  std::string address;
  std::unique_ptr<CircuitBreaker> breaker;
  std::atomic<int64_t> in_flight{0};
  std::atomic<bool> healthy{true};
  std::atomic<int> failed_checks{0};
  std::atomic<int64_t> rebuilds{0};
  std::atomic<uint64_t> next_channel{0};

  mutable std::mutex pool_mu;  // guards pool
  std::vector<std::shared_ptr<grpc::Channel>> pool;

  // A fresh pool of `size` channels, each its own HTTP/2 connection (a
  // local subchannel pool, so channels to one address do not share one),
  // asked to connect at once.
  void BuildPool(int size) {
    std::vector<std::shared_ptr<grpc::Channel>> fresh;
    for (int i = 0; i < size; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      // A peer that restarts is reconnected within a second, not gRPC's
      // default back-off of up to two minutes.
      args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
      args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
      // A peer that vanishes without a FIN is noticed within 15 s even when
      // idle between health checks.
      args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
      args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
      auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      channel->GetState(/*try_to_connect=*/true);
      fresh.push_back(std::move(channel));
    }
    std::lock_guard lock(pool_mu);
    pool.swap(fresh);
  }

  std::shared_ptr<grpc::Channel> Channel() {
    std::lock_guard lock(pool_mu);
    return pool[next_channel.fetch_add(1, std::memory_order_relaxed) % pool.size()];
  }
};

// The endpoints calls may go to now, with the balancers over them; built
// again on every change of the node list or of an endpoint's health.
struct Client::Snapshot final : public lb::LoadView {
  std::vector<std::shared_ptr<Endpoint>> endpoints;
  std::unique_ptr<lb::Balancer> plain;
  std::unique_ptr<lb::Balancer> keyed;

  [[nodiscard]] int64_t InFlight(size_t index) const override {
    return endpoints[index]->in_flight.load(std::memory_order_relaxed);
  }
};

class Client::InFlight {
 public:
  explicit InFlight(Client* client) : client_(client) {
    std::lock_guard lock(client_->calls_mu_);
    ++client_->calls_in_flight_;
  }
  ~InFlight() {
    std::lock_guard lock(client_->calls_mu_);
    if (--client_->calls_in_flight_ == 0) client_->calls_cv_.notify_all();
  }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

 private:
  Client* const client_;
};

struct Client::CallState {
  explicit CallState(Client* client) : in_flight(client) {}
  InFlight in_flight;  // first: released after every other member
  std::string method;
  const Message* request = nullptr;
  Message* response = nullptr;
  CallOptions options;
  Done done;
  int64_t deadline_ms = 0;  // clock_.SteadyMs() by which every attempt is over
  int64_t started_ms = 0;
  int attempts = 0;
  std::string traceparent;                // the caller's trace, when recording
  std::unordered_set<std::string> tried;  // endpoint names
  core::Status last;
  // The attempt in flight.
  std::unique_ptr<grpc::ClientContext> context;
  std::shared_ptr<Endpoint> endpoint;
  std::shared_ptr<grpc::Channel> channel;
  CircuitBreaker::Permit permit;
};

core::Status ClientConfig::Validate() const {
  if (role.empty()) return absl::InvalidArgumentError("rpc client: role is empty");
  for (const std::string* name : {&balancer, &key_balancer}) {
    auto names = lb::BalancerNames();
    if (std::find(names.begin(), names.end(), *name) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat("rpc client: unknown balancer '", *name, "'"));
    }
  }
  if (core::Status s = lb.Validate(); !s.ok()) return s;
  if (deadline_ms < 1) return absl::InvalidArgumentError("rpc client: deadline_ms must be >= 1");
  if (max_attempts < 1 || max_attempts > 10) {
    return absl::InvalidArgumentError("rpc client: max_attempts must be in [1, 10]");
  }
  if (core::Status s = backoff.Validate(); !s.ok()) return s;
  if (core::Status s = breaker.Validate(); !s.ok()) return s;
  if (core::Status s = retry_budget.Validate(); !s.ok()) return s;
  if (channels_per_endpoint < 1 || channels_per_endpoint > 64) {
    return absl::InvalidArgumentError("rpc client: channels_per_endpoint must be in [1, 64]");
  }
  if (health_interval_ms < 0) {
    return absl::InvalidArgumentError("rpc client: health_interval_ms must be >= 0");
  }
  if (health_failures_to_replace < 1) {
    return absl::InvalidArgumentError("rpc client: health_failures_to_replace must be >= 1");
  }
  return absl::OkStatus();
}

core::StatusOr<std::unique_ptr<Client>> Client::Create(ClientConfig config,
                                                       discovery::Discovery& discovery,
                                                       core::Clock& clock,
                                                       core::MetricsRegistry& metrics) {
  if (core::Status valid = config.Validate(); !valid.ok()) return valid;
  auto budget = policy::RetryBudget::Create(config.retry_budget, clock);
  if (!budget.ok()) return budget.status();
  std::unique_ptr<Client> client(new Client(std::move(config), discovery, clock, metrics));
  client->budget_ = std::move(*budget);
  client->timer_thread_ = std::thread([c = client.get()] { c->TimerLoop(); });
  client->watch_id_ = discovery.Watch(
      [c = client.get()](const std::vector<discovery::Node>& nodes) { c->OnNodes(nodes); });
  if (client->config_.health_interval_ms > 0) client->HealthTick(false);
  return client;
}

Client::Client(ClientConfig config, discovery::Discovery& discovery, core::Clock& clock,
               core::MetricsRegistry& metrics)
    : config_(std::move(config)),
      discovery_(discovery),
      clock_(clock),
      calls_(metrics.Counter("mpim_rpc_client_calls_total",
                             "Attempts of calls to other roles by method, endpoint and code.",
                             {"role", "method", "endpoint", "code"})),
      retries_(metrics.Counter("mpim_rpc_client_retries_total",
                               "Retries of calls to other roles (after the first attempt).",
                               {"role", "method"})),
      latency_(metrics.Histogram(
          "mpim_rpc_client_latency_seconds",
          "Calls to other roles, first attempt to outcome, retries included.", {"role", "method"})),
      breaker_state_(metrics.Gauge("mpim_rpc_client_breaker_state",
                                   "Circuit breaker per endpoint: 0 closed, 1 open, 2 half-open.",
                                   {"role", "endpoint"})),
      deadline_ms_(config_.deadline_ms),
      max_attempts_(config_.max_attempts),
      balancer_(config_.balancer),
      key_balancer_(config_.key_balancer),
      breaker_(config_.breaker),
      snapshot_(std::make_shared<Snapshot>()) {}

Client::~Client() {
  discovery_.Unwatch(watch_id_);
  {
    std::lock_guard lock(timer_mu_);
    stopping_ = true;
  }
  timer_cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
  std::unique_lock lock(calls_mu_);
  calls_cv_.wait(lock, [this] { return calls_in_flight_ == 0; });
}

void Client::OnNodes(const std::vector<discovery::Node>& nodes) {
  std::vector<discovery::Node> mine = discovery::WithRole(nodes, config_.role);
  {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<Endpoint>> next;
    for (const discovery::Node& node : mine) {
      auto same = std::find_if(endpoints_.begin(), endpoints_.end(), [&](const auto& e) {
        return e->name == node.name && e->address == node.address;
      });
      if (same != endpoints_.end()) {
        next.push_back(*same);
        continue;
      }
      auto endpoint = std::make_shared<Endpoint>();
      endpoint->name = node.name;
      endpoint->address = node.address;
      core::Gauge& state = breaker_state_.With({config_.role, node.name});
      state.Set(0);
      auto breaker =
          CircuitBreaker::Create(breaker_, clock_,
                                 [&state, name = node.name, role = config_.role](
                                     CircuitBreaker::State from, CircuitBreaker::State to) {
                                   state.Set(static_cast<double>(to));
                                   Log().Info("circuit changed", {{"role", role},
                                                                  {"node", name},
                                                                  {"from", policy::StateName(from)},
                                                                  {"to", policy::StateName(to)}});
                                 });
      endpoint->breaker = std::move(*breaker);  // the config was validated
      endpoint->BuildPool(config_.channels_per_endpoint);
      next.push_back(std::move(endpoint));
    }
    endpoints_.swap(next);
  }
  Rebalance();
}

void Client::Rebalance() {
  std::lock_guard lock(mu_);
  auto snap = std::make_shared<Snapshot>();
  for (const auto& e : endpoints_) {
    if (e->healthy.load(std::memory_order_relaxed)) snap->endpoints.push_back(e);
  }
  // With none healthy, try them all rather than refuse every call.
  if (snap->endpoints.empty()) snap->endpoints = endpoints_;
  std::vector<lb::Endpoint> named;
  named.reserve(snap->endpoints.size());
  for (const auto& e : snap->endpoints) named.push_back({e->name, 1});
  // The names are unique (discovery keys nodes by name) and the config was
  // validated, so the balancers build.
  snap->plain = std::move(*lb::CreateBalancer(balancer_, named, config_.lb));
  snap->keyed = std::move(*lb::CreateBalancer(key_balancer_, named, config_.lb));
  snapshot_ = std::move(snap);
}

std::shared_ptr<const Client::Snapshot> Client::snapshot() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void Client::Call(std::string method, const Message& request, Message* response,
                  CallOptions options, Done done) {
  auto call = std::make_shared<CallState>(this);
  call->method = std::move(method);
  call->request = &request;
  call->response = response;
  call->done = std::move(done);
  call->started_ms = clock_.SteadyMs();
  if (const core::trace::SpanContext trace = core::trace::Current(); trace.recording()) {
    call->traceparent = trace.Traceparent();
  }
  if (options.deadline) {
    call->deadline_ms = call->started_ms + std::chrono::duration_cast<std::chrono::milliseconds>(
                                               *options.deadline - std::chrono::steady_clock::now())
                                               .count();
  } else {
    call->deadline_ms = call->started_ms + deadline_ms_.load(std::memory_order_relaxed);
  }
  call->options = std::move(options);
  budget_->RecordRequest();
  Attempt(call);
}

std::string Client::Owner(const std::string& key) const {
  std::shared_ptr<const Snapshot> snap = snapshot();
  if (snap->endpoints.empty()) return {};
  lb::PickContext pick{.has_key = true, .key_hash = lb::KeyHash(key), .load = snap.get()};
  return snap->endpoints[static_cast<size_t>(snap->keyed->Pick(pick))]->name;
}

void Client::Attempt(const std::shared_ptr<CallState>& call) {
  int64_t remaining = call->deadline_ms - clock_.SteadyMs();
  if (remaining <= 0) {
    Finish(call, call->attempts > 0
                     ? call->last
                     : absl::DeadlineExceededError("deadline passed before the call"));
    return;
  }
  std::shared_ptr<const Snapshot> snap = snapshot();
  if (snap->endpoints.empty()) {
    Finish(call, absl::UnavailableError(absl::StrCat("no ", config_.role, " node is known")));
    return;
  }
  // The balancer's choice first; only when it was tried already or its
  // breaker refuses, the others from the least loaded, endpoints this call
  // already tried last. The first whose breaker admits the call takes it.
  lb::PickContext pick{.has_key = call->options.key.has_value(),
                       .key_hash = call->options.key ? lb::KeyHash(*call->options.key) : 0,
                       .load = snap.get()};
  auto first = static_cast<size_t>((call->options.key ? snap->keyed : snap->plain)->Pick(pick));
  auto tried = [&](size_t i) { return call->tried.count(snap->endpoints[i]->name) > 0; };
  std::shared_ptr<Endpoint> endpoint;
  CircuitBreaker::Permit permit;
  auto admit = [&](size_t i) {
    permit = snap->endpoints[i]->breaker->Allow();
    if (permit) endpoint = snap->endpoints[i];
    return static_cast<bool>(permit);
  };
  bool first_tried = call->attempts > 0 && tried(first);
  if ((first_tried || !admit(first)) && snap->endpoints.size() > 1) {
    std::vector<size_t> order;
    if (first_tried) order.push_back(first);  // first among the tried ones
    size_t rest = order.size();
    for (size_t i = 0; i < snap->endpoints.size(); ++i) {
      if (i != first) order.push_back(i);
    }
    std::stable_sort(order.begin() + static_cast<std::ptrdiff_t>(rest), order.end(),
                     [&](size_t a, size_t b) { return snap->InFlight(a) < snap->InFlight(b); });
    std::stable_partition(order.begin(), order.end(), [&](size_t i) { return !tried(i); });
    for (size_t i : order) {
      if (admit(i)) break;
    }
  } else if (first_tried) {
    admit(first);
  }
  if (!endpoint) {
    Finish(call, absl::UnavailableError(
                     absl::StrCat("every ", config_.role, " node refuses calls (circuit open)")));
    return;
  }
  ++call->attempts;
  call->tried.insert(endpoint->name);
  call->endpoint = endpoint;
  call->permit = permit;
  call->channel = endpoint->Channel();
  call->context = std::make_unique<grpc::ClientContext>();
  call->context->set_deadline(WallDeadline(remaining));
  if (!call->traceparent.empty()) call->context->AddMetadata("traceparent", call->traceparent);
  endpoint->in_flight.fetch_add(1, std::memory_order_relaxed);
  GenericStub stub(call->channel);
  stub.UnaryCall(
      call->context.get(), call->method, grpc::StubOptions(), call->request, call->response,
      [this, call](grpc::Status status) {
        const std::shared_ptr<Endpoint>& e = call->endpoint;
        e->in_flight.fetch_sub(1, std::memory_order_relaxed);
        core::Status result = FromGrpc(status);
        // This client never cancels a call it still waits for: CANCELLED
        // comes from the other side (a server shutting down ends the calls
        // it has not answered) or the transport. The call did not happen
        // as far as the caller knows: unavailable, and retried as such.
        if (result.code() == absl::StatusCode::kCancelled) {
          result = absl::UnavailableError("call cancelled by " + e->name);
        }
        e->breaker->Record(call->permit, !policy::CountsAsEndpointFailure(result.code()));
        calls_.With({config_.role, call->method, e->name, CodeLabel(result.code())}).Inc();
        call->last = result;
        bool retry = !result.ok() && call->options.retryable &&
                     result.code() == absl::StatusCode::kUnavailable &&
                     call->attempts < max_attempts_.load(std::memory_order_relaxed);
        if (!retry) {
          Finish(call, std::move(result));
          return;
        }
        thread_local std::minstd_rand rng{std::random_device{}()};
        int64_t wait = policy::FullJitterBackoffMs(config_.backoff, call->attempts, rng);
        int64_t at = clock_.SteadyMs() + wait;
        if (at >= call->deadline_ms || !budget_->TryRetry()) {
          Finish(call, std::move(result));
          return;
        }
        retries_.With({config_.role, call->method}).Inc();
        At(at, [this, call](bool cancelled) {
          if (cancelled) {
            Finish(call, call->last);
          } else {
            Attempt(call);
          }
        });
      });
}

void Client::Finish(const std::shared_ptr<CallState>& call, core::Status status) {
  latency_.With({config_.role, call->method})
      .Observe(static_cast<double>(clock_.SteadyMs() - call->started_ms) / 1000.0);
  call->context.reset();
  Done done = std::move(call->done);
  done(std::move(status));
}

core::Status Client::CallAndWait(std::string method, const Message& request, Message* response,
                                 CallOptions options) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<core::Status> result;
  Call(std::move(method), request, response, std::move(options), [&](core::Status status) {
    std::lock_guard lock(mu);
    result = std::move(status);
    cv.notify_all();
  });
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return result.has_value(); });
  return *result;
}

void Client::HealthTick(bool cancelled) {
  if (cancelled) return;
  if (!first_tick_.exchange(false)) CheckHealth();
  At(clock_.SteadyMs() + config_.health_interval_ms, [this](bool c) { HealthTick(c); });
}

void Client::CheckHealth() {
  std::vector<std::shared_ptr<Endpoint>> endpoints;
  {
    std::lock_guard lock(mu_);
    endpoints = endpoints_;
  }
  for (const auto& endpoint : endpoints) {
    struct Check {
      Check(Client* client, std::shared_ptr<Endpoint> e)
          : in_flight(client), endpoint(std::move(e)) {}
      InFlight in_flight;  // first: released after every other member
      std::shared_ptr<Endpoint> endpoint;
      grpc::ClientContext context;
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
    };
    auto check = std::make_shared<Check>(this, endpoint);
    check->context.set_deadline(WallDeadline(std::min<int64_t>(config_.health_interval_ms, 1000)));
    GenericStub stub(endpoint->Channel());
    stub.UnaryCall(&check->context, std::string(kHealthCheck), grpc::StubOptions(), &check->request,
                   &check->response, [this, check](grpc::Status status) {
                     const std::shared_ptr<Endpoint>& endpoint = check->endpoint;
                     // A server without the health service counts as healthy.
                     bool serving =
                         (status.ok() && check->response.status() ==
                                             grpc::health::v1::HealthCheckResponse::SERVING) ||
                         status.error_code() == grpc::StatusCode::UNIMPLEMENTED;
                     bool was = endpoint->healthy.exchange(serving);
                     if (serving) {
                       endpoint->failed_checks.store(0);
                     } else {
                       int failed = endpoint->failed_checks.fetch_add(1) + 1;
                       if (failed % config_.health_failures_to_replace == 0) {
                         Log().Warn("health checks failing; channels replaced",
                                    {{"role", config_.role},
                                     {"node", endpoint->name},
                                     {"failed", failed},
                                     {"error", status.error_message()}});
                         endpoint->BuildPool(config_.channels_per_endpoint);
                         endpoint->rebuilds.fetch_add(1);
                       }
                     }
                     if (was != serving) {
                       Log().Info(serving ? "node healthy again" : "node unhealthy",
                                  {{"role", config_.role}, {"node", endpoint->name}});
                       Rebalance();
                     }
                   });
  }
}

void Client::At(int64_t steady_ms, std::function<void(bool)> task) {
  {
    std::lock_guard lock(timer_mu_);
    if (!stopping_) {
      timers_.emplace(steady_ms, std::move(task));
      timer_cv_.notify_all();
      return;
    }
  }
  task(true);
}

void Client::TimerLoop() {
  std::unique_lock lock(timer_mu_);
  while (true) {
    if (stopping_) {
      auto left = std::move(timers_);
      timers_.clear();
      lock.unlock();
      for (auto& [at, task] : left) task(true);
      return;
    }
    if (timers_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    int64_t wait = timers_.begin()->first - clock_.SteadyMs();
    if (wait > 0) {
      timer_cv_.wait_for(lock, std::chrono::milliseconds(wait));
      continue;
    }
    auto task = std::move(timers_.begin()->second);
    timers_.erase(timers_.begin());
    lock.unlock();
    task(false);
    lock.lock();
  }
}

core::Status Client::Update(const LiveSettings& settings) {
  ClientConfig check = config_;
  check.balancer = settings.balancer;
  check.key_balancer = settings.key_balancer;
  check.deadline_ms = settings.deadline_ms;
  check.max_attempts = settings.max_attempts;
  check.breaker = settings.breaker;
  if (core::Status s = check.Validate(); !s.ok()) return s;
  if (!lb::IsHashing(settings.key_balancer)) {
    return absl::InvalidArgumentError("rpc client: key_balancer '" + settings.key_balancer +
                                      "' does not hash keys");
  }
  deadline_ms_.store(settings.deadline_ms, std::memory_order_relaxed);
  max_attempts_.store(settings.max_attempts, std::memory_order_relaxed);
  bool rebuild = false;
  {
    std::lock_guard lock(mu_);
    rebuild = balancer_ != settings.balancer || key_balancer_ != settings.key_balancer;
    balancer_ = settings.balancer;
    key_balancer_ = settings.key_balancer;
    breaker_ = settings.breaker;
    // Each breaker keeps its state (an open one stays open until its period ends).
    for (const auto& e : endpoints_) (void)e->breaker->UpdateConfig(settings.breaker);
  }
  if (rebuild) Rebalance();
  return absl::OkStatus();
}

std::vector<EndpointInfo> Client::Endpoints() const {
  std::vector<std::shared_ptr<Endpoint>> endpoints;
  {
    std::lock_guard lock(mu_);
    endpoints = endpoints_;
  }
  std::vector<EndpointInfo> out;
  for (const auto& e : endpoints) {
    out.push_back({.name = e->name,
                   .address = e->address,
                   .healthy = e->healthy.load(),
                   .breaker = e->breaker->state(),
                   .in_flight = e->in_flight.load(),
                   .pool_rebuilds = e->rebuilds.load()});
  }
  return out;
}

}  // namespace mpim::rpc
