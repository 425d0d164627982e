#include "bus/redis_bus.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <unordered_map>

#include "bus/dispatch.h"
#include "core/logging.h"
#include "core/metrics.h"
#include "redis/client.h"

namespace mpim::bus {
namespace internal {

using redis::Reply;
using Clock = std::chrono::steady_clock;

namespace {

const core::Logger& Log() {
  static const core::Logger log("bus");
  return log;
}

// A stream id "ms-seq" as a pair, for comparing; {0, 0} if it is none.
std::pair<uint64_t, uint64_t> IdKey(std::string_view id) {
  std::pair<uint64_t, uint64_t> out{0, 0};
  size_t dash = id.find('-');
  std::string_view ms = id.substr(0, dash);
  std::from_chars(ms.data(), ms.data() + ms.size(), out.first);
  if (dash != std::string_view::npos) {
    std::string_view seq = id.substr(dash + 1);
    std::from_chars(seq.data(), seq.data() + seq.size(), out.second);
  }
  return out;
}

bool Contains(const core::Status& s, std::string_view what) {
  const std::string_view message(s.message().data(), s.message().size());
  return message.find(what) != std::string_view::npos;
}

// One stream entry of a reply: [id, [field, value, ...]] (the fields nil
// for an entry trimmed while pending).
struct RawEntry {
  std::string id;
  bool gone = false;
  std::string payload;
};

bool ParseEntry(const Reply& r, RawEntry* out) {
  if (r.type != Reply::Type::kArray || r.elements.size() != 2) return false;
  out->id = r.elements[0].str;
  const Reply& fields = r.elements[1];
  if (fields.type != Reply::Type::kArray) {
    out->gone = true;
    return true;
  }
  for (size_t i = 0; i + 1 < fields.elements.size(); i += 2) {
    if (fields.elements[i].str == "payload") {
      out->payload = fields.elements[i + 1].str;
      break;
    }
  }
  return true;
}

// The entries of an XREAD / XREADGROUP reply for one key (nil: none).
std::vector<RawEntry> ParseRead(const Reply& r) {
  std::vector<RawEntry> out;
  if (r.type != Reply::Type::kArray) return out;
  for (const Reply& stream : r.elements) {
    if (stream.type != Reply::Type::kArray || stream.elements.size() != 2) continue;
    for (const Reply& e : stream.elements[1].elements) {
      RawEntry entry;
      if (ParseEntry(e, &entry)) out.push_back(std::move(entry));
    }
  }
  return out;
}

std::string InfoField(std::string_view info, std::string_view field) {
  const std::string key = std::string(field) + ":";
  size_t at = info.find(key);
  if (at == std::string_view::npos) return "";
  at += key.size();
  size_t end = info.find_first_of("\r\n", at);
  return std::string(info.substr(at, end == std::string_view::npos ? end : end - at));
}

// "<ms>-<seq>" or "<ms>", as XACK takes them.
bool ValidId(std::string_view id) {
  size_t dash = id.find('-');
  auto digits = [](std::string_view s) {
    return !s.empty() && s.size() <= 20 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  return digits(id.substr(0, dash)) &&
         (dash == std::string_view::npos || digits(id.substr(dash + 1)));
}

core::Status Unavailable(std::string_view why) {
  return absl::UnavailableError("bus: " + std::string(why));
}

}  // namespace

// The bus's client, for the subscriptions and consumers that may outlive
// the bus: a command after the bus is gone fails with kUnavailable.
struct MainLink {
  std::mutex mu;
  redis::Client* client = nullptr;

  void Command(std::vector<std::string> args, core::Callback<Reply> done) {
    {
      std::lock_guard lock(mu);
      if (client != nullptr) return client->Command(std::move(args), std::move(done));
    }
    std::move(done)(Unavailable("the bus is closed"));
  }
  void Reset() {
    std::lock_guard lock(mu);
    client = nullptr;
  }
};

struct Closable {
  virtual ~Closable() = default;
  // No handler of it runs once this returns, none will again.
  virtual void Close() = 0;
};

// What a subscription or consumer with a client of its own shares.
struct Reader : Closable {
  std::string key;
  std::shared_ptr<MainLink> main;
  std::shared_ptr<Serial> serial;
  std::chrono::milliseconds block{500}, retry{50};

  std::mutex mu;  // guards closed, own
  bool closed = false;
  std::unique_ptr<redis::Client> own;

