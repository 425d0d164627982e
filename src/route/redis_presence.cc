#include "route/redis_presence.h"

#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "core/logging.h"
#include "route/followers.h"

namespace mpim::route {

namespace {

const core::Logger& Log() {
  static const core::Logger log("presence");
  return log;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// {pseq, {online users...}} in one step. ARGV[1]: prefix.
constexpr const char* kSnapshotScript = R"lua(
local p = ARGV[1]
return {redis.call('GET', p .. 'pseq') or '0', redis.call('SMEMBERS', p .. 'online')}
)lua";

struct Event {
  bool online = false;
  int64_t user = 0;
  int64_t ts = 0;
  int64_t seq = 0;
};

bool ParseInt(std::string_view s, int64_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

// "1|0 uid ts seq".
bool ParseEvent(std::string_view m, Event* ev) {
  int64_t fields[4] = {};
  for (int i = 0; i < 4; ++i) {
    size_t space = i < 3 ? m.find(' ') : m.size();
    if (space == std::string_view::npos || !ParseInt(m.substr(0, space), &fields[i])) return false;
    m.remove_prefix(std::min(m.size(), space + 1));
  }
  ev->online = fields[0] == 1;
  ev->user = fields[1];
  ev->ts = fields[2];
  ev->seq = fields[3];
  return true;
}

}  // namespace

struct RedisPresence::View : std::enable_shared_from_this<View> {
  View(redis::Client* redis, std::string prefix, LastSeenSink last_seen, Listener listener)
      : redis(redis),
        prefix(std::move(prefix)),
        last_seen_sink(std::move(last_seen)),
        listener(std::move(listener)) {}

  redis::Client* const redis;  // used on its own thread only (handlers, replies)
  const std::string prefix;
  LastSeenSink last_seen_sink;
  const Listener listener;

  static constexpr size_t kShards = 32;
  struct Shard {
    mutable std::mutex mu;  // guards online, last_seen
    std::unordered_set<int64_t> online;
    std::unordered_map<int64_t, int64_t> last_seen;
  };
  Shard& ShardOf(int64_t user) const { return shards[static_cast<uint64_t>(user) % kShards]; }
  mutable std::array<Shard, kShards> shards;
  Followers followers;

  // Held by every handler (all on the client's thread) and by the
  // destructor: once closed, no handler does anything.
  std::mutex life_mu;  // guards closed and the loading state below
  bool closed = false;
  uint64_t generation = 0;  // of the load in progress
  bool loading = true;
  int64_t last_seq = 0;        // 0: unknown (every event applies)
  std::vector<Event> buffered;  // heard while loading
  std::atomic<bool> ready{false};
  std::atomic<uint64_t> loads{0};

  bool Online(int64_t user) const {
    Shard& s = ShardOf(user);
    std::lock_guard lock(s.mu);
    return s.online.count(user) != 0;
  }

  void Tell(int64_t user, bool online, int64_t ts) {
    if (!listener) return;
    std::vector<ConnId> conns = followers.Of(user);
    if (!conns.empty()) listener(conns, user, online, ts);
  }

  // Moves the view by one event (life_mu held); tells the followers if
  // the user's state changed.
  void Apply(const Event& ev) {
    bool changed = false;
    {
      Shard& s = ShardOf(ev.user);
      std::lock_guard lock(s.mu);
      if (ev.online) {
        changed = s.online.insert(ev.user).second;
      } else {
        changed = s.online.erase(ev.user) > 0;
        int64_t& seen = s.last_seen[ev.user];
        seen = std::max(seen, ev.ts);
      }
    }
    if (changed) Tell(ev.user, ev.online, ev.ts);
  }

  // An event in seq order (life_mu held).
  void Handle(const Event& ev) {
    if (loading) return buffered.push_back(ev);
    if (last_seq != 0 && ev.seq <= last_seq) return;  // the snapshot has it
    if (last_seq != 0 && ev.seq != last_seq + 1) {
      Log().Warn("presence events missed: reloading",
                 {{"expected", last_seq + 1}, {"got", ev.seq}});
      Load();
      return buffered.push_back(ev);
    }
    last_seq = ev.seq;
    Apply(ev);
  }

  // Reads the snapshot (life_mu held); events wait until it is in.
  void Load() {
    const uint64_t gen = ++generation;
    loading = true;
    ready = false;
    redis->Command({"EVAL", kSnapshotScript, "0", prefix},
                   [self = shared_from_this(), gen](core::StatusOr<redis::Reply> r) {
                     std::lock_guard lock(self->life_mu);
                     if (self->closed || gen != self->generation) return;
                     self->Loaded(r);
                   });
  }

