// Member lists of groups up to the fan-out threshold, kept in memory so that
// a send to a small group does not read its members from the store every
// time. Every membership change (GroupService) invalidates its group.
//
// Thread-safe. A load racing with an invalidation is not stored (each group
// has a generation number that Invalidate bumps).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/callback.h"
#include "store/store.h"

namespace mpim::service {

using MemberList = std::shared_ptr<const std::vector<int64_t>>;

class MemberCache {
 public:
  // Groups with more than `max_members` are "large": Get answers null.
  MemberCache(store::Store& store, int64_t max_members) : store_(store), max_(max_members) {}

  // The member ids (ascending), or null for a large group. not_found for
  // an unknown group.
  void Get(int64_t group_id, core::Callback<MemberList> done);
  void Invalidate(int64_t group_id);

 private:
  struct Entry {
    uint64_t generation = 0;
    bool loaded = false;
    MemberList members;  // null: large
  };
  void Load(int64_t group_id, uint64_t generation, std::shared_ptr<std::vector<int64_t>> acc,
            int64_t after, core::Callback<MemberList> done);

  store::Store& store_;
  const int64_t max_;
  std::mutex mu_;  // guards entries_
  std::unordered_map<int64_t, Entry> entries_;
};

}  // namespace mpim::service