  bool is_closed() {
    std::lock_guard lock(mu);
    return closed;
  }
  // Sends on the reader's own client; false (done not run) once closed.
  bool OwnCommand(std::vector<std::string> args, core::Callback<Reply> done) {
    std::lock_guard lock(mu);
    if (closed || !own) return false;
    own->Command(std::move(args), std::move(done));
    return true;
  }
  uint64_t OwnConnects() {
    std::lock_guard lock(mu);
    return own ? own->connects() : 0;
  }
  void Close() override {
    std::unique_ptr<redis::Client> client;
    {
      std::lock_guard lock(mu);
      closed = true;
      client = std::move(own);
    }
    serial->Close();
    client.reset();  // joins its thread: none of its callbacks runs after this
  }
  void Later(Task task) { serial->dispatcher()->After(retry, std::move(task)); }
};

// A topic subscription on redis-pubsub.
struct PubSubSub : Closable {
  std::shared_ptr<Serial> serial;
  Bus::TopicHandler on_message;
  Bus::GapHandler on_gap;
  bool started = false;  // under RedisBus::mu_: its first subscribe was confirmed
  void Close() override { serial->Close(); }
};

struct Queued {
  std::string payload;
  core::DoneCallback done;
};

// A pubsub channel this bus subscribed to (the client keeps it for life).
struct Channel {
  bool confirmed = false;  // Redis confirmed it once
  std::shared_ptr<const std::vector<std::shared_ptr<PubSubSub>>> subs =
      std::make_shared<std::vector<std::shared_ptr<PubSubSub>>>();
  std::deque<Queued> queued;  // published before the first confirmation
};

// mpim_bus_lag_seconds: from each entry's id (Redis's clock as it appended
// the entry) to the moment its handler starts on this node.
void ObserveLag(const std::vector<RawEntry>& entries) {
  static core::Histogram& lag =
      core::DefaultRegistry()
          .Histogram("mpim_bus_lag_seconds",
                     "Topics on redis-streams: from an entry's append (its id, by Redis's "
                     "clock) to its handler starting on this node.")
          .With({});
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  for (const RawEntry& e : entries) {
    const auto appended = static_cast<int64_t>(IdKey(e.id).first);
    lag.Observe(static_cast<double>(std::max<int64_t>(0, now_ms - appended)) / 1000.0);
  }
}

// A topic subscription on redis-streams: XREAD BLOCK from the last id seen.
struct StreamSub : Reader, std::enable_shared_from_this<StreamSub> {
  Bus::TopicHandler on_message;
  Bus::GapHandler on_gap;
  // The loop's state: one command of the loop is out at a time, so these
  // are touched by one thread at a time.
  std::string last_id = "0-0";
  std::string run_id;
  uint64_t connects_seen = 0;
  bool need_check = false;

  // Where to start: after the stream's current last entry, asked on the
  // bus's connection so that a publish made through this bus after
  // Subscribe returned is read.
  void Start() {
    main->Command({"INFO", "server"}, [self = shared_from_this()](core::StatusOr<Reply> r) {
      if (r.ok()) self->run_id = InfoField(r->str, "run_id");
    });
    main->Command({"XREVRANGE", key, "+", "-", "COUNT", "1"},
                  [self = shared_from_this()](core::StatusOr<Reply> r) {
                    if (self->is_closed()) return;
                    if (!r.ok()) {
                      return self->Later([self] { self->Start(); });
                    }
                    RawEntry last;
                    if (r->type == Reply::Type::kArray && !r->elements.empty() &&
                        ParseEntry(r->elements[0], &last)) {
                      self->last_id = last.id;
                    }
                    self->Read();
                  });
  }

  void Read() {
    const uint64_t connects = OwnConnects();
    if (need_check || (connects_seen != 0 && connects != connects_seen)) return Check();
    OwnCommand(
        {"XREAD", "COUNT", "256", "BLOCK", std::to_string(block.count()), "STREAMS", key, last_id},
        [self = shared_from_this()](core::StatusOr<Reply> r) {
          if (self->is_closed()) return;
          if (!r.ok()) {
            self->need_check = true;
            return self->Later([self] { self->Read(); });
          }
          // A read sent while the connection was being made again
          // waits for it and is answered by what may be another
          // Redis: check before taking what it read.
          const uint64_t connects = self->OwnConnects();
          if (self->connects_seen != 0 && connects != self->connects_seen) {
            self->need_check = true;
            return self->Read();
          }
          self->connects_seen = connects;
          std::vector<RawEntry> entries = ParseRead(*r);
          if (entries.empty()) return self->Read();
          self->last_id = entries.back().id;
          self->serial->Post([self, entries = std::move(entries)] {
            ObserveLag(entries);
            for (const RawEntry& e : entries) self->on_message(e.payload);
            self->Read();
          });
        });
  }

