#include "route/redis_route_table.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <future>
#include <mutex>
#include <random>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "absl/strings/match.h"
#include "core/logging.h"

namespace mpim::route {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kRegisterChunk = 500;  // routes per registration script
constexpr size_t kSweepChunk = 500;     // routes per sweep script

const core::Logger& Log() {
  static const core::Logger log("route");
  return log;
}

int64_t NowMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The scripts. Every value stays a Lua string (incarnations are 64-bit:
// a Lua number would round them). A route's value is "session owner inc".
// ARGV[1..5] of the writers: prefix, owner node, incarnation, node ttl (ms),
// now (ms).

// Refreshes node:{owner}, or sets it again (then answers 1: the table adds
// its routes again).
constexpr const char* kBeatScript = R"lua(
local p, node, inc, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local k = p .. 'node:' .. node
redis.call('SADD', p .. 'nodes', node .. ':' .. inc)
if redis.call('GET', k) == inc then
  redis.call('PEXPIRE', k, ttl)
  return 0
end
redis.call('SET', k, inc, 'PX', ttl)
return 1
)lua";

// Adds routes (ARGV[6..]: uid, field, session, ...); answers {fresh, HLEN
// of each}. fresh: node:{owner} did not hold this incarnation (it does now).
constexpr const char* kAddScript = R"lua(
local p, node, inc, ttl, ts = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local k = p .. 'node:' .. node
local out = {0}
if redis.call('GET', k) ~= inc then
  redis.call('SET', k, inc, 'PX', ttl)
  out[1] = 1
end
redis.call('SADD', p .. 'nodes', node .. ':' .. inc)
local rn = p .. 'rn:' .. node .. ':' .. inc
for i = 6, #ARGV, 3 do
  local uid, field = ARGV[i], ARGV[i + 1]
  local rk = p .. 'r:' .. uid
  local new = redis.call('HSET', rk, field, ARGV[i + 2] .. ' ' .. node .. ' ' .. inc)
  redis.call('SADD', rn, uid .. ' ' .. field)
  local n = redis.call('HLEN', rk)
  if new == 1 and n == 1 then
    redis.call('SADD', p .. 'online', uid)
    local seq = redis.call('INCR', p .. 'pseq')
    redis.call('PUBLISH', p .. 'presence', '1 ' .. uid .. ' ' .. ts .. ' ' .. seq)
  end
  out[#out + 1] = n
end
return out
)lua";

// Removes the route ARGV[6] (uid) ARGV[7] (field) if this incarnation
// added it; answers HLEN.
constexpr const char* kRemoveScript = R"lua(
local p, node, inc, ts, uid, field = ARGV[1], ARGV[2], ARGV[3], ARGV[5], ARGV[6], ARGV[7]
local rk = p .. 'r:' .. uid
local v = redis.call('HGET', rk, field)
local removed = false
if v then
  local _, o, i = string.match(v, '^(%S+) (%S+) (%S+)$')
  if o == node and i == inc then
    redis.call('HDEL', rk, field)
    removed = true
  end
end
redis.call('SREM', p .. 'rn:' .. node .. ':' .. inc, uid .. ' ' .. field)
local n = redis.call('HLEN', rk)
if removed and n == 0 then
  redis.call('SREM', p .. 'online', uid)
  local seq = redis.call('INCR', p .. 'pseq')
  redis.call('PUBLISH', p .. 'presence', '0 ' .. uid .. ' ' .. ts .. ' ' .. seq)
end
return n
)lua";

// The routes of live incarnations (node:{owner} holds theirs). ARGV: prefix.
constexpr const char* kCountScript = R"lua(
local p = ARGV[1]
local n = 0
for _, m in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  local node, inc = string.match(m, '^(%d+):(%d+)$')
  if node and redis.call('GET', p .. 'node:' .. node) == inc then
    n = n + redis.call('SCARD', p .. 'rn:' .. node .. ':' .. inc)
  end
