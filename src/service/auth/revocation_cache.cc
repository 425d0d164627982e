#include "service/auth/revocation_cache.h"

#include <algorithm>

namespace mpim::service::auth {

void RevocationCache::Add(int64_t session_id, int64_t forget_after_s) {
  Shard& s = shards_[static_cast<uint64_t>(session_id) % kShards];
  std::lock_guard lock(s.mu);
  int64_t& until = s.until[session_id];
  until = std::max(until, forget_after_s);
}

bool RevocationCache::IsRevoked(int64_t session_id) const {
  const Shard& s = shards_[static_cast<uint64_t>(session_id) % kShards];
  std::lock_guard lock(s.mu);
  return s.until.count(session_id) != 0;
}

void RevocationCache::Prune(int64_t now_s) {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    std::erase_if(s.until, [now_s](const auto& e) { return e.second < now_s; });
  }
}

size_t RevocationCache::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.until.size();
  }
  return n;
}

}  // namespace mpim::service::auth