  // After a reconnect: did Redis restart (run_id) or trim past last_id?
  void Check() {
    auto info = std::make_shared<core::StatusOr<Reply>>(Unavailable("no reply"));
    OwnCommand({"INFO", "server"}, [info](core::StatusOr<Reply> r) { *info = std::move(r); });
    OwnCommand({"XINFO", "STREAM", key}, [self = shared_from_this(),
                                          info](core::StatusOr<Reply> r) {
      if (self->is_closed()) return;
      const bool missing = !r.ok() && Contains(r.status(), "no such key");
      if (!info->ok() || (!r.ok() && !missing)) {
        return self->Later([self] { self->Read(); });
      }
      bool gap = false;
      const std::string run_id = InfoField((*info)->str, "run_id");
      if (!self->run_id.empty() && run_id != self->run_id) gap = true;
      self->run_id = run_id;
      const bool had = IdKey(self->last_id) != std::pair<uint64_t, uint64_t>{0, 0};
      if (missing) {
        self->last_id = "0-0";
      } else {
        std::string first, last_generated;
        for (size_t i = 0; i + 1 < r->elements.size(); i += 2) {
          const std::string& name = r->elements[i].str;
          const Reply& value = r->elements[i + 1];
          if (name == "last-generated-id") last_generated = value.str;
          if (name == "first-entry" && value.type == Reply::Type::kArray && !value.elements.empty())
            first = value.elements[0].str;
        }
        if (IdKey(last_generated) < IdKey(self->last_id)) {
          gap = true;  // a stream made anew
          self->last_id = "0-0";
        } else if (had && !first.empty() && IdKey(first) > IdKey(self->last_id)) {
          gap = true;  // trimmed past what we read
        }
      }
      self->need_check = false;
      self->connects_seen = self->OwnConnects();
      if (gap) {
        Log().Warn("topic stream may have lost messages", {{"key", self->key}});
        self->serial->Post([self] {
          if (self->on_gap) self->on_gap();
        });
      }
      self->Read();
    });
  }
};

// A consumer of a stream's group.
struct Consumer : Reader, std::enable_shared_from_this<Consumer> {
  std::string dead_key;
  ConsumerOptions options;
  int64_t max_len = 100000;
  Bus::StreamHandler handler;

  struct Stale {
    std::string id;
    int64_t count = 0;
  };

  void Start() {
    EnsureGroup([self = shared_from_this()] { self->Recover("-"); });
    ScheduleClaim();
  }

  void EnsureGroup(Task then) {
    main->Command(
        {"XGROUP", "CREATE", key, options.group, "0", "MKSTREAM"},
        [self = shared_from_this(), then = std::move(then)](core::StatusOr<Reply> r) mutable {
          if (self->is_closed()) return;
          if (r.ok() || Contains(r.status(), "BUSYGROUP")) return then();
          self->Later(
              [self, then = std::move(then)]() mutable { self->EnsureGroup(std::move(then)); });
        });
  }

  // Hands out this consumer's own pending entries (after a restart of the
  // process), from `start` on, then reads new ones.
  void Recover(std::string start) {
    main->Command({"XPENDING", key, options.group, start, "+", std::to_string(options.batch),
                   options.consumer},
                  [self = shared_from_this(), start](core::StatusOr<Reply> r) {
                    if (self->is_closed()) return;
                    if (!r.ok()) {
                      if (Contains(r.status(), "NOGROUP")) {
                        return self->EnsureGroup([self] { self->Recover("-"); });
                      }
                      return self->Later([self, start] { self->Recover(start); });
                    }
                    std::vector<Stale> stale = ParsePending(*r);
                    if (stale.empty()) return self->Read();
                    const std::string next = "(" + stale.back().id;
                    self->Claim(std::move(stale), 0, [self, next] { self->Recover(next); });
                  });
  }