end
return n
)lua";

// Deletes up to ARGV[3] routes of dead incarnations (node:{owner} missing
// or holding another one), checked here, atomically; answers {more, users
// that went offline...}. ARGV: prefix, now (ms), budget.
constexpr const char* kSweepScript = R"lua(
local p, ts, budget = ARGV[1], ARGV[2], tonumber(ARGV[3])
local out = {0}
for _, m in ipairs(redis.call('SMEMBERS', p .. 'nodes')) do
  local node, inc = string.match(m, '^(%d+):(%d+)$')
  if node and redis.call('GET', p .. 'node:' .. node) ~= inc then
    local rn = p .. 'rn:' .. node .. ':' .. inc
    local items = redis.call('SPOP', rn, budget)
    for _, it in ipairs(items) do
      local uid, field = string.match(it, '^(%S+) (%S+)$')
      if uid then
        local rk = p .. 'r:' .. uid
        local v = redis.call('HGET', rk, field)
        if v then
          local _, o, i = string.match(v, '^(%S+) (%S+) (%S+)$')
          if o == node and i == inc then
            redis.call('HDEL', rk, field)
            if redis.call('HLEN', rk) == 0 then
              redis.call('SREM', p .. 'online', uid)
              local seq = redis.call('INCR', p .. 'pseq')
              redis.call('PUBLISH', p .. 'presence', '0 ' .. uid .. ' ' .. ts .. ' ' .. seq)
              out[#out + 1] = uid
            end
          end
        end
      end
    end
    budget = budget - #items
    if redis.call('SCARD', rn) == 0 then
      redis.call('SREM', p .. 'nodes', m)
    elseif budget <= 0 then
      out[1] = 1
      break
    end
  end
end
return out
)lua";

struct RouteKey {
  int64_t user = 0;
  ConnId conn;
  friend bool operator==(const RouteKey&, const RouteKey&) = default;
};
struct RouteKeyHash {
  size_t operator()(const RouteKey& k) const {
    return ConnIdHash()(k.conn) ^ std::hash<int64_t>()(k.user) * 0x9E3779B97F4A7C15ull;
  }
};

template <typename T>
bool ParseNumber(std::string_view s, T* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// "node/local" -> ConnId.
bool ParseField(std::string_view f, ConnId* out) {
  size_t slash = f.find('/');
  return slash != std::string_view::npos && ParseNumber(f.substr(0, slash), &out->node) &&
         ParseNumber(f.substr(slash + 1), &out->local);
}

// "session owner inc" (a route's value).
bool ParseValue(std::string_view v, int64_t* session, uint32_t* owner, uint64_t* inc) {
  size_t a = v.find(' ');
  if (a == std::string_view::npos) return false;
  size_t b = v.find(' ', a + 1);
  return b != std::string_view::npos && ParseNumber(v.substr(0, a), session) &&
         ParseNumber(v.substr(a + 1, b - a - 1), owner) && ParseNumber(v.substr(b + 1), inc);
}

// The contract's only failure is kUnavailable: a Redis error reply (which
// a correct script never gives) counts as not answered.
core::Status Unavailable(const core::Status& s) {
  if (absl::IsUnavailable(s)) return s;
  return absl::UnavailableError(std::string(s.message()));
}

// The client fails a command it never sent (backing off, or the connection
// being made failed) with this text: such an Add certainly did nothing.
bool NeverSent(const core::Status& s) {
  return absl::StartsWith(s.message(), "redis is not connected");
}

// A reply that should be an integer (Redis answers Lua numbers so).
core::StatusOr<int64_t> Integer(const redis::Reply& r) {
  if (r.type != redis::Reply::Type::kInteger) {
    return absl::UnavailableError("route: unexpected reply from redis");
  }
  return r.integer;
}

}  // namespace

