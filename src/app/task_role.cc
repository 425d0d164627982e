// Role `task`: the durable job queue's worker (large-group fan-out), on the
// shared store; events go to the gateways through the bus. Logic nodes wake
// it on the bus when they queue a job; it also polls.
#include "app/node.h"
#include "app/parts.h"

namespace mpim::app {
namespace {

class TaskNode final : public Node {
 public:
  explicit TaskNode(core::Config config) : config_(std::move(config)) {}
  ~TaskNode() override { Stop(); }

  core::Status Start(discovery::Discovery& discovery) {
    auto joined = JoinCluster(config_, discovery, "task", config_.server.listen);
    if (!joined.ok()) return joined.status();
    config_ = std::move(*joined);
    auto store = OpenStoreParts(config_);
    if (!store.ok()) return store.status();
    store_ = std::move(*store);
    auto delivery = OpenDelivery(config_, static_cast<uint32_t>(config_.server.node_id),
                                 route::LastSeenInStore(store_.store->users()),
                                 /*take_inbox=*/false);
    if (!delivery.ok()) return delivery.status();
    delivery_ = std::move(*delivery);
    auto tasks_parts = MakeTasks(config_, *store_.store, delivery_);
    if (!tasks_parts.ok()) return tasks_parts.status();
    tasks_ = std::move(*tasks_parts);
    service::TaskWorker* tasks = tasks_.worker.get();
    delivery_.subscriptions.push_back(delivery_.bus->Subscribe(
        kJobsTopic, [tasks](std::string_view) { tasks->Wake(); }, [tasks] { tasks->Wake(); }));
    tasks_.worker->Start();
    return absl::OkStatus();
  }

  void CheckReady(core::DoneCallback done) override { store_.store->Ping(std::move(done)); }
  int64_t node_id() const override { return config_.server.node_id; }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    tasks_.Stop();  // the job in hand finishes; the rest wait in the queue
    delivery_.Close();
    if (store_.store) store_.store->Close();
  }

 private:
  core::Config config_;
  StoreParts store_;
  DeliveryParts delivery_;
  TaskParts tasks_;
  bool stopped_ = false;
};

}  // namespace

core::StatusOr<std::unique_ptr<Node>> StartTask(const core::Config& config,
                                                discovery::Discovery& discovery) {
  auto node = std::make_unique<TaskNode>(config);
  if (auto s = node->Start(discovery); !s.ok()) return s;
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace mpim::app