  void Loaded(const core::StatusOr<redis::Reply>& r) {
    int64_t seq = 0;
    const redis::Reply* members = nullptr;
    if (r.ok() && r->type == redis::Reply::Type::kArray && r->elements.size() == 2 &&
        ParseInt(r->elements[0].str, &seq) &&
        r->elements[1].type == redis::Reply::Type::kArray) {
      members = &r->elements[1];
    }
    if (members == nullptr) {
      // The subscriber is made again when the command connection is, and
      // loads then; until then the events apply as they come.
      Log().Warn("presence snapshot failed",
                 {{"error", r.ok() ? std::string("unexpected reply") : r.status().ToString()}});
      loading = false;
      last_seq = 0;
      std::vector<Event> events = std::move(buffered);
      buffered.clear();
      for (const Event& ev : events) Handle(ev);
      return;
    }
    std::array<std::unordered_set<int64_t>, kShards> fresh;
    for (const redis::Reply& m : members->elements) {
      int64_t user = 0;
      if (ParseInt(m.str, &user)) fresh[static_cast<uint64_t>(user) % kShards].insert(user);
    }
    std::vector<int64_t> followed = followers.Users();
    std::vector<char> was(followed.size());
    for (size_t i = 0; i < followed.size(); ++i) was[i] = Online(followed[i]);
    for (size_t i = 0; i < kShards; ++i) {
      std::lock_guard lock(shards[i].mu);
      shards[i].online.swap(fresh[i]);
    }
    const int64_t now = NowMs();
    for (size_t i = 0; i < followed.size(); ++i) {
      const bool is = Online(followed[i]);
      if (is == static_cast<bool>(was[i])) continue;
      if (!is) {
        Shard& s = ShardOf(followed[i]);
        std::lock_guard lock(s.mu);
        s.last_seen[followed[i]] = std::max(s.last_seen[followed[i]], now);
      }
      Tell(followed[i], is, now);
    }
    last_seq = seq;
    loading = false;
    ready = true;
    loads.fetch_add(1);
    std::vector<Event> events = std::move(buffered);
    buffered.clear();
    for (const Event& ev : events) Handle(ev);  // a gap may start another load
  }
};

RedisPresence::RedisPresence(std::shared_ptr<redis::Client> redis, std::string prefix,
                             LastSeenSink last_seen, Listener listener)
    : redis_(std::move(redis)),
      view_(std::make_shared<View>(redis_.get(), std::move(prefix), std::move(last_seen),
                                   std::move(listener))) {
  std::shared_ptr<View> view = view_;
  redis_->Subscribe(
      view->prefix + "presence",
      [view](std::string_view, std::string_view message) {
        Event ev;
        if (!ParseEvent(message, &ev)) return;
        std::lock_guard lock(view->life_mu);
        if (!view->closed) view->Handle(ev);
      },
      [view] {
        std::lock_guard lock(view->life_mu);
        if (!view->closed) view->Load();
      });
}

RedisPresence::~RedisPresence() {
  std::lock_guard lock(view_->life_mu);
  view_->closed = true;
}

bool RedisPresence::ready() const { return view_->ready.load(); }
uint64_t RedisPresence::loads() const { return view_->loads.load(); }

void RedisPresence::Connected(int64_t, int64_t) {}

void RedisPresence::Disconnected(int64_t user, int64_t now_ms) {
  // The view's last_seen moves only with the offline events, which every
  // node hears with one time: a value of this node's own would make its
  // GET /users/{id} disagree with the others' by the milliseconds between
  // the route's removal and this call.
  if (view_->last_seen_sink) view_->last_seen_sink(user, now_ms);  // best effort
}

UserPresence RedisPresence::Get(int64_t user) const {
  View::Shard& s = view_->ShardOf(user);
  std::lock_guard lock(s.mu);
  UserPresence p;
  p.online = s.online.count(user) != 0;
  if (auto it = s.last_seen.find(user); it != s.last_seen.end()) p.last_seen = it->second;
  return p;
}

void RedisPresence::Subscribe(ConnId conn, const std::vector<int64_t>& users) {
  view_->followers.Add(conn, users);
}

void RedisPresence::Unsubscribe(ConnId conn, const std::vector<int64_t>& users) {
  view_->followers.Remove(conn, users);
}

}  // namespace mpim::route