struct RedisRouteTable::Core {
  redis::Client* redis = nullptr;  // valid while the table or a callback of its client runs
  RedisRouteOptions options;
  uint64_t incarnation = 0;
  std::string node, inc, ttl;  // decimal, for the scripts

  // Guards mirror and pending. Held while posting the commands that act on
  // them, so that the commands leave in the order the maps changed (an
  // Add's registration again never overtakes its Remove).
  std::mutex mu;
  std::unordered_map<RouteKey, int64_t, RouteKeyHash> mirror;  // this node's routes -> session
  std::unordered_map<int64_t, std::vector<Route>> by_user;     // the mirror by user

  // Changes to the mirror go through these (mu held), which keep by_user.
  void MirrorPut(const RouteKey& key, int64_t session) {
    mirror[key] = session;
    std::vector<Route>& routes = by_user[key.user];
    std::erase_if(routes, [&](const Route& r) { return r.conn == key.conn; });
    routes.push_back(Route{key.user, key.conn, session});
  }
  void MirrorErase(const RouteKey& key) {
    if (mirror.erase(key) == 0) return;
    auto it = by_user.find(key.user);
    if (it == by_user.end()) return;
    std::erase_if(it->second, [&](const Route& r) { return r.conn == key.conn; });
    if (it->second.empty()) by_user.erase(it);
  }
  std::unordered_set<RouteKey, RouteKeyHash> pending;  // removals Redis has not confirmed

  std::mutex wake_mu;  // guards stop, wake_register
  std::condition_variable wake;
  bool stop = false;
  bool wake_register = false;  // an Add found node:{owner} gone: register now

  std::atomic<uint64_t> registrations{0};
  std::mutex registered_mu;  // guards on_registered_again
  std::function<void()> on_registered_again;

  // The owners Lookup reads node:{owner} of (from the set nodes, by the
  // heartbeat thread; those a lookup met besides).
  std::mutex owners_mu;  // guards owners
  std::vector<uint32_t> owners;

  std::vector<uint32_t> Owners() {
    std::lock_guard lock(owners_mu);
    return owners;
  }
  void AddOwners(const std::vector<uint32_t>& more, bool replace = false) {
    std::lock_guard lock(owners_mu);
    if (replace) owners = {options.node};
    owners.insert(owners.end(), more.begin(), more.end());
    std::sort(owners.begin(), owners.end());
    owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
  }

  // EVAL `script` 0 with the writers' ARGV[1..5].
  std::vector<std::string> Writer(const char* script) const {
    return {"EVAL", script, "0", options.prefix, node, inc, ttl, std::to_string(NowMs())};
  }

  void RequestRegister() {
    std::lock_guard lock(wake_mu);
    wake_register = true;
    wake.notify_all();
  }

  // Posts the removal of `key` (under mu); `done` gets HLEN. On failure the
  // removal stays pending and the heartbeat retries it.
  static void PostRemove(const std::shared_ptr<Core>& core, const RouteKey& key,
                         core::Callback<size_t> done) {
    std::vector<std::string> args = core->Writer(kRemoveScript);
    args.push_back(std::to_string(key.user));
    args.push_back(key.conn.ToString());
    core->pending.erase(key);
    core->redis->Command(std::move(args), [core, key, done = std::move(done)](
                                              core::StatusOr<redis::Reply> r) mutable {
      core::StatusOr<int64_t> n = r.ok() ? Integer(*r) : r.status();
      if (!n.ok()) {
        {
          std::lock_guard lock(core->mu);
          if (core->mirror.count(key) == 0) core->pending.insert(key);
        }
        if (done) std::move(done)(Unavailable(n.status()));
        return;
      }
      if (done) std::move(done)(static_cast<size_t>(std::max<int64_t>(0, *n)));
    });
  }

  // A failed Add: the route leaves the mirror; unless it was never sent,
  // it is removed (the script may have run, its reply lost).
  static void AddFailed(const std::shared_ptr<Core>& core, const RouteKey& key,
                        const core::Status& why) {
    std::lock_guard lock(core->mu);
    core->MirrorErase(key);
    if (NeverSent(why)) return;
    PostRemove(core, key, nullptr);
  }
};

