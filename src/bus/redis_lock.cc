#include "bus/redis_lock.h"

#include <charconv>

#include "redis/client.h"

namespace mpim::bus {
namespace {

// ARGV: key, fence key, ttl ms. The token (a string), or nil when held.
constexpr const char* kAcquire = R"lua(
if redis.call('EXISTS', ARGV[1]) == 1 then return false end
local last = tonumber(redis.call('GET', ARGV[2]) or '0')
local now = redis.call('TIME')
local t = math.max(last + 1, tonumber(now[1]) * 1000000 + tonumber(now[2]))
local s = string.format('%.0f', t)
redis.call('SET', ARGV[2], s)
redis.call('SET', ARGV[1], s, 'PX', ARGV[3])
return s
)lua";

// ARGV: key, token, ttl ms. 1 when renewed.
constexpr const char* kRenew = R"lua(
if redis.call('GET', ARGV[1]) == ARGV[2] then
  redis.call('PEXPIRE', ARGV[1], ARGV[3])
  return 1
end
return 0
)lua";

// ARGV: key, token.
constexpr const char* kRelease = R"lua(
if redis.call('GET', ARGV[1]) == ARGV[2] then redis.call('DEL', ARGV[1]) end
return 0
)lua";

core::Status NotALock(const redis::Reply& r) {
  return absl::InternalError("unexpected reply to a lock script (type " +
                             std::to_string(static_cast<int>(r.type)) + ")");
}

}  // namespace

core::StatusOr<std::unique_ptr<RedisLock>> RedisLock::Open(const redis::ClientOptions& options,
                                                           std::string prefix) {
  auto client = redis::Client::Start(options);
  if (!client.ok()) return client.status();
  return std::unique_ptr<RedisLock>(new RedisLock(std::move(*client), std::move(prefix)));
}

RedisLock::RedisLock(std::unique_ptr<redis::Client> client, std::string prefix)
    : client_(std::move(client)), prefix_(std::move(prefix)) {}

RedisLock::~RedisLock() = default;

void RedisLock::TryAcquire(std::string name, std::chrono::milliseconds ttl,
                           core::Callback<std::optional<uint64_t>> done) {
  client_->Command({"EVAL", kAcquire, "0", prefix_ + "lock:" + name, prefix_ + "lock-fence:" + name,
                    std::to_string(std::max<int64_t>(1, ttl.count()))},
                   [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
                     if (!r.ok()) return std::move(done)(r.status());
                     if (r->nil()) return std::move(done)(std::optional<uint64_t>());
                     uint64_t token = 0;
                     const std::string& s = r->str;
                     auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), token);
                     if (r->type != redis::Reply::Type::kString || ec != std::errc() ||
                         ptr != s.data() + s.size() || token == 0) {
                       return std::move(done)(NotALock(*r));
                     }
                     std::move(done)(std::optional<uint64_t>(token));
                   });
}

void RedisLock::Renew(std::string name, uint64_t token, std::chrono::milliseconds ttl,
                      core::Callback<bool> done) {
  client_->Command({"EVAL", kRenew, "0", prefix_ + "lock:" + name, std::to_string(token),
                    std::to_string(std::max<int64_t>(1, ttl.count()))},
                   [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
                     if (!r.ok()) return std::move(done)(r.status());
                     if (r->type != redis::Reply::Type::kInteger) {
                       return std::move(done)(NotALock(*r));
                     }
                     std::move(done)(r->integer == 1);
                   });
}

void RedisLock::Release(std::string name, uint64_t token, core::DoneCallback done) {
  client_->Command({"EVAL", kRelease, "0", prefix_ + "lock:" + name, std::to_string(token)},
                   [done = std::move(done)](core::StatusOr<redis::Reply> r) mutable {
                     std::move(done)(r.ok() ? absl::OkStatus() : r.status());
                   });
}

}  // namespace mpim::bus
