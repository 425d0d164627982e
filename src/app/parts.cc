#include "app/parts.h"

#include <thread>

#include "absl/strings/numbers.h"
#include "bus/registry.h"
#include "cache/cached_store.h"
#include "cache/registry.h"
#include "core/logging.h"
#include "service/push/push_job.h"
#include "service/task/fanout_job.h"
#include "store/registry.h"

namespace mpim::app {

namespace {

// How long an ack may wait in memory: a crash re-delivers at most this much
// to a reconnecting session (clients dedup by seq).
constexpr std::chrono::milliseconds kCursorFlushInterval{200};

}  // namespace

std::string InboxTopic(uint32_t node) { return "node." + std::to_string(node); }

core::StatusOr<StoreParts> OpenStoreParts(const core::Config& config) {
  StoreParts parts;
  // Caches: engine redis shares one client (its own thread) between them.
  auto cache_redis = cache::MakeRedisClient(config);
  if (!cache_redis.ok()) return cache_redis.status();
  parts.cache_redis = std::move(*cache_redis);
  // The store, with the reads every message makes (users, groups, group
  // members) cached in front of it (cache-aside, cache/cached_store.h).
  auto store = store::OpenStore(config);
  if (!store.ok()) return store.status();
  auto cached = cache::MakeCachedStore(std::move(*store), config, parts.cache_redis.get());
  if (!cached.ok()) return cached.status();
  parts.store = std::move(*cached);
  cache::WarmUpCaches(
      *parts.store, static_cast<int>(config.cache.warmup_groups),
      [](core::StatusOr<size_t> entries) {
        static const core::Logger log("cache");
        if (entries.ok()) {
          log.Info("caches warmed up", {{"entries", std::to_string(*entries)}});
        } else {
          log.Warn("cache warm-up failed", {{"error", std::string(entries.status().message())}});
        }
      });
  return parts;
}

void DeliveryParts::Close() {
  subscriptions.clear();
  route_parts = {};
}

core::StatusOr<DeliveryParts> OpenDelivery(const core::Config& config, uint32_t node,
                                           route::Presence::LastSeenSink last_seen,
                                           bool take_inbox) {
  DeliveryParts parts;
  // The presence listener reaches the deliverer, made just after; the
  // deliverer lives on the heap, so its address survives the move out.
  auto deliverer_slot = std::make_shared<gateway::LocalDeliverer*>(nullptr);
  auto routes = route::OpenRoutes(config, std::move(last_seen),
                                  [deliverer_slot](const std::vector<route::ConnId>& followers,
                                                   int64_t user, bool online, int64_t seen) {
                                    if (*deliverer_slot)
                                      (*deliverer_slot)->Presence(followers, user, online, seen);
                                  });
  if (!routes.ok()) return routes.status();
  parts.route_parts = std::move(*routes);
  parts.sessions = std::make_unique<gateway::SessionRegistry>();
  // One node delivers to its own sessions directly; in a cluster the events
  // for another node's sessions go to that node's inbox on the bus. Either
  // shared part without the other leaves other nodes' users unreached.
  if ((config.route.engine == "memory") != (config.bus.engine == "memory")) {
    static const core::Logger log("cluster");
    log.Warn(
        "route.engine and bus.engine do not match: users on other nodes will not get "
        "live deliveries from this one (use route.engine=redis with a redis bus.engine)",
        {{"route.engine", config.route.engine}, {"bus.engine", config.bus.engine}});
  }
  gateway::LocalDeliverer::Forward forward;
  if (config.bus.engine != "memory") {
    auto bus = bus::OpenBus(config);
    if (!bus.ok()) return bus.status();
    parts.bus = std::move(*bus);
    forward = [bus = parts.bus.get()](uint32_t to, std::string envelope, core::DoneCallback done) {
      bus->Publish(InboxTopic(to), std::move(envelope), std::move(done));
    };
  }
  parts.deliverer = std::make_unique<gateway::LocalDeliverer>(node, *parts.route_parts.routes,
                                                              *parts.sessions, std::move(forward));
  *deliverer_slot = parts.deliverer.get();
  if (parts.bus && take_inbox) {
    gateway::LocalDeliverer* local = parts.deliverer.get();
    parts.subscriptions.push_back(parts.bus->Subscribe(
        InboxTopic(node), [local](std::string_view envelope) { local->DeliverEnvelope(envelope); },
        [local] {
          // Deliveries were missed: every session reads what it missed.
          static const core::Logger log("bus");
          log.Warn("inbox deliveries may have been missed; sessions resync", {});
          local->ResyncSessions();
        }));
    // Routes lost with Redis: deliveries looked up before they were
    // registered again missed this node's sessions.
    parts.route_parts.routes->OnRegisteredAgain([local] { local->ResyncSessions(); });
  }
  return parts;
}

void PublishRevocation(bus::Bus* bus, int64_t user_id, int64_t session_id) {
  if (!bus) return;
  bus->Publish(kRevocationsTopic, std::to_string(user_id) + " " + std::to_string(session_id),
               nullptr);
}

std::unique_ptr<bus::Handle> SubscribeRevocations(bus::Bus& bus,
                                                  std::function<void(int64_t)> on_revoked,
                                                  std::function<void()> on_missed) {
  return bus.Subscribe(
      kRevocationsTopic,
      [on_revoked = std::move(on_revoked)](std::string_view payload) {
        size_t space = payload.find(' ');
        int64_t session_id = 0;
        if (space == std::string_view::npos ||
            !absl::SimpleAtoi(
                absl::string_view(payload.data() + space + 1, payload.size() - space - 1),
                &session_id)) {
          return;
        }
        on_revoked(session_id);
      },
      std::move(on_missed));
}

void LogicParts::ApplyLive(const core::Config& now) {
  if (messages) messages->SetSendRate(now.limits.send_per_sec, now.limits.send_burst);
  if (auth) auth->SetLoginLimits(now.auth.login_per_min_user, now.auth.login_per_min_address);
}

void LogicParts::Stop() {
  if (cursors) cursors->Stop();  // writes the pending acks
  if (indexer) indexer->Stop();
  if (hash_pool) hash_pool->Shutdown();
}

core::StatusOr<LogicParts> OpenLogic(const core::Config& config, StoreParts& store_parts,
                                     DeliveryParts& delivery) {
  LogicParts parts;
  core::Clock& clock = core::SystemClock();
  store::Store& store = *store_parts.store;
  redis::Client* cache_redis = store_parts.cache_redis.get();
  route::Presence& presence = *delivery.route_parts.presence;
  service::Deliverer& deliverer = *delivery.deliverer;

  auto ids = core::SnowflakeGenerator::Create(static_cast<int>(config.server.node_id));
  if (!ids.ok()) return ids.status();
  parts.ids = std::move(*ids);

  auto keys = service::auth::LoadTokenKeys(config.auth, config.server.data_dir);
  if (!keys.ok()) return keys.status();
  size_t hash_threads = config.auth.hash_threads > 0
                            ? static_cast<size_t>(config.auth.hash_threads)
                            : std::max(1u, std::thread::hardware_concurrency());
  parts.hash_pool = std::make_unique<core::WorkerPool>("hash", hash_threads);
  parts.auth = std::make_unique<service::auth::AuthServiceImpl>(
      config.auth, std::move(*keys), store, *parts.hash_pool, *parts.ids, clock);
  if (auto s = parts.auth->LoadRevocations(); !s.ok()) return s;
  bus::Bus* bus = delivery.bus.get();
  parts.auth->SetRevocationListener([&deliverer, bus](int64_t user_id, int64_t session_id) {
    deliverer.Kick(user_id, session_id, "logout");
    // The other nodes refuse the session's tokens from now on too.
    PublishRevocation(bus, user_id, session_id);
  });

  int page_max = static_cast<int>(config.limits.page_max);
  parts.users = std::make_unique<service::UserServiceImpl>(store, page_max, &presence);
  // Blocks as the send path sees them; the friend service invalidates.
  auto block_cache = cache::MakeCache<service::BlockPair, bool, service::BlockPairHash>(
      config, {.name = "blocks", .redis = cache_redis, .strict = true});
  if (!block_cache.ok()) return block_cache.status();
  parts.blocks = std::make_unique<service::BlockCache>(store.friends(), std::move(*block_cache));
  parts.friends =
      std::make_unique<service::FriendServiceImpl>(store, page_max, &presence, parts.blocks.get());
  // Fan-out: inline for small groups, a durable job for large ones; the
  // indexer feeds search off the send path.
  auto member_cache = cache::MakeCache<int64_t, service::MemberList>(
      config, {.name = "members", .redis = cache_redis, .strict = true});
  if (!member_cache.ok()) return member_cache.status();
  parts.member_cache = std::make_unique<service::MemberCache>(store, config.groups.fanout_threshold,
                                                              std::move(*member_cache));
  parts.fanout = std::make_unique<service::Fanout>(store, deliverer, *parts.member_cache);
  parts.indexer = std::make_unique<service::Indexer>(store);
  parts.messages = std::make_unique<service::MessageServiceImpl>(
      config.limits, config.messages, store, *parts.blocks, *parts.fanout, parts.indexer.get(),
      *parts.ids, clock);
  // Acks are kept in memory and written every kCursorFlushInterval.
  parts.cursors =
      std::make_unique<service::DeliveredCursors>(store.conversations(), kCursorFlushInterval);
  parts.conversations = std::make_unique<service::ConversationServiceImpl>(
      config.limits, store, deliverer, presence, *parts.fanout, *parts.cursors);
  parts.groups = std::make_unique<service::GroupServiceImpl>(
      config.limits, store, *parts.messages, deliverer, *parts.member_cache, &presence);
  parts.devices = std::make_unique<service::DeviceServiceImpl>(store, *parts.ids);
  parts.admin = std::make_unique<service::AdminServiceImpl>(store, *delivery.route_parts.routes);
  if (auto platforms = service::push::ConfiguredPlatforms(config.push); !platforms.empty()) {
    parts.push_planner = std::make_unique<service::push::PushPlanner>(
        store, *delivery.route_parts.routes, config.push, std::move(platforms));
    parts.fanout->SetPushPlanner(parts.push_planner.get());
  }
  parts.indexer->Start();
  parts.cursors->Start();
  return parts;
}

core::StatusOr<TaskParts> MakeTasks(const core::Config& config, store::Store& store,
                                    DeliveryParts& delivery) {
  TaskParts parts;
  auto providers = service::push::Providers::Open(config.push);
  if (!providers.ok()) return providers.status();
  parts.providers = std::move(*providers);
  parts.worker =
      std::make_unique<service::TaskWorker>(store, "node-" + std::to_string(config.server.node_id));
  service::TaskWorker* worker = parts.worker.get();
  if (!parts.providers->platforms().empty()) {
    parts.planner = std::make_unique<service::push::PushPlanner>(
        store, *delivery.route_parts.routes, config.push, parts.providers->platforms());
    parts.planner->SetOnJob([worker] { worker->Wake(); });
    parts.worker->Register(service::push::kPushJobKind,
                           service::push::PushJobHandler(store, *parts.providers, config.push));
  }
  parts.worker->Register(
      service::Fanout::kJobKind,
      service::FanoutJobHandler(store, *delivery.deliverer, config.groups.fanout_batch,
                                parts.planner.get()));
  return parts;
}

void TaskParts::Stop() {
  if (worker) worker->Stop();
  providers.reset();
}

ClientFront::ClientFront(const core::Config& config, gateway::ApiContext api,
                         DeliveryParts& delivery, uint32_t node)
    : api_(api),
      admin_key_(config.admin.api_key),
      unauthenticated_(
          std::make_unique<gateway::UnauthenticatedCap>(config.gateway.max_unauthenticated)) {
  context_.reset(new gateway::GatewayContext{
      api.auth, *api.messages, *api.conversations, *delivery.route_parts.presence,
      *delivery.route_parts.routes, *delivery.sessions, config.gateway, api.page_max,
      unauthenticated_.get(), node, core::SystemClock()});
}

void ClientFront::AddRoutes(net::Router& router) {
  gateway::AddAuthRoutes(router, api_);
  gateway::AddUserRoutes(router, api_);
  gateway::AddConversationRoutes(router, api_);
  gateway::AddGroupRoutes(router, api_);
  gateway::AddMessageRoutes(router, api_);
  if (api_.devices) gateway::AddDeviceRoutes(router, api_);
  gateway::AddAdminRoutes(router, api_, admin_key_);
}

net::WsAcceptFn ClientFront::WebSocketAcceptor() {
  gateway::GatewayContext* ctx = context_.get();
  return [ctx](std::shared_ptr<net::WsConnection> conn) {
    gateway::WsSession::Accept(*ctx, std::move(conn));
  };
}

}  // namespace mpim::app