namespace {

// Sends one command and waits for its reply (heartbeat thread only). The
// client answers every command within its timeout; `limit` only guards
// against one that never does.
core::StatusOr<redis::Reply> Await(redis::Client& redis, std::vector<std::string> args,
                                   milliseconds limit) {
  auto promise = std::make_shared<std::promise<core::StatusOr<redis::Reply>>>();
  auto future = promise->get_future();
  redis.Command(std::move(args),
                [promise](core::StatusOr<redis::Reply> r) { promise->set_value(std::move(r)); });
  if (future.wait_for(limit) != std::future_status::ready) {
    return absl::UnavailableError("route: no reply from redis");
  }
  return future.get();
}

}  // namespace

RedisRouteTable::RedisRouteTable(std::shared_ptr<redis::Client> redis, RedisRouteOptions options)
    : redis_(std::move(redis)), core_(std::make_shared<Core>()) {
  core_->redis = redis_.get();
  core_->options = std::move(options);
  std::mt19937_64 rng{std::random_device{}()};
  do {
    core_->incarnation = rng();
  } while (core_->incarnation == 0);
  core_->node = std::to_string(core_->options.node);
  core_->inc = std::to_string(core_->incarnation);
  core_->ttl = std::to_string(std::max<int64_t>(1, core_->options.node_ttl.count()));
  core_->owners = {core_->options.node};
  thread_ = std::thread([this] { Run(); });
}

RedisRouteTable::~RedisRouteTable() {
  {
    std::lock_guard lock(core_->wake_mu);
    core_->stop = true;
    core_->wake.notify_all();
  }
  thread_.join();
}

uint64_t RedisRouteTable::incarnation() const { return core_->incarnation; }
uint64_t RedisRouteTable::registrations() const { return core_->registrations.load(); }

void RedisRouteTable::OnRegisteredAgain(std::function<void()> fn) {
  std::lock_guard lock(core_->registered_mu);
  core_->on_registered_again = std::move(fn);
}

void RedisRouteTable::Add(const Route& route, core::Callback<size_t> done) {
  std::shared_ptr<Core> core = core_;
  const RouteKey key{route.user_id, route.conn};
  std::vector<std::string> args = core->Writer(kAddScript);
  args.push_back(std::to_string(route.user_id));
  args.push_back(route.conn.ToString());
  args.push_back(std::to_string(route.session_id));
  std::lock_guard lock(core->mu);
  core->MirrorPut(key, route.session_id);
  core->redis->Command(
      std::move(args), [core, key, done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
        core::Status failed;
        if (!r.ok()) {
          failed = r.status();
        } else if (r->type != redis::Reply::Type::kArray || r->elements.size() != 2 ||
                   !Integer(r->elements[0]).ok() || !Integer(r->elements[1]).ok()) {
          failed = absl::UnavailableError("route: unexpected reply from redis");
        }
        if (!failed.ok()) {
          Core::AddFailed(core, key, failed);
          return std::move(done)(Unavailable(failed));
        }
        if (r->elements[0].integer != 0) core->RequestRegister();
        std::move(done)(static_cast<size_t>(std::max<int64_t>(1, r->elements[1].integer)));
      });
}

void RedisRouteTable::Remove(int64_t user_id, ConnId conn, core::Callback<size_t> done) {
  const RouteKey key{user_id, conn};
  std::lock_guard lock(core_->mu);
  core_->MirrorErase(key);
  Core::PostRemove(core_, key, std::move(done));
}

void RedisRouteTable::CountConnections(core::Callback<int64_t> done) {
  core_->redis->Command(
      {"EVAL", kCountScript, "0", core_->options.prefix},
      [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
        if (!r.ok()) return std::move(done)(r.status());
        if (r->type != redis::Reply::Type::kInteger) {
          return std::move(done)(absl::UnavailableError("route count: unexpected reply"));
        }
        std::move(done)(r->integer);
      });
}

