// Role `gateway`: client connections only. The services it calls are gRPC
// clients of the logic role (service/remote/remote_services.h); events for
// its sessions arrive on its inbox topic on the bus; access tokens are
// checked here with the shared signing keys and the revoked sessions it
// learns from the logic role (at start) and the bus (since).
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "app/node.h"
#include "app/parts.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "rpc/client.h"
#include "service/remote/remote_services.h"

namespace mpim::app {
namespace {

const core::Logger& Log() {
  static const core::Logger log("gateway");
  return log;
}

rpc::policy::CircuitBreakerConfig BreakerConfig(const core::RpcConfig& rpc) {
  rpc::policy::CircuitBreakerConfig b;
  b.window_ms = rpc.breaker_window_ms;
  b.min_calls = rpc.breaker_min_calls;
  b.error_rate = static_cast<double>(rpc.breaker_error_percent) / 100.0;
  b.open_ms = rpc.breaker_open_ms;
  b.max_open_ms = rpc.breaker_max_open_ms;
  return b;
}

rpc::ClientConfig LogicClientConfig(const core::Config& config) {
  rpc::ClientConfig c;
  c.role = "logic";
  c.balancer = config.rpc.balancer;
  c.key_balancer = config.rpc.key_balancer;
  c.deadline_ms = config.rpc.deadline_ms;
  c.max_attempts = static_cast<int>(config.rpc.max_attempts);
  c.breaker = BreakerConfig(config.rpc);
  c.channels_per_endpoint = static_cast<int>(config.rpc.channels_per_endpoint);
  c.health_interval_ms = config.rpc.health_interval_ms;
  return c;
}

class GatewayNode final : public Node {
 public:
  explicit GatewayNode(core::Config config) : config_(std::move(config)) {}
  ~GatewayNode() override { Stop(); }

  core::Status Start(discovery::Discovery& discovery) {
    auto joined = JoinCluster(config_, discovery, "gateway", config_.server.listen);
    if (!joined.ok()) return joined.status();
    config_ = std::move(*joined);
    const auto node = static_cast<uint32_t>(config_.server.node_id);

    auto client = rpc::Client::Create(LogicClientConfig(config_), discovery, core::SystemClock(),
                                      core::DefaultRegistry());
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    auto keys = service::auth::LoadTokenKeys(config_.auth, config_.server.data_dir);
    if (!keys.ok()) return keys.status();
    auth_ = std::make_unique<service::remote::RemoteAuthService>(*client_, config_.auth, *keys,
                                                                 core::SystemClock());
    users_ = std::make_unique<service::remote::RemoteUserService>(*client_);
    friends_ = std::make_unique<service::remote::RemoteFriendService>(*client_);
    groups_ = std::make_unique<service::remote::RemoteGroupService>(*client_);
    devices_ = std::make_unique<service::remote::RemoteDeviceService>(*client_);
    admin_ = std::make_unique<service::remote::RemoteAdminService>(*client_);
    service::remote::Coalescing coalescing{
        .max_items = static_cast<size_t>(config_.rpc.batch_max_items),
        .max_in_flight = static_cast<size_t>(config_.rpc.batch_max_in_flight),
        .ack_linger = std::chrono::milliseconds(config_.rpc.ack_linger_ms)};
    conversations_ =
        std::make_unique<service::remote::RemoteConversationService>(*client_, coalescing);
    messages_ = std::make_unique<service::remote::RemoteMessageService>(*client_, coalescing);

    auto delivery = OpenDelivery(config_, node, service::remote::RemoteLastSeen(*client_),
                                 /*take_inbox=*/true);
    if (!delivery.ok()) return delivery.status();
    delivery_ = std::move(*delivery);
    service::remote::RemoteAuthService* auth = auth_.get();
    delivery_.subscriptions.push_back(SubscribeRevocations(
        *delivery_.bus, [auth](int64_t session_id) { auth->NoteRevoked(session_id); },
        [this] { ReloadRevocations(); }));
    // The sessions revoked before this gateway started: from a logic node,
    // in the background (the gateway is not ready until it has them).
    ReloadRevocations();

    front_ = std::make_unique<ClientFront>(
        config_,
        gateway::ApiContext{*auth_, *users_, *friends_, static_cast<int>(config_.limits.page_max),
                            conversations_.get(), messages_.get(), groups_.get(), devices_.get(),
                            admin_.get()},
        delivery_, node);
    return absl::OkStatus();
  }

