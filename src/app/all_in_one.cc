#include "app/all_in_one.h"

#include <thread>

#include "absl/strings/numbers.h"
#include "core/clock.h"
#include "core/logging.h"
#include "core/snowflake.h"
#include "core/worker_pool.h"
#include "gateway/local_deliverer.h"
#include "gateway/routes.h"
#include "gateway/session_registry.h"
#include "gateway/ws_session.h"
#include "bus/registry.h"
#include "cache/cached_store.h"
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

// The inbox topic of node `node` on the bus: envelopes for its sessions.
std::string InboxTopic(uint32_t node) { return "node." + std::to_string(node); }

// Revoked sessions, published by the node that revoked them ("<user> <session>").
constexpr const char* kRevocationsTopic = "revocations";

}  // namespace

std::vector<std::string> DelivererEngines() { return bus::BusEngines(); }

struct AllInOne::Parts {
  core::Config config;
  std::unique_ptr<redis::Client> cache_redis;  // engine redis; outlives the caches
  std::unique_ptr<store::Store> store;              // with caches in front (cached_store.h)
  std::unique_ptr<core::WorkerPool> hash_pool;
  std::unique_ptr<core::SnowflakeGenerator> ids;
  std::unique_ptr<service::auth::AuthServiceImpl> auth;
  std::unique_ptr<service::UserServiceImpl> users;
  std::unique_ptr<service::BlockCache> blocks;
  std::unique_ptr<service::FriendServiceImpl> friends;
  std::unique_ptr<bus::Bus> bus;  // bus.engine; null for memory (direct calls)
  route::RouteParts route_parts;  // the route table and presence
  std::unique_ptr<gateway::SessionRegistry> sessions;
  std::unique_ptr<gateway::LocalDeliverer> deliverer;
  // This node's inbox and the revocations topic; end before the deliverer.
  std::vector<std::unique_ptr<bus::Handle>> subscriptions;
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
  // Caches: engine redis shares one client (its own thread) between them.
  auto cache_redis = cache::MakeRedisClient(config);
  if (!cache_redis.ok()) return cache_redis.status();
  parts->cache_redis = std::move(*cache_redis);
  // The store, with the reads every message makes (users, groups, group
  // members) cached in front of it (cache-aside, cache/cached_store.h).
  auto store = store::OpenStore(config);
  if (!store.ok()) return store.status();
  auto cached = cache::MakeCachedStore(std::move(*store), config, parts->cache_redis.get());
  if (!cached.ok()) return cached.status();
  parts->store = std::move(*cached);
  cache::WarmUpCaches(*parts->store, static_cast<int>(config.cache.warmup_groups),
                      [](core::StatusOr<size_t> entries) {
                        static const core::Logger log("cache");
                        if (entries.ok()) {
                          log.Info("caches warmed up", {{"entries", std::to_string(*entries)}});
                        } else {
                          log.Warn("cache warm-up failed",
                                   {{"error", std::string(entries.status().message())}});
                        }
                      });

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
  parts->route_parts = std::move(*routes);
  route::RouteTable& route_table = *parts->route_parts.routes;
  route::Presence& presence = *parts->route_parts.presence;
  parts->sessions = std::make_unique<gateway::SessionRegistry>();
  // One node delivers to its own sessions directly; in a cluster the events
  // for another node's sessions go to that node's inbox on the bus. Either
  // shared part without the other leaves other nodes' users unreached.
  if ((config.route.engine == "memory") != (config.bus.engine == "memory")) {
    static const core::Logger log("cluster");
    log.Warn("route.engine and bus.engine do not match: users on other nodes will not get "
             "live deliveries from this one (use route.engine=redis with a redis bus.engine)",
             {{"route.engine", config.route.engine}, {"bus.engine", config.bus.engine}});
  }
  const auto node = static_cast<uint32_t>(config.server.node_id);
  gateway::LocalDeliverer::Forward forward;
  if (config.bus.engine != "memory") {
    auto bus = bus::OpenBus(config);
    if (!bus.ok()) return bus.status();
    parts->bus = std::move(*bus);
    forward = [bus = parts->bus.get()](uint32_t to, std::string envelope,
                                       core::DoneCallback done) {
      bus->Publish(InboxTopic(to), std::move(envelope), std::move(done));
    };
  }
  parts->deliverer = std::make_unique<gateway::LocalDeliverer>(node, route_table, *parts->sessions,
                                                               std::move(forward));
  service::Deliverer* deliverer = parts->deliverer.get();
  bus::Bus* bus = parts->bus.get();
  parts->auth->SetRevocationListener([deliverer, bus](int64_t user_id, int64_t session_id) {
    deliverer->Kick(user_id, session_id, "logout");
    // The other nodes refuse the session's tokens from now on too.
    if (bus) {
      bus->Publish(kRevocationsTopic, std::to_string(user_id) + " " + std::to_string(session_id),
                   nullptr);
    }
  });
  if (bus) {
    gateway::LocalDeliverer* local = parts->deliverer.get();
    parts->subscriptions.push_back(bus->Subscribe(
        InboxTopic(node), [local](std::string_view envelope) { local->DeliverEnvelope(envelope); },
        [] {
          // Deliveries were missed: each session finds them by seq (the
          // next message of a conversation opens a gap that is filled from
          // the store; hello and sync find the rest).
          static const core::Logger log("bus");
          log.Warn("inbox deliveries may have been missed", {});
        }));
    service::auth::AuthServiceImpl* auth = parts->auth.get();
    core::WorkerPool* pool = parts->hash_pool.get();
    parts->subscriptions.push_back(bus->Subscribe(
        kRevocationsTopic,
        [auth](std::string_view payload) {
          size_t space = payload.find(' ');
          int64_t session_id = 0;
          if (space == std::string_view::npos ||
              !absl::SimpleAtoi(absl::string_view(payload.data() + space + 1, payload.size() - space - 1), &session_id)) {
            return;
          }
          auth->NoteRevoked(session_id);
        },
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

  parts->users =
      std::make_unique<service::UserServiceImpl>(*parts->store, page_max, &presence);
  // Blocks as the send path sees them; the friend service invalidates.
  auto block_cache = cache::MakeCache<service::BlockPair, bool, service::BlockPairHash>(
      config, {.name = "blocks", .redis = parts->cache_redis.get()});
  if (!block_cache.ok()) return block_cache.status();
  parts->blocks =
      std::make_unique<service::BlockCache>(parts->store->friends(), std::move(*block_cache));
  parts->friends = std::make_unique<service::FriendServiceImpl>(
      *parts->store, page_max, &presence, parts->blocks.get());
  // Fan-out: inline for small groups, a durable job for large ones; the task
  // worker runs those jobs; the indexer feeds search off the send path.
  auto member_cache = cache::MakeCache<int64_t, service::MemberList>(
      config, {.name = "members", .redis = parts->cache_redis.get()});
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
      config.limits, *parts->store, *parts->deliverer, presence, *parts->fanout,
      *parts->cursors);
  parts->groups = std::make_unique<service::GroupServiceImpl>(
      config.limits, *parts->store, *parts->messages, *parts->deliverer, *parts->member_cache,
      &presence);
  parts->indexer->Start();
  parts->tasks->Start();
  parts->cursors->Start();
  parts->unauthenticated =
      std::make_unique<gateway::UnauthenticatedCap>(config.gateway.max_unauthenticated);
  parts->gateway.reset(new gateway::GatewayContext{
      *parts->auth, *parts->messages, *parts->conversations, presence, route_table,
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
  // Then what calls into the deliverer from other threads: the bus's
  // handlers, and the route engine (presence events, lookups' answers).
  parts_->subscriptions.clear();
  parts_->route_parts = {};
  if (parts_->store) parts_->store->Close();
}

}  // namespace mpim::app