  static std::vector<Stale> ParsePending(const Reply& r) {
    std::vector<Stale> out;
    for (const Reply& e : r.elements) {
      if (e.type != Reply::Type::kArray || e.elements.size() < 4) continue;
      out.push_back(Stale{e.elements[0].str, e.elements[3].integer});
    }
    return out;
  }

  void Read() {
    OwnCommand({"XREADGROUP", "GROUP", options.group, options.consumer, "COUNT",
                std::to_string(options.batch), "BLOCK", std::to_string(block.count()), "STREAMS",
                key, ">"},
               [self = shared_from_this()](core::StatusOr<Reply> r) {
                 if (self->is_closed()) return;
                 if (!r.ok()) {
                   // Redis lost the group (restarted empty): make it again.
                   if (Contains(r.status(), "NOGROUP")) {
                     return self->EnsureGroup([self] { self->Read(); });
                   }
                   return self->Later([self] { self->Read(); });
                 }
                 std::vector<Entry> entries;
                 std::vector<std::string> gone;
                 for (RawEntry& e : ParseRead(*r)) {
                   if (e.gone) {
                     gone.push_back(std::move(e.id));
                   } else {
                     entries.push_back(Entry{std::move(e.id), std::move(e.payload), 1});
                   }
                 }
                 if (!gone.empty()) self->AckGone(std::move(gone));
                 if (entries.empty()) return self->Read();
                 self->Hand(std::move(entries), [self] { self->Read(); });
               });
  }

  void Hand(std::vector<Entry> entries, Task then) {
    serial->Post([self = shared_from_this(), entries = std::move(entries),
                  then = std::move(then)]() mutable {
      self->handler(std::move(entries));
      then();
    });
  }

  void AckGone(std::vector<std::string> ids) {
    std::vector<std::string> args{"XACK", key, options.group};
    for (auto& id : ids) args.push_back(std::move(id));
    main->Command(std::move(args), [](core::StatusOr<Reply>) {});
  }

  // Claims `stale` (pending at least min_idle_ms) to this consumer: those
  // handed out max_deliveries times go to the dead letters and are acked,
  // the rest go to the handler; entries trimmed meanwhile are acked. Then
  // `then` (also when a command failed: the entries stay pending).
  void Claim(std::vector<Stale> stale, int64_t min_idle_ms, Task then) {
    std::vector<std::string> args{"XCLAIM", key, options.group, options.consumer,
                                  std::to_string(min_idle_ms)};
    std::unordered_map<std::string, int64_t> counts;
    for (const Stale& s : stale) {
      args.push_back(s.id);
      counts[s.id] = s.count;
    }
    main->Command(std::move(args),
                  [self = shared_from_this(), stale = std::move(stale), counts = std::move(counts),
                   then = std::move(then)](core::StatusOr<Reply> r) mutable {
                    if (self->is_closed()) return;
                    if (!r.ok()) return then();
                    std::vector<Entry> live;
                    std::vector<RawEntry> dead;
                    std::vector<std::string> gone;
                    const bool positional = r->elements.size() == stale.size();
                    for (size_t i = 0; i < r->elements.size(); ++i) {
                      RawEntry e;
                      if (!ParseEntry(r->elements[i], &e)) {
                        // Nil: trimmed while pending (Redis < 7 answers so; 7 drops it
                        // from the pending list itself).
                        if (r->elements[i].nil() && positional) gone.push_back(stale[i].id);
                        continue;
                      }
                      if (e.gone) {
                        gone.push_back(std::move(e.id));
                        continue;
                      }
                      const int64_t count = counts[e.id];
                      if (count >= static_cast<int64_t>(self->options.max_deliveries)) {
                        dead.push_back(std::move(e));
                      } else {
                        live.push_back(Entry{std::move(e.id), std::move(e.payload),
                                             static_cast<uint32_t>(count + 1)});
                      }
                    }
                    if (!gone.empty()) self->AckGone(std::move(gone));
                    if (!dead.empty()) self->Bury(std::move(dead));
                    if (live.empty()) return then();
                    self->Hand(std::move(live), std::move(then));
                  });
  }

