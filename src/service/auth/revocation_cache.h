// Sessions revoked recently, so every authenticated request can refuse the
// tokens of a logged-out session without a store read.
//
// An access token of a revoked session was issued before the revocation (no
// new ones are issued after), so it expires at most access_ttl after it: an
// entry is needed only that long, and the set stays small. Loaded at start
// from the store (sessions revoked within the last access_ttl); in a cluster
// other nodes' revocations will arrive through the bus.
//
// Thread-safe; sharded, with a short mutex per shard.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace mpim::service::auth {

class RevocationCache {
 public:
  // Remembers `session_id` as revoked until `forget_after_s`.
  void Add(int64_t session_id, int64_t forget_after_s);
  bool IsRevoked(int64_t session_id) const;
  // Drops entries past their time.
  void Prune(int64_t now_s);
  size_t size() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;  // guards until
    std::unordered_map<int64_t, int64_t> until;
  };
  std::array<Shard, kShards> shards_;
};

}  // namespace mpim::service::auth