std::vector<Route> RedisRouteTable::LocalRoutes(const std::vector<int64_t>& users) {
  std::vector<Route> out;
  std::lock_guard lock(core_->mu);
  for (int64_t user : users) {
    auto it = core_->by_user.find(user);
    if (it != core_->by_user.end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  return out;
}

// A Lookup in flight: MGET of the known owners' node keys, then one
// HGETALL per user, posted together (they leave in one write; one round
// trip). A route counts if node:{owner} held its incarnation at the MGET;
// a route of an owner the MGET did not ask about costs a second MGET.
struct RedisRouteTable::LookupBurst : std::enable_shared_from_this<LookupBurst> {
  struct Candidate {
    Route route;
    uint32_t owner = 0;
    uint64_t inc = 0;
  };
  std::shared_ptr<Core> core;
  std::mutex mu;  // guards the rest (the replies come on one thread; cheap)
  size_t left = 0;
  core::Status failed;
  std::unordered_map<uint32_t, uint64_t> live;  // owner -> live incarnation (0: none)
  std::vector<Candidate> candidates;
  core::Callback<std::vector<Route>> done;

  // node:{owner} of each of `owners`, into `live`.
  void ReadOwners(std::vector<uint32_t> owners) {
    std::vector<std::string> args{"MGET"};
    for (uint32_t o : owners) args.push_back(core->options.prefix + "node:" + std::to_string(o));
    core->redis->Command(std::move(args), [self = shared_from_this(), owners = std::move(owners)](
                                              core::StatusOr<redis::Reply> r) {
      std::unique_lock lock(self->mu);
      if (!r.ok()) {
        self->Fail(Unavailable(r.status()));
      } else if (r->type != redis::Reply::Type::kArray || r->elements.size() != owners.size()) {
        self->Fail(absl::UnavailableError("route: unexpected reply from redis"));
      } else {
        for (size_t i = 0; i < owners.size(); ++i) {
          uint64_t inc = 0;
          if (!r->elements[i].nil()) ParseNumber(r->elements[i].str, &inc);
          self->live[owners[i]] = inc;
        }
      }
      self->Done(std::move(lock));
    });
  }

  void ReadUser(int64_t user) {
    core->redis->Command(
        {"HGETALL", core->options.prefix + "r:" + std::to_string(user)},
        [self = shared_from_this(), user](core::StatusOr<redis::Reply> r) {
          std::unique_lock lock(self->mu);
          if (!r.ok()) {
            self->Fail(Unavailable(r.status()));
          } else if (r->type == redis::Reply::Type::kArray) {
            for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
              Candidate c;
              c.route.user_id = user;
              if (ParseField(r->elements[i].str, &c.route.conn) &&
                  ParseValue(r->elements[i + 1].str, &c.route.session_id, &c.owner, &c.inc)) {
                self->candidates.push_back(c);
              }  // else not written by this table: ignored
            }
          }
          self->Done(std::move(lock));
        });
  }

  void Fail(core::Status why) {
    if (failed.ok()) failed = std::move(why);
  }

  // One reply in (mu held): when it was the last, the answer, or a second
  // MGET for owners the first did not know.
  void Done(std::unique_lock<std::mutex> lock) {
    if (--left > 0) return;
    if (failed.ok()) {
      std::vector<uint32_t> unknown;
      for (const Candidate& c : candidates) {
        if (live.count(c.owner) == 0) unknown.push_back(c.owner);
      }
      if (!unknown.empty()) {
        std::sort(unknown.begin(), unknown.end());
        unknown.erase(std::unique(unknown.begin(), unknown.end()), unknown.end());
        core->AddOwners(unknown);
        left = 1;
        lock.unlock();
        return ReadOwners(std::move(unknown));
      }
    }
    core::StatusOr<std::vector<Route>> answer = std::vector<Route>();
    if (!failed.ok()) {
      answer = failed;
    } else {
      answer->reserve(candidates.size());
      for (const Candidate& c : candidates) {
        if (live[c.owner] == c.inc) answer->push_back(c.route);
      }
    }
    core::Callback<std::vector<Route>> call = std::move(done);
    lock.unlock();
    std::move(call)(std::move(answer));
  }
};

void RedisRouteTable::Lookup(const std::vector<int64_t>& users,
                             core::Callback<std::vector<Route>> done) {
  if (users.empty()) return std::move(done)(std::vector<Route>());
  auto burst = std::make_shared<LookupBurst>();
  burst->core = core_;
  burst->left = users.size() + 1;
  burst->done = std::move(done);
  burst->ReadOwners(core_->Owners());
  for (int64_t user : users) burst->ReadUser(user);
}

void RedisRouteTable::Run() {
  Core& c = *core_;
  redis::Client& redis = *c.redis;
  const milliseconds ttl = std::max(c.options.node_ttl, milliseconds(3));
  const milliseconds beat_every = ttl / 3;
  const milliseconds sweep_every =
      c.options.sweep_every.count() > 0 ? c.options.sweep_every : ttl / 5;
  const milliseconds poll = std::clamp(ttl / 10, milliseconds(10), milliseconds(100));
  // A reply for the heartbeat thread: the client answers within its
  // timeout; this bound only guards against a client that never does.
  const milliseconds limit = std::max(ttl, milliseconds(5000));

  bool must_register = true;   // at start: this incarnation makes the previous one dead
  uint64_t registered_at = 0;  // redis.connects() when it last succeeded
  auto next_beat = Clock::now();
  auto next_sweep = c.options.sweep_every.count() > 0 ? Clock::now() + sweep_every : Clock::now();

  // Sets node:{owner} and adds every route of the mirror again, in one
  // burst (posted under mu: in order with Add and Remove). Whether all of
  // it succeeded.
  auto register_all = [&]() -> bool {
    std::vector<std::future<core::StatusOr<redis::Reply>>> replies;
    auto post = [&](std::vector<std::string> args) {
      auto promise = std::make_shared<std::promise<core::StatusOr<redis::Reply>>>();
      replies.push_back(promise->get_future());
      redis.Command(std::move(args), [promise](core::StatusOr<redis::Reply> r) {
        promise->set_value(std::move(r));
      });
    };
    std::vector<RouteKey> keys;
    {
      std::lock_guard lock(c.mu);
      post(c.Writer(kBeatScript));
      keys.reserve(c.mirror.size());
      for (const auto& [key, session] : c.mirror) keys.push_back(key);
    }
    // One chunk at a time under mu (io threads' Add and Remove wait for
    // one chunk at most): a route removed since the snapshot is skipped,
    // one removed after its chunk left is removed after it.
    size_t routes = 0;
    for (size_t first = 0; first < keys.size(); first += kRegisterChunk) {
      const size_t last = std::min(keys.size(), first + kRegisterChunk);
      std::vector<std::string> args = c.Writer(kAddScript);
      std::lock_guard lock(c.mu);
      for (size_t i = first; i < last; ++i) {
        auto it = c.mirror.find(keys[i]);
        if (it == c.mirror.end()) continue;
        args.push_back(std::to_string(keys[i].user));
        args.push_back(keys[i].conn.ToString());
        args.push_back(std::to_string(it->second));
        ++routes;
      }
      post(std::move(args));
    }
    bool ok = true;
    for (auto& f : replies) {
      if (f.wait_for(limit) != std::future_status::ready || !f.get().ok()) ok = false;
    }
    if (ok) {
      const uint64_t before = c.registrations.fetch_add(1);
      Log().Info("routes registered", {{"node", c.node}, {"routes", uint64_t{routes}}});
      std::function<void()> again;
      if (before > 0) {
        std::lock_guard lock(c.registered_mu);
        again = c.on_registered_again;
      }
      if (again) again();
    }
    return ok;
  };

  // Removes dead incarnations' routes, kSweepChunk per script.
  auto sweep = [&] {
    for (;;) {
      {
        std::lock_guard lock(c.wake_mu);
        if (c.stop) return;
      }
      const int64_t now = NowMs();
      auto r = Await(redis,
                     {"EVAL", kSweepScript, "0", c.options.prefix, std::to_string(now),
                      std::to_string(kSweepChunk)},
                     limit);
      if (!r.ok() || r->type != redis::Reply::Type::kArray || r->elements.empty()) return;
      std::vector<int64_t> offline;
      for (size_t i = 1; i < r->elements.size(); ++i) {
        int64_t user = 0;
        if (ParseNumber(r->elements[i].str, &user)) offline.push_back(user);
      }
      if (!offline.empty()) {
        Log().Info("routes of a dead node swept", {{"offline", uint64_t{offline.size()}}});
        if (c.options.on_swept) c.options.on_swept(offline, now);
      }
      if (r->elements[0].integer == 0) return;
    }
  };

  // The owners that have routes, for Lookup.
  auto read_owners = [&] {
    auto r = Await(redis, {"SMEMBERS", c.options.prefix + "nodes"}, limit);
    if (!r.ok() || r->type != redis::Reply::Type::kArray) return;
    std::vector<uint32_t> owners;
    for (const redis::Reply& m : r->elements) {
      uint32_t owner = 0;
      if (ParseNumber(std::string_view(m.str).substr(0, m.str.find(':')), &owner)) {
        owners.push_back(owner);
      }
    }
    c.AddOwners(owners, /*replace=*/true);
  };

  // The removals Redis has not confirmed, again.
  auto retry_removals = [&] {
    std::vector<std::future<core::StatusOr<size_t>>> replies;
    {
      std::lock_guard lock(c.mu);
      std::vector<RouteKey> keys(c.pending.begin(), c.pending.end());
      for (const RouteKey& key : keys) {
        auto promise = std::make_shared<std::promise<core::StatusOr<size_t>>>();
        replies.push_back(promise->get_future());
        Core::PostRemove(core_, key,
                         [promise](core::StatusOr<size_t> n) { promise->set_value(std::move(n)); });
      }
    }
    for (auto& f : replies) f.wait_for(limit);
  };

  for (;;) {
    {
      std::unique_lock lock(c.wake_mu);
      auto until = Clock::now() + poll;
      if (!must_register) until = std::min({until, next_beat, next_sweep});
      c.wake.wait_until(lock, until, [&] { return c.stop || c.wake_register; });
      if (c.stop) return;
      if (c.wake_register) must_register = true;
      c.wake_register = false;
    }
    if (!redis.connected()) continue;  // the client reconnects; then connects() moves
    const uint64_t connects = redis.connects();
    if (connects != registered_at) must_register = true;  // a failover may have lost writes
    auto now = Clock::now();
    if (must_register) {
      if (register_all()) {
        must_register = false;
        registered_at = connects;
        next_beat = now + beat_every;
      }
    } else if (now >= next_beat) {
      auto fresh = Await(redis, c.Writer(kBeatScript), limit);
      if (fresh.ok()) {
        next_beat = now + beat_every;
        if (fresh->integer != 0) {
          Log().Warn("node key was gone: registering the routes again", {{"node", c.node}});
          must_register = true;
          continue;
        }
      }
    }
    if (now >= next_sweep) {
      read_owners();
      sweep();
      next_sweep = now + sweep_every;
    }
    bool pending = false;
    {
      std::lock_guard lock(c.mu);
      pending = !c.pending.empty();
    }
    if (pending) retry_removals();
  }
}

}  // namespace mpim::route