  // Moves entries to the dead letters, then acks those that got there.
  void Bury(std::vector<RawEntry> dead) {
    struct Pending {
      size_t left;
      std::vector<std::string> moved;
    };
    auto pending = std::make_shared<Pending>(Pending{dead.size(), {}});
    for (RawEntry& e : dead) {
      Log().Warn("entry moved to the dead letters",
                 {{"stream", key}, {"id", e.id}, {"group", options.group}});
      main->Command({"XADD", dead_key, "MAXLEN", "~", std::to_string(max_len), "*", "payload",
                     std::move(e.payload), "id", e.id},
                    [self = shared_from_this(), pending, id = e.id](core::StatusOr<Reply> r) {
                      if (r.ok()) pending->moved.push_back(id);
                      if (--pending->left > 0 || pending->moved.empty()) return;
                      self->AckGone(std::move(pending->moved));
                    });
    }
  }

  void ScheduleClaim() {
    const auto every =
        std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100), options.claim_idle / 2);
    serial->dispatcher()->After(every, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->ClaimStale();
    });
  }

  // Entries of the group pending longer than claim_idle, whoever has them.
  void ClaimStale() {
    if (is_closed()) return;
    const int64_t idle = options.claim_idle.count();
    main->Command({"XPENDING", key, options.group, "IDLE", std::to_string(idle), "-", "+",
                   std::to_string(options.batch)},
                  [self = shared_from_this(), idle](core::StatusOr<Reply> r) {
                    if (self->is_closed()) return;
                    std::vector<Stale> stale;
                    if (r.ok()) stale = ParsePending(*r);
                    if (stale.empty()) return self->ScheduleClaim();
                    self->Claim(std::move(stale), idle, [self] { self->ScheduleClaim(); });
                  });
  }
};

class CloseHandle final : public Handle {
 public:
  explicit CloseHandle(std::shared_ptr<Closable> c) : c_(std::move(c)) {}
  ~CloseHandle() override {
    if (c_) c_->Close();
  }

 private:
  std::shared_ptr<Closable> c_;
};

}  // namespace internal

using internal::Channel;
using internal::Closable;
using internal::Dispatcher;
using internal::Log;
using internal::MainLink;
using internal::Serial;
using internal::ValidName;

namespace {

redis::ClientOptions ClientOptionsOf(const RedisBusOptions& o) {
  redis::ClientOptions c;
  c.url = o.url;
  c.timeout = o.timeout;
  c.reconnect_min = o.reconnect_min;
  c.reconnect_max = o.reconnect_max;
  c.ping_interval = std::max<std::chrono::milliseconds>(std::chrono::milliseconds(100),
                                                        std::min(o.timeout, o.reconnect_max));
  return c;
}

std::chrono::milliseconds BlockOf(const RedisBusOptions& o) {
  return std::max<std::chrono::milliseconds>(std::chrono::milliseconds(1), o.timeout / 2);
}

std::chrono::milliseconds RetryOf(const RedisBusOptions& o) {
  return std::clamp<std::chrono::milliseconds>(o.reconnect_min, std::chrono::milliseconds(10),
                                               std::chrono::milliseconds(200));
}

template <typename T>
void Fail(core::Callback<T>& done, core::Status s) {
  if (done) std::move(done)(std::move(s));
}
void Fail(core::DoneCallback& done, core::Status s) {
  if (done) std::move(done)(std::move(s));
}

}  // namespace

RedisBus::RedisBus(RedisBusOptions options)
    : options_(std::move(options)),
      dispatcher_(std::make_shared<Dispatcher>("bus-redis", std::max<size_t>(1, options_.workers))),
      main_link_(std::make_shared<MainLink>()),
      channels_(std::make_unique<std::map<std::string, Channel>>()) {}

core::StatusOr<std::unique_ptr<RedisBus>> RedisBus::Open(RedisBusOptions options) {
  auto client = redis::Client::Start(ClientOptionsOf(options));
  if (!client.ok()) return client.status();
  std::unique_ptr<RedisBus> bus(new RedisBus(std::move(options)));
  bus->main_ = std::move(*client);
  bus->main_link_->client = bus->main_.get();
  return bus;
}

RedisBus::~RedisBus() {
  std::vector<std::shared_ptr<Closable>> live;
  std::vector<internal::Queued> queued;
  {
    std::lock_guard lock(mu_);
    for (auto& weak : live_) {
      if (auto c = weak.lock()) live.push_back(std::move(c));
    }
    live_.clear();
    for (auto& [name, channel] : *channels_) {
      for (auto& q : channel.queued) queued.push_back(std::move(q));
      channel.queued.clear();
    }
  }
  for (auto& c : live) c->Close();
  main_link_->Reset();
  dispatcher_->Stop();
  for (auto& q : queued) Fail(q.done, internal::Unavailable("the bus is closed"));
  main_.reset();  // what still waits on it gets kUnavailable
}