  void AddRoutes(net::Router& router) override { front_->AddRoutes(router); }
  net::WsAcceptFn WebSocketAcceptor() override { return front_->WebSocketAcceptor(); }
  int64_t node_id() const override { return config_.server.node_id; }

  void ApplyLive(const core::Config& now) override {
    core::Status s =
        client_->Update({now.rpc.balancer, now.rpc.key_balancer, now.rpc.deadline_ms,
                         static_cast<int>(now.rpc.max_attempts), BreakerConfig(now.rpc)});
    if (!s.ok()) Log().Warn("rpc settings refused", {{"error", std::string(s.message())}});
  }

  void CheckReady(core::DoneCallback done) override {
    if (!revocations_loaded_.load()) {
      return std::move(done)(absl::UnavailableError("waiting for a logic node"));
    }
    for (const rpc::EndpointInfo& e : client_->Endpoints()) {
      if (e.healthy) return std::move(done)(absl::OkStatus());
    }
    std::move(done)(absl::UnavailableError("no logic node is reachable"));
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
    }
    cv_.notify_all();
    if (loader_.joinable()) loader_.join();
    // No more events from the bus or presence; then the services' client
    // (its destructor waits for the calls in flight).
    delivery_.Close();
  }

 private:
  // (Re)loads the revoked sessions on a thread of its own, retrying until a
  // logic node answers; one load at a time.
  void ReloadRevocations() {
    std::lock_guard lock(mu_);
    if (stopped_ || loading_) return;
    loading_ = true;
    if (loader_.joinable()) loader_.join();  // the previous load has finished
    loader_ = std::thread([this] {
      for (int attempt = 0;; ++attempt) {
        core::Status s = auth_->LoadRevocations();
        std::unique_lock lock(mu_);
        if (s.ok() || stopped_) {
          if (s.ok()) revocations_loaded_.store(true);
          loading_ = false;
          return;
        }
        if (attempt % 20 == 0) {
          Log().Warn("revoked sessions not loaded yet; retrying",
                     {{"error", std::string(s.message())}});
        }
        cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopped_; });
      }
    });
  }

  core::Config config_;
  std::unique_ptr<rpc::Client> client_;
  std::unique_ptr<service::remote::RemoteAuthService> auth_;
  std::unique_ptr<service::remote::RemoteUserService> users_;
  std::unique_ptr<service::remote::RemoteFriendService> friends_;
  std::unique_ptr<service::remote::RemoteDeviceService> devices_;
  std::unique_ptr<service::remote::RemoteAdminService> admin_;
  std::unique_ptr<service::remote::RemoteGroupService> groups_;
  std::unique_ptr<service::remote::RemoteConversationService> conversations_;
  std::unique_ptr<service::remote::RemoteMessageService> messages_;
  DeliveryParts delivery_;
  std::unique_ptr<ClientFront> front_;

  std::mutex mu_;  // guards stopped_, loading_, loader_
  std::condition_variable cv_;
  bool stopped_ = false;
  bool loading_ = false;
  std::thread loader_;
  std::atomic<bool> revocations_loaded_{false};
};

}  // namespace

core::StatusOr<std::unique_ptr<Node>> StartGateway(const core::Config& config,
                                                   discovery::Discovery& discovery) {
  auto node = std::make_unique<GatewayNode>(config);
  if (auto s = node->Start(discovery); !s.ok()) return s;
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace mpim::app
