#include "app/all_in_one.h"

#include <thread>

#include "core/clock.h"
#include "core/logging.h"
#include "core/snowflake.h"
#include "core/worker_pool.h"
#include "gateway/local_deliverer.h"
#include "gateway/routes.h"
#include "gateway/session_registry.h"
#include "gateway/ws_session.h"
#include "cache/registry.h"
#include "route/registry.h"
#include "store/registry.h"
#include "service/auth/auth_service_impl.h"
#include "service/auth/token_keys.h"
#include "service/conversation/conversation_service_impl.h"
#include "service/fanout.h"
#include "service/friend/friend_service_impl.h"
#include "service/group/group_service_impl.h"
#include "service/group/member_cache.h"
#include "service/message/message_service_impl.h"
#include "service/search/indexer.h"
#include "service/task/fanout_job.h"
#include "service/task/task_worker.h"
#include "service/user/user_service_impl.h"

namespace mpim::app {
namespace {

// How long an ack may wait in memory: a crash re-delivers at most this much
// to a reconnecting session (clients dedup by seq).
constexpr std::chrono::milliseconds kCursorFlushInterval{200};

// The deliverer of config.bus.engine (core/engines.cc holds the names).
core::StatusOr<std::unique_ptr<service::Deliverer>> MakeDeliverer(const core::Config& config,
                                                                  route::RouteTable& routes,
                                                                  gateway::SessionRegistry& sessions) {
  if (config.bus.engine == "memory") {
    return std::make_unique<gateway::LocalDeliverer>(static_cast<uint32_t>(config.server.node_id),
                                                     routes, sessions);
  }
  return absl::InvalidArgumentError("bus.engine: unknown engine \"" + config.bus.engine + "\"");
}

}  // namespace

std::vector<std::string> DelivererEngines() { return {"memory"}; }

struct AllInOne::Parts {
  core::Config config;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<core::WorkerPool> hash_pool;
  std::unique_ptr<core::SnowflakeGenerator> ids;
  std::unique_ptr<service::auth::AuthServiceImpl> auth;
  std::unique_ptr<service::UserServiceImpl> users;
  std::unique_ptr<service::BlockCache> blocks;
  std::unique_ptr<service::FriendServiceImpl> friends;
  std::unique_ptr<route::RouteTable> routes;
  std::unique_ptr<gateway::SessionRegistry> sessions;
  std::unique_ptr<service::Deliverer> deliverer;
  std::unique_ptr<route::Presence> presence;
  std::unique_ptr<service::MemberCache> member_cache;
  std::unique_ptr<service::Fanout> fanout;
  std::unique_ptr<service::Indexer> indexer;
  std::unique_ptr<service::TaskWorker> tasks;
  std::unique_ptr<service::MessageServiceImpl> messages;
  std::unique_ptr<service::GroupServiceImpl> groups;
  std::unique_ptr<service::DeliveredCursors> cursors;
  std::unique_ptr<service::ConversationServiceImpl> conversations;
  std::unique_ptr<gateway::UnauthenticatedCap> unauthenticated;
  std::unique_ptr<gateway::GatewayContext> gateway;
};

AllInOne::AllInOne(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

AllInOne::~AllInOne() { Stop(); }

core::StatusOr<std::unique_ptr<AllInOne>> AllInOne::Start(const core::Config& config) {
  auto parts = std::make_unique<Parts>();
  parts->config = config;

  core::Clock& clock = core::SystemClock();
  auto store = store::OpenStore(config);
  if (!store.ok()) return store.status();
  parts->store = std::move(*store);

  auto ids = core::SnowflakeGenerator::Create(static_cast<int>(config.server.node_id));
  if (!ids.ok()) return ids.status();
  parts->ids = std::move(*ids);

  auto keys = service::auth::LoadTokenKeys(config.auth, config.server.data_dir);
  if (!keys.ok()) return keys.status();

  size_t hash_threads = config.auth.hash_threads > 0
                            ? static_cast<size_t>(config.auth.hash_threads)
                            : std::max(1u, std::thread::hardware_concurrency());
  parts->hash_pool = std::make_unique<core::WorkerPool>("hash", hash_threads);

  parts->auth = std::make_unique<service::auth::AuthServiceImpl>(
      config.auth, std::move(*keys), *parts->store, *parts->hash_pool, *parts->ids, clock);
  if (auto s = parts->auth->LoadRevocations(); !s.ok()) return s;
  int page_max = static_cast<int>(config.limits.page_max);

  // Delivery: who is connected where, and how events reach them. Presence
  // changes go to the followers through the deliverer (made just after).
  Parts* p = parts.get();
  auto routes = route::OpenRoutes(config, parts->store->users(),
                                  [p](const std::vector<route::ConnId>& followers, int64_t user,
                                      bool online, int64_t last_seen) {
                                    p->deliverer->Presence(followers, user, online, last_seen);
                                  });
  if (!routes.ok()) return routes.status();
  parts->routes = std::move(routes->routes);
  parts->presence = std::move(routes->presence);
  parts->sessions = std::make_unique<gateway::SessionRegistry>();
  auto deliverer_or = MakeDeliverer(config, *parts->routes, *parts->sessions);
  if (!deliverer_or.ok()) return deliverer_or.status();
  parts->deliverer = std::move(*deliverer_or);
  service::Deliverer* deliverer = parts->deliverer.get();
  parts->auth->SetRevocationListener([deliverer](int64_t user_id, int64_t session_id) {
    deliverer->Kick(user_id, session_id, "logout");
  });

  parts->users =
      std::make_unique<service::UserServiceImpl>(*parts->store, page_max, parts->presence.get());
  // Blocks as the send path sees them; the friend service invalidates.
  auto block_cache = cache::MakeCache<service::BlockPair, bool, service::BlockPairHash>(config);
  if (!block_cache.ok()) return block_cache.status();
  parts->blocks =
      std::make_unique<service::BlockCache>(parts->store->friends(), std::move(*block_cache));
  parts->friends = std::make_unique<service::FriendServiceImpl>(
      *parts->store, page_max, parts->presence.get(), parts->blocks.get());
  // Fan-out: inline for small groups, a durable job for large ones; the task
  // worker runs those jobs; the indexer feeds search off the send path.
  auto member_cache = cache::MakeCache<int64_t, service::MemberList>(config);
  if (!member_cache.ok()) return member_cache.status();
  parts->member_cache = std::make_unique<service::MemberCache>(
      *parts->store, config.groups.fanout_threshold, std::move(*member_cache));
  parts->fanout =
      std::make_unique<service::Fanout>(*parts->store, *parts->deliverer, *parts->member_cache);
  parts->tasks = std::make_unique<service::TaskWorker>(
      *parts->store, "node-" + std::to_string(config.server.node_id));
  parts->tasks->Register(
      service::Fanout::kJobKind,
      service::FanoutJobHandler(*parts->store, *parts->deliverer, config.groups.fanout_batch));
  service::TaskWorker* tasks = parts->tasks.get();
  parts->fanout->SetOnJob([tasks] { tasks->Wake(); });
  parts->indexer = std::make_unique<service::Indexer>(*parts->store);

  parts->messages = std::make_unique<service::MessageServiceImpl>(
      config.limits, config.messages, *parts->store, *parts->blocks, *parts->fanout,
      parts->indexer.get(), *parts->ids, clock);
  // Acks are kept in memory and written every kCursorFlushInterval.
  parts->cursors = std::make_unique<service::DeliveredCursors>(parts->store->conversations(),
                                                               kCursorFlushInterval);
  parts->conversations = std::make_unique<service::ConversationServiceImpl>(
      config.limits, *parts->store, *parts->deliverer, *parts->presence, *parts->fanout,
      *parts->cursors);
  parts->groups = std::make_unique<service::GroupServiceImpl>(
      config.limits, *parts->store, *parts->messages, *parts->deliverer, *parts->member_cache,
      parts->presence.get());
  parts->indexer->Start();
  parts->tasks->Start();
  parts->cursors->Start();
  parts->unauthenticated =
      std::make_unique<gateway::UnauthenticatedCap>(config.gateway.max_unauthenticated);
  parts->gateway.reset(new gateway::GatewayContext{
      *parts->auth, *parts->messages, *parts->conversations, *parts->presence, *parts->routes,
      *parts->sessions, config.gateway, page_max, parts->unauthenticated.get(),
      static_cast<uint32_t>(config.server.node_id), clock});
  return std::unique_ptr<AllInOne>(new AllInOne(std::move(parts)));
}

void AllInOne::AddRoutes(net::Router& router) {
  gateway::ApiContext api{*parts_->auth,
                          *parts_->users,
                          *parts_->friends,
                          static_cast<int>(parts_->config.limits.page_max),
                          parts_->conversations.get(),
                          parts_->messages.get(),
                          parts_->groups.get()};
  gateway::AddAuthRoutes(router, api);
  gateway::AddUserRoutes(router, api);
  gateway::AddConversationRoutes(router, api);
  gateway::AddGroupRoutes(router, api);
  gateway::AddMessageRoutes(router, api);
}

net::WsAcceptFn AllInOne::WebSocketAcceptor() {
  gateway::GatewayContext* ctx = parts_->gateway.get();
  return [ctx](std::shared_ptr<net::WsConnection> conn) {
    gateway::WsSession::Accept(*ctx, std::move(conn));
  };
}

void AllInOne::CheckReady(core::DoneCallback done) { parts_->store->Ping(std::move(done)); }

void AllInOne::Stop() {
  if (!parts_) return;
  // Everything that may still call the store goes first.
  if (parts_->tasks) parts_->tasks->Stop();
  if (parts_->cursors) parts_->cursors->Stop();  // writes the pending acks
  if (parts_->indexer) parts_->indexer->Stop();
  if (parts_->hash_pool) parts_->hash_pool->Shutdown();
  if (parts_->store) parts_->store->Close();
}

}  // namespace mpim::app
