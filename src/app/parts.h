// The building blocks every role's wiring shares (all_in_one.cc and
// roles.cc): the store with its caches, and delivery (route table,
// presence, sessions, the deliverer and the bus between nodes). Each Open*
// blocks (start-up only) and returns parts that own what they built.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "core/config.h"
#include "core/snowflake.h"
#include "core/status.h"
#include "core/worker_pool.h"
#include "gateway/local_deliverer.h"
#include "gateway/routes.h"
#include "gateway/session_registry.h"
#include "gateway/ws_session.h"
#include "net/router.h"
#include "net/websocket.h"
#include "redis/client.h"
#include "route/registry.h"
#include "service/auth/auth_service_impl.h"
#include "service/conversation/conversation_service_impl.h"
#include "service/fanout.h"
#include "service/friend/friend_service_impl.h"
#include "service/group/group_service_impl.h"
#include "service/group/member_cache.h"
#include "service/message/message_service_impl.h"
#include "service/push/device_service_impl.h"
#include "service/push/push_planner.h"
#include "service/push/registry.h"
#include "service/search/indexer.h"
#include "service/task/admin_service_impl.h"
#include "service/task/task_worker.h"
#include "service/user/user_service_impl.h"
#include "store/store.h"

namespace mpim::app {

// The inbox topic of node `node` on the bus: envelopes for its sessions.
std::string InboxTopic(uint32_t node);
// Revoked sessions, published by the node that revoked them ("<user> <session>").
inline constexpr const char* kRevocationsTopic = "revocations";
// A fan-out job was queued: task nodes look for jobs at once (payload empty).
inline constexpr const char* kJobsTopic = "jobs";

struct StoreParts {
  std::unique_ptr<redis::Client> cache_redis;  // cache engine redis; outlives the caches
  std::unique_ptr<store::Store> store;         // with caches in front (cached_store.h)
};

// Opens store.engine (migrating it), puts the caches of cache.engine in
// front, and starts warming them up in the background.
core::StatusOr<StoreParts> OpenStoreParts(const core::Config& config);

struct DeliveryParts {
  std::unique_ptr<bus::Bus> bus;  // bus.engine; null for memory (direct calls)
  route::RouteParts route_parts;  // the route table and presence
  std::unique_ptr<gateway::SessionRegistry> sessions;
  std::unique_ptr<gateway::LocalDeliverer> deliverer;
  // Bus subscriptions; end before the deliverer (Close()).
  std::vector<std::unique_ptr<bus::Handle>> subscriptions;

  // Ends the subscriptions, then the route engine (what calls into the
  // deliverer from other threads). Idempotent.
  void Close();
};

// Route table, presence and deliverer of node `node` (presence changes go
// to the followers through the deliverer). With a bus (bus.engine not
// memory), events for another node's sessions go to its inbox topic and,
// if `take_inbox`, this node's inbox is delivered to its sessions.
core::StatusOr<DeliveryParts> OpenDelivery(const core::Config& config, uint32_t node,
                                           route::Presence::LastSeenSink last_seen,
                                           bool take_inbox);

// Publishes a revocation for the other nodes (no-op without a bus).
void PublishRevocation(bus::Bus* bus, int64_t user_id, int64_t session_id);

// Calls `on_revoked(session_id)` for each revocation another node
// publishes, and `on_missed` when some may have been lost.
std::unique_ptr<bus::Handle> SubscribeRevocations(bus::Bus& bus,
                                                  std::function<void(int64_t)> on_revoked,
                                                  std::function<void()> on_missed);

// The logic services on a store (roles `all` and `logic`): accounts,
// users, friends, groups, conversations, the message pipeline, fan-out
// and the search indexer.
struct LogicParts {
  std::unique_ptr<core::WorkerPool> hash_pool;
  std::unique_ptr<core::SnowflakeGenerator> ids;
  std::unique_ptr<service::auth::AuthServiceImpl> auth;
  std::unique_ptr<service::UserServiceImpl> users;
  std::unique_ptr<service::BlockCache> blocks;
  std::unique_ptr<service::FriendServiceImpl> friends;
  std::unique_ptr<service::MemberCache> member_cache;
  std::unique_ptr<service::Fanout> fanout;
  std::unique_ptr<service::Indexer> indexer;
  std::unique_ptr<service::MessageServiceImpl> messages;
  std::unique_ptr<service::GroupServiceImpl> groups;
  std::unique_ptr<service::DeliveredCursors> cursors;
  std::unique_ptr<service::ConversationServiceImpl> conversations;
  std::unique_ptr<service::DeviceServiceImpl> devices;
  std::unique_ptr<service::AdminServiceImpl> admin;
  std::unique_ptr<service::push::PushPlanner> push_planner;  // null: no provider configured

  // Writes the pending acks and the index, stops the hashing pool. Idempotent.
  void Stop();
  // The run-time settings these services read (send and login limits).
  void ApplyLive(const core::Config& now);
};

// Builds and starts the logic services on `store` and `delivery` (both
// must outlive them), with snowflake node id config.server.node_id. A
// revoked session is kicked through the deliverer and published on the bus.
// The caller sets fanout->SetOnJob (who runs the fan-out jobs).
core::StatusOr<LogicParts> OpenLogic(const core::Config& config, StoreParts& store,
                                     DeliveryParts& delivery);

// The task worker with every job handler (fan-out and push jobs), and the
// push providers it sends through (docs/push.md).
struct TaskParts {
  std::unique_ptr<service::push::Providers> providers;
  std::unique_ptr<service::push::PushPlanner> planner;  // the fan-out job's pages
  std::unique_ptr<service::TaskWorker> worker;

  // Finishes the jobs in hand, then closes the providers. Idempotent.
  void Stop();
};
core::StatusOr<TaskParts> MakeTasks(const core::Config& config, store::Store& store,
                                    DeliveryParts& delivery);

// The client protocol (roles `all` and `gateway`): the REST API and the
// WebSocket sessions, on whichever services (local or remote) it is given.
class ClientFront {
 public:
  ClientFront(const core::Config& config, gateway::ApiContext api, DeliveryParts& delivery,
              uint32_t node);
  void AddRoutes(net::Router& router);
  net::WsAcceptFn WebSocketAcceptor();

 private:
  gateway::ApiContext api_;
  std::string admin_key_;
  std::unique_ptr<gateway::UnauthenticatedCap> unauthenticated_;
  std::unique_ptr<gateway::GatewayContext> context_;
};

}  // namespace mpim::app
