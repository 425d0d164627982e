// Role `logic`: the services on the shared store, served over gRPC to the
// gateways (service/remote/logic_server.h). Events for users go to the
// gateways holding their connections through the bus; fan-out jobs go to
// the task role through the store's job queue (woken on the bus).
#include "app/node.h"
#include "app/parts.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "rpc/server.h"
#include "service/remote/logic_server.h"

namespace mpim::app {
namespace {

class LogicNode final : public Node {
 public:
  explicit LogicNode(core::Config config) : config_(std::move(config)) {}
  ~LogicNode() override { Stop(); }

  core::Status Start(discovery::Discovery& discovery) {
    rpc::ServerConfig server_config;
    server_config.listen = config_.rpc.listen;
    server_config.in_flight.max_in_flight = config_.rpc.max_in_flight;
    if (config_.rpc.rate_per_sec > 0) {
      server_config.rate = rpc::policy::RateLimiterConfig{
          .rate_per_sec = static_cast<double>(config_.rpc.rate_per_sec),
          .burst = config_.rpc.rate_per_sec};
    }
    auto server = rpc::Server::Create(server_config, core::SystemClock(), core::DefaultRegistry());
    if (!server.ok()) return server.status();
    server_ = std::move(*server);
    // Calls answer `unavailable` until the services are built (below).
    handlers_ = std::make_unique<service::remote::LogicServer>(*server_);
    if (auto s = server_->Start(); !s.ok()) return s;

    auto store = OpenStoreParts(config_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    // Known to the gateways at the address just bound; the node id comes
    // with the registration.
    auto joined = JoinCluster(config_, discovery, "logic", server_->address());
    if (!joined.ok()) return joined.status();
    config_ = std::move(*joined);

    auto delivery = OpenDelivery(config_, static_cast<uint32_t>(config_.server.node_id),
                                 route::LastSeenInStore(store_.store->users()),
                                 /*take_inbox=*/false);
    if (!delivery.ok()) return delivery.status();
    delivery_ = std::move(*delivery);
    auto logic = OpenLogic(config_, store_, delivery_);
    if (!logic.ok()) return logic.status();
    logic_ = std::move(*logic);
    // Large groups' fan-out jobs run on the task role: wake it.
    bus::Bus* bus = delivery_.bus.get();
    logic_.fanout->SetOnJob([bus] { bus->Publish(kJobsTopic, "", nullptr); });
    logic_.admin->SetOnJob([bus] { bus->Publish(kJobsTopic, "", nullptr); });

    handlers_->SetServices({.auth = logic_.auth.get(),
                            .users = logic_.users.get(),
                            .devices = logic_.devices.get(),
                            .admin = logic_.admin.get(),
                            .friends = logic_.friends.get(),
                            .groups = logic_.groups.get(),
                            .conversations = logic_.conversations.get(),
                            .messages = logic_.messages.get(),
                            .store = store_.store.get()});
    static const core::Logger log("logic");
    log.Info("serving the logic API",
             {{"rpc", server_->address()}, {"node_id", config_.server.node_id}});
    return absl::OkStatus();
  }

  void CheckReady(core::DoneCallback done) override { store_.store->Ping(std::move(done)); }
  void StartDrain() override {
    if (server_) server_->SetServing(false);
  }
  int64_t node_id() const override { return config_.server.node_id; }
  void ApplyLive(const core::Config& now) override { logic_.ApplyLive(now); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    // Calls in flight finish (the gateways have been told NOT_SERVING and
    // discovery no longer lists this node); new ones are refused.
    if (server_) server_->Shutdown(std::chrono::milliseconds(config_.server.drain_timeout_ms));
    logic_.Stop();
    delivery_.Close();
    if (store_.store) store_.store->Close();
  }

 private:
  core::Config config_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<service::remote::LogicServer> handlers_;
  StoreParts store_;
  DeliveryParts delivery_;
  LogicParts logic_;
  bool stopped_ = false;
};

}  // namespace

core::StatusOr<std::unique_ptr<Node>> StartLogic(const core::Config& config,
                                                 discovery::Discovery& discovery) {
  auto node = std::make_unique<LogicNode>(config);
  if (auto s = node->Start(discovery); !s.ok()) return s;
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace mpim::app
