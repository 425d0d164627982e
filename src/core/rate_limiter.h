// Token buckets keyed by user, address or username: `rate` tokens per second
// up to `burst`. Used for login attempts and sends.
//
// Thread-safe. Keys are spread over shards, each with its own short mutex, so
// io threads rarely contend. Memory is bounded by the keys active recently:
// a bucket that has refilled completely is indistinguishable from a new one,
// so sweeps (every `kSweepEvery` calls on a shard) drop such buckets.
// Time is passed in (steady milliseconds), so tests control it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>

namespace mpim::core {

template <typename Key, typename Hash = std::hash<Key>>
class KeyedRateLimiter {
 public:
  // rate_per_sec > 0, burst >= 1.
  KeyedRateLimiter(double rate_per_sec, double burst) : rate_(rate_per_sec), burst_(burst) {}

  // A new rate and burst from now on (run-time configuration); buckets keep
  // their tokens, capped at the new burst as they refill.
  void SetRate(double rate_per_sec, double burst) {
    rate_.store(rate_per_sec, std::memory_order_relaxed);
    burst_.store(burst, std::memory_order_relaxed);
  }

  // Takes one token for `key`. Returns 0 when allowed; otherwise the
  // milliseconds until a token is available (nothing is taken).
  int64_t TryAcquire(const Key& key, int64_t now_ms) {
    Shard& shard = shards_[Hash{}(key) % kShards];
    std::lock_guard lock(shard.mu);
    if (++shard.calls % kSweepEvery == 0) Sweep(shard, now_ms);
    auto [it, inserted] = shard.buckets.try_emplace(key, Bucket{burst(), now_ms});
    Bucket& b = it->second;
    if (!inserted) Refill(b, now_ms);
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return 0;
    }
    return std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1.0 - b.tokens) * 1000.0 / rate())));
  }

  // Buckets currently held (for tests and metrics).
  size_t size() const {
    size_t n = 0;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      n += s.buckets.size();
    }
    return n;
  }

 private:
  static constexpr size_t kShards = 16;
  static constexpr uint64_t kSweepEvery = 1024;

  struct Bucket {
    double tokens;
    int64_t updated_ms;
  };
  struct Shard {
    mutable std::mutex mu;  // guards buckets and calls
    std::unordered_map<Key, Bucket, Hash> buckets;
    uint64_t calls = 0;
  };

  void Refill(Bucket& b, int64_t now_ms) const {
    if (now_ms > b.updated_ms) {
      b.tokens = std::min(burst(), b.tokens + (now_ms - b.updated_ms) * rate() / 1000.0);
      b.updated_ms = now_ms;
    }
  }

  void Sweep(Shard& shard, int64_t now_ms) const {
    for (auto it = shard.buckets.begin(); it != shard.buckets.end();) {
      Refill(it->second, now_ms);
      if (it->second.tokens >= burst()) {
        it = shard.buckets.erase(it);
      } else {
        ++it;
      }
    }
  }

  double rate() const { return rate_.load(std::memory_order_relaxed); }
  double burst() const { return burst_.load(std::memory_order_relaxed); }

  std::atomic<double> rate_;
  std::atomic<double> burst_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mpim::core
