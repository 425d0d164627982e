// The live sessions of this process by connection id, for the deliverer.
// Thread-safe; sharded; holds weak references (a session's life is its
// connection's).
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace mpim::gateway {

class WsSession;

class SessionRegistry {
 public:
  void Add(uint64_t conn_id, std::weak_ptr<WsSession> session) {
    Shard& s = ShardOf(conn_id);
    std::lock_guard lock(s.mu);
    s.sessions[conn_id] = std::move(session);
  }
  void Remove(uint64_t conn_id) {
    Shard& s = ShardOf(conn_id);
    std::lock_guard lock(s.mu);
    s.sessions.erase(conn_id);
  }
  std::shared_ptr<WsSession> Find(uint64_t conn_id) const {
    Shard& s = ShardOf(conn_id);
    std::lock_guard lock(s.mu);
    auto it = s.sessions.find(conn_id);
    return it == s.sessions.end() ? nullptr : it->second.lock();
  }
  // Every session still open.
  std::vector<std::shared_ptr<WsSession>> All() const {
    std::vector<std::shared_ptr<WsSession>> all;
    for (const Shard& s : shards_) {
      std::lock_guard lock(s.mu);
      for (const auto& [id, weak] : s.sessions) {
        if (auto session = weak.lock()) all.push_back(std::move(session));
      }
    }
    return all;
  }

 private:
  static constexpr size_t kShards = 64;
  struct Shard {
    mutable std::mutex mu;  // guards sessions
    std::unordered_map<uint64_t, std::weak_ptr<WsSession>> sessions;
  };
  Shard& ShardOf(uint64_t conn_id) const { return shards_[conn_id % kShards]; }
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace mpim::gateway
