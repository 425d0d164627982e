#include "cache/redis_cache.h"

#include <cstdio>
#include <random>

namespace mpim::cache {
namespace {

constexpr char kValue = 'v';
constexpr char kNotFound = 'n';
constexpr char kTombstone = 't';

uint64_t Random() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

// `ttl_ms` plus 0-10%, so entries filled together do not expire together.
std::string Jittered(int64_t ttl_ms) {
  const uint64_t spread = static_cast<uint64_t>(ttl_ms / 10);
  return std::to_string(ttl_ms + static_cast<int64_t>(spread > 0 ? Random() % (spread + 1) : 0));
}

std::string Origin() {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(Random()));
  return hex;
}

RedisTier::Lookup Parse(const redis::Reply& reply, bool* bad) {
  RedisTier::Lookup out;
  if (reply.type != redis::Reply::Type::kString) {
    *bad = !reply.nil();
    return out;
  }
  std::string_view v = reply.str;
  if (v.empty()) {
    *bad = true;
  } else if (v[0] == kValue) {
    out.kind = RedisTier::Lookup::Kind::kValue;
    out.bytes.assign(v.substr(1));
  } else if (v[0] == kNotFound) {
    out.kind = RedisTier::Lookup::Kind::kNotFound;
    out.bytes.assign(v.substr(1));
  } else if (v[0] != kTombstone) {
    *bad = true;  // not ours: read the store
  }
  return out;
}

}  // namespace

RedisTier::RedisTier(RedisCacheOptions options, redis::Client& redis)
    : options_(std::move(options)),
      redis_(redis),
      key_prefix_(options_.prefix + options_.name + ":"),
      channel_(key_prefix_ + "invalidate"),
      origin_(Origin()),
      counters_(CountersOf(*options_.metrics, options_.name, "redis")),
      errors_(ErrorsOf(*options_.metrics, options_.name)) {}

std::shared_ptr<RedisTier> RedisTier::Create(RedisCacheOptions options, redis::Client& redis,
                                             Listener listener) {
  std::shared_ptr<RedisTier> tier(new RedisTier(std::move(options), redis));
  tier->listener_ = std::move(listener);
  std::weak_ptr<RedisTier> weak = tier;
  redis.Subscribe(
      tier->channel_,
      [weak](std::string_view, std::string_view message) {
        if (auto t = weak.lock()) t->OnMessage(message);
      },
      [weak] {
        if (auto t = weak.lock()) t->OnSubscribed();
      });
  return tier;
}

void RedisTier::Get(const std::string& key, LookupCallback done) {
  redis_.Command({"GET", key_prefix_ + key}, [self = shared_from_this(), done = std::move(done)](
                                                 core::StatusOr<redis::Reply> reply) mutable {
    if (!reply.ok()) {
      self->errors_.Inc();
      return std::move(done)(reply.status());
    }
    bool bad = false;
    Lookup found = Parse(*reply, &bad);
    if (bad) self->errors_.Inc();
    std::move(done)(std::move(found));
  });
}

void RedisTier::GetMany(const std::vector<std::string>& keys, ManyCallback done) {
  std::vector<std::string> args{"MGET"};
  for (const std::string& k : keys) args.push_back(key_prefix_ + k);
  redis_.Command(std::move(args), [self = shared_from_this(), n = keys.size(),
                                   done = std::move(done)](
                                      core::StatusOr<redis::Reply> reply) mutable {
    if (reply.ok() && (reply->type != redis::Reply::Type::kArray || reply->elements.size() != n)) {
      reply = absl::InternalError("redis: MGET answered no array of the keys");
    }
    if (!reply.ok()) {
      self->errors_.Inc();
      return std::move(done)(reply.status());
    }
    std::vector<Lookup> found;
    found.reserve(n);
    for (const redis::Reply& r : reply->elements) {
      bool bad = false;
      found.push_back(Parse(r, &bad));
      if (bad) self->errors_.Inc();
    }
    std::move(done)(std::move(found));
  });
}

void RedisTier::Fill(const std::string& key, const std::string& value) {
  if (!redis_.connected()) return;  // the next load fills it
  redis_.Command({"SET", key_prefix_ + key, kValue + value, "PX", Jittered(options_.ttl_ms), "NX"},
                 [](core::StatusOr<redis::Reply>) {});
}

void RedisTier::FillNotFound(const std::string& key, std::string_view message) {
  if (options_.null_ttl_ms <= 0 || !redis_.connected()) return;
  redis_.Command({"SET", key_prefix_ + key, kNotFound + std::string(message), "PX",
                  Jittered(options_.null_ttl_ms), "NX"},
                 [](core::StatusOr<redis::Reply>) {});
}

void RedisTier::Put(const std::string& key, const std::string& value, int64_t ttl_ms) {
  // Alive to the end of this call: the SET's answer may run its callback,
  // and the caller go on to drop the last owner, before Publish below.
  const auto self = shared_from_this();
  redis_.Command({"SET", key_prefix_ + key, kValue + value, "PX",
                  ttl_ms > 0 ? std::to_string(ttl_ms) : Jittered(options_.ttl_ms)},
                 [self = shared_from_this(), key](core::StatusOr<redis::Reply> r) {
                   // The old value may still be in Redis: it must not outlive
                   // what this node answers.
                   if (!r.ok()) self->Pending(key);
                 });
  Publish(key);
}

void RedisTier::Invalidate(const std::string& key, absl::AnyInvocable<void() &&> done) {
  // As in Put: `done` may run (on Redis's thread) and its caller destroy
  // the cache before Publish below; found by ASan in cached_store_test.
  const auto self = shared_from_this();
  redis_.Command({"SET", key_prefix_ + key, std::string(1, kTombstone), "PX",
                  std::to_string(options_.tombstone_ms)},
                 [self = shared_from_this(), key,
                  done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
                   if (!r.ok()) self->Pending(key);
                   std::move(done)();
                 });
  Publish(key);
}

void RedisTier::Publish(const std::string& key) {
  redis_.Command({"PUBLISH", channel_, origin_ + " " + key},
                 [self = shared_from_this(), key](core::StatusOr<redis::Reply> r) {
                   if (!r.ok()) self->Pending(key);
                 });
}

void RedisTier::Pending(const std::string& key) {
  errors_.Inc();
  std::lock_guard lock(mu_);
  if (pending_.size() < options_.max_pending_invalidations) pending_.insert(key);
}

size_t RedisTier::pending_invalidations() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void RedisTier::OnMessage(std::string_view message) {
  size_t space = message.find(' ');
  if (space == std::string_view::npos || message.substr(0, space) == origin_) return;
  if (listener_.drop) listener_.drop(message.substr(space + 1));
}

// At first and after every reconnect of the subscriber: what was published
// in between was missed, so this node's memory starts over; invalidations
// that did not reach Redis go now.
void RedisTier::OnSubscribed() {
  if (subscribed_once_.exchange(true) && listener_.drop_all) listener_.drop_all();
  std::unordered_set<std::string> pending;
  {
    std::lock_guard lock(mu_);
    pending.swap(pending_);
  }
  for (const std::string& key : pending) Invalidate(key, [] {});
}

}  // namespace mpim::cache
