// Presence for one process: online counts and last_seen in memory, sharded
// 32 ways; followers in route/followers.h. last_seen is also written to the store when a
// connection ends (best effort), so it survives restarts.
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>

#include "route/followers.h"
#include "route/presence.h"
#include "store/user_store.h"

namespace mpim::route {

class LocalPresence final : public Presence {
 public:
  LocalPresence(LastSeenSink last_seen, Listener listener)
      : last_seen_(std::move(last_seen)), listener_(std::move(listener)) {}

  void Connected(int64_t user, int64_t now_ms) override;
  void Disconnected(int64_t user, int64_t now_ms) override;
  UserPresence Get(int64_t user) const override;
  void Subscribe(ConnId conn, const std::vector<int64_t>& users) override;
  void Unsubscribe(ConnId conn, const std::vector<int64_t>& users) override;

 private:
  // Tells the followers of `user`, if any.
  void Notify(int64_t user, bool online, int64_t last_seen);

  static constexpr size_t kShards = 32;
  struct Shard {
    mutable std::mutex mu;  // guards the maps below
    std::unordered_map<int64_t, size_t> connections;  // online users only
    std::unordered_map<int64_t, int64_t> last_seen;
  };
  Shard& ShardOf(int64_t user) const { return shards_[static_cast<uint64_t>(user) % kShards]; }

  LastSeenSink last_seen_;
  const Listener listener_;
  mutable std::array<Shard, kShards> shards_;
  Followers followers_;
};

}  // namespace mpim::route
