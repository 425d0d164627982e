// Role `all`: every service in one process, connected by direct calls, on
// the engines the configuration names (store, cache, route table and
// presence, bus: each chosen by name through its registry).
#include "app/node.h"
#include "app/parts.h"
#include "bus/registry.h"
#include "core/logging.h"

namespace mpim::app {
namespace {

class AllInOne final : public Node {
 public:
  AllInOne(core::Config config) : config_(std::move(config)) {}
  ~AllInOne() override { Stop(); }

  core::Status Start() {
    auto store = OpenStoreParts(config_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    // Delivery: who is connected where, and how events reach them.
    auto delivery = OpenDelivery(config_, static_cast<uint32_t>(config_.server.node_id),
                                 route::LastSeenInStore(store_.store->users()),
                                 /*take_inbox=*/true);
    if (!delivery.ok()) return delivery.status();
    delivery_ = std::move(*delivery);
    auto logic = OpenLogic(config_, store_, delivery_);
    if (!logic.ok()) return logic.status();
    logic_ = std::move(*logic);
    // Sessions revoked on other nodes (when several `all` nodes share engines).
    if (bus::Bus* bus = delivery_.bus.get()) {
      service::auth::AuthServiceImpl* auth = logic_.auth.get();
      core::WorkerPool* pool = logic_.hash_pool.get();
      delivery_.subscriptions.push_back(SubscribeRevocations(
          *bus, [auth](int64_t session_id) { auth->NoteRevoked(session_id); },
          [auth, pool] {
            // Revocations may have been missed: read them again from the store.
            pool->Submit([auth] {
              if (auto s = auth->LoadRevocations(); !s.ok()) {
                static const core::Logger log("auth");
                log.Warn("revocations not reloaded", {{"error", std::string(s.message())}});
              }
            });
          }));
    }
    // This process runs the fan-out jobs it queues, at once.
    auto tasks_parts = MakeTasks(config_, *store_.store, delivery_);
    if (!tasks_parts.ok()) return tasks_parts.status();
    tasks_ = std::move(*tasks_parts);
    service::TaskWorker* tasks = tasks_.worker.get();
    logic_.fanout->SetOnJob([tasks] { tasks->Wake(); });
    logic_.admin->SetOnJob([tasks] { tasks->Wake(); });
    tasks_.worker->Start();
    front_ = std::make_unique<ClientFront>(
        config_,
        gateway::ApiContext{*logic_.auth, *logic_.users, *logic_.friends,
                            static_cast<int>(config_.limits.page_max), logic_.conversations.get(),
                            logic_.messages.get(), logic_.groups.get(), logic_.devices.get(),
                            logic_.admin.get()},
        delivery_, static_cast<uint32_t>(config_.server.node_id));
    return absl::OkStatus();
  }

  void AddRoutes(net::Router& router) override { front_->AddRoutes(router); }
  net::WsAcceptFn WebSocketAcceptor() override { return front_->WebSocketAcceptor(); }
  void CheckReady(core::DoneCallback done) override { store_.store->Ping(std::move(done)); }
  int64_t node_id() const override { return config_.server.node_id; }
  void ApplyLive(const core::Config& now) override { logic_.ApplyLive(now); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    // Everything that may still call the store goes first.
    tasks_.Stop();
    logic_.Stop();
    // Then what calls into the deliverer from other threads: the bus's
    // handlers, and the route engine (presence events, lookups' answers).
    delivery_.Close();
    if (store_.store) store_.store->Close();
  }

 private:
  const core::Config config_;
  StoreParts store_;
  DeliveryParts delivery_;
  LogicParts logic_;
  TaskParts tasks_;
  std::unique_ptr<ClientFront> front_;
  bool stopped_ = false;
};

}  // namespace

std::vector<std::string> DelivererEngines() { return bus::BusEngines(); }

core::StatusOr<std::unique_ptr<Node>> StartAllInOne(const core::Config& config,
                                                    discovery::Discovery& discovery) {
  auto joined = JoinCluster(config, discovery, "all", config.server.listen);
  if (!joined.ok()) return joined.status();
  auto node = std::make_unique<AllInOne>(std::move(*joined));
  if (auto s = node->Start(); !s.ok()) return s;
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace mpim::app