bool RedisBus::connected() const { return main_->connected(); }

void RedisBus::Track(std::shared_ptr<Closable> c) {
  std::lock_guard lock(mu_);
  std::erase_if(live_, [](const std::weak_ptr<Closable>& w) { return w.expired(); });
  live_.push_back(std::move(c));
}

void RedisBus::SendPublish(const std::string& channel, std::string payload,
                           core::DoneCallback done) {
  std::vector<std::string> args;
  if (options_.topics == RedisBusOptions::Topics::kPubSub) {
    args = {"PUBLISH", channel, std::move(payload)};
  } else {
    args = {"XADD", channel,   "MAXLEN",          "~", std::to_string(options_.stream_max_len),
            "*",    "payload", std::move(payload)};
  }
  main_->Command(std::move(args), [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
    if (done) std::move(done)(r.status());
  });
}

void RedisBus::Publish(std::string topic, std::string payload, core::DoneCallback done) {
  if (!ValidName(topic)) return Fail(done, absl::InvalidArgumentError("bus: bad topic name"));
  std::string channel = options_.prefix + topic;
  if (options_.topics == RedisBusOptions::Topics::kPubSub) {
    // A subscriber of this bus not yet confirmed by Redis: wait for it (up
    // to the timeout), so that what is published here after Subscribe
    // returned reaches it.
    std::unique_lock lock(mu_);
    auto it = channels_->find(channel);
    if (it != channels_->end() && !it->second.confirmed) {
      const bool first = it->second.queued.empty();
      it->second.queued.push_back(internal::Queued{std::move(payload), std::move(done)});
      lock.unlock();
      if (first) {
        dispatcher_->After(options_.timeout, [this, channel] { FlushQueued(channel); });
      }
      return;
    }
  }
  SendPublish(channel, std::move(payload), std::move(done));
}

void RedisBus::FlushQueued(const std::string& channel) {
  std::deque<internal::Queued> queued;
  {
    std::lock_guard lock(mu_);
    auto it = channels_->find(channel);
    if (it == channels_->end()) return;
    queued.swap(it->second.queued);
  }
  for (auto& q : queued) SendPublish(channel, std::move(q.payload), std::move(q.done));
}

void RedisBus::OnSubscribed(const std::string& channel) {
  std::vector<std::shared_ptr<internal::PubSubSub>> gaps;
  bool flush = false;
  {
    std::lock_guard lock(mu_);
    Channel& ch = (*channels_)[channel];
    flush = !ch.confirmed;
    ch.confirmed = true;
    for (const auto& sub : *ch.subs) {
      if (sub->started) gaps.push_back(sub);
      sub->started = true;
    }
  }
  if (flush) FlushQueued(channel);
  for (auto& sub : gaps) {
    Log().Warn("resubscribed, messages may have been missed", {{"channel", channel}});
    sub->serial->Post([sub] {
      if (sub->on_gap) sub->on_gap();
    });
  }
}

void RedisBus::OnMessage(const std::string& channel, std::string_view message) {
  std::shared_ptr<const std::vector<std::shared_ptr<internal::PubSubSub>>> subs;
  {
    std::lock_guard lock(mu_);
    auto it = channels_->find(channel);
    if (it == channels_->end()) return;
    subs = it->second.subs;
  }
  if (subs->empty()) return;
  auto payload = std::make_shared<const std::string>(message);
  for (const auto& sub : *subs) {
    sub->serial->Post([sub, payload] { sub->on_message(*payload); });
  }
}

std::unique_ptr<Handle> RedisBus::Subscribe(std::string topic, TopicHandler on_message,
                                            GapHandler on_gap) {
  if (!ValidName(topic) || !on_message) {
    Log().Error("Subscribe with a bad topic or no handler", {{"topic", topic}});
    return std::make_unique<internal::CloseHandle>(nullptr);
  }
  std::string channel = options_.prefix + topic;
  if (options_.topics == RedisBusOptions::Topics::kStreams) {
    auto sub = std::make_shared<internal::StreamSub>();
    sub->key = std::move(channel);
    sub->main = main_link_;
    sub->serial = std::make_shared<Serial>(dispatcher_);
    sub->block = BlockOf(options_);
    sub->retry = RetryOf(options_);
    sub->on_message = std::move(on_message);
    sub->on_gap = std::move(on_gap);
    auto own = redis::Client::Start(ClientOptionsOf(options_));
    if (own.ok()) sub->own = std::move(*own);  // the URL is the bus's: it parsed
    sub->Start();
    Track(sub);
    return std::make_unique<internal::CloseHandle>(std::move(sub));
  }
  auto sub = std::make_shared<internal::PubSubSub>();
  sub->serial = std::make_shared<Serial>(dispatcher_);
  sub->on_message = std::move(on_message);
  sub->on_gap = std::move(on_gap);
  bool first = false;
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = channels_->try_emplace(channel);
    first = inserted;
    auto subs = std::make_shared<std::vector<std::shared_ptr<internal::PubSubSub>>>();
    for (const auto& s : *it->second.subs) {
      if (!s->serial->closed()) subs->push_back(s);
    }
    sub->started = it->second.confirmed;
    subs->push_back(sub);
    it->second.subs = std::move(subs);
  }
  if (first) {
    main_->Subscribe(
        channel,
        [this](std::string_view ch, std::string_view message) {
          OnMessage(std::string(ch), message);
        },
        [this, channel] { OnSubscribed(channel); });
  }
  Track(sub);
  return std::make_unique<internal::CloseHandle>(std::move(sub));
}

void RedisBus::Append(std::string stream, std::string payload, core::Callback<std::string> done) {
  if (!ValidName(stream)) return Fail(done, absl::InvalidArgumentError("bus: bad stream name"));
  main_->Command({"XADD", options_.prefix + stream, "MAXLEN", "~",
                  std::to_string(options_.stream_max_len), "*", "payload", std::move(payload)},
                 [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
                   if (!done) return;
                   if (!r.ok()) return std::move(done)(r.status());
                   if (r->type != redis::Reply::Type::kString) {
                     return std::move(done)(absl::InternalError("bus: XADD answered no id"));
                   }
                   std::move(done)(std::move(r->str));
                 });
}

std::unique_ptr<Handle> RedisBus::Consume(std::string stream, ConsumerOptions options,
                                          StreamHandler on_entries) {
  if (!ValidName(stream) || !ValidName(options.group) || !ValidName(options.consumer) ||
      !on_entries) {
    Log().Error("Consume with a bad name or no handler", {{"stream", stream}});
    return std::make_unique<internal::CloseHandle>(nullptr);
  }
  if (options.batch == 0) options.batch = 1;
  if (options.max_deliveries == 0) options.max_deliveries = 1;
  auto c = std::make_shared<internal::Consumer>();
  c->key = options_.prefix + stream;
  c->dead_key = c->key + ".dead";
  c->main = main_link_;
  c->serial = std::make_shared<Serial>(dispatcher_);
  c->block = BlockOf(options_);
  c->retry = RetryOf(options_);
  c->options = std::move(options);
  c->max_len = options_.stream_max_len;
  c->handler = std::move(on_entries);
  auto own = redis::Client::Start(ClientOptionsOf(options_));
  if (own.ok()) c->own = std::move(*own);
  c->Start();
  Track(c);
  return std::make_unique<internal::CloseHandle>(std::move(c));
}

void RedisBus::Ack(std::string stream, std::string group, std::vector<std::string> ids,
                   core::DoneCallback done) {
  for (const std::string& id : ids) {
    if (!internal::ValidId(id))
      return Fail(done, absl::InvalidArgumentError("bus: bad entry id " + id));
  }
  if (ids.empty()) {
    if (done)
      dispatcher_->Post([done = std::move(done)]() mutable { std::move(done)(absl::OkStatus()); });
    return;
  }
  std::vector<std::string> args{"XACK", options_.prefix + stream, std::move(group)};
  args.reserve(args.size() + ids.size());
  for (auto& id : ids) args.push_back(std::move(id));
  main_->Command(std::move(args), [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
    if (!done) return;
    if (!r.ok() && internal::Contains(r.status(), "Invalid stream ID")) {
      return std::move(done)(absl::InvalidArgumentError("bus: bad entry id"));
    }
    std::move(done)(r.status());
  });
}

}  // namespace mpim::bus
