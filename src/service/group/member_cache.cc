#include "service/group/member_cache.h"

#include <optional>

#include "service/errors.h"

namespace mpim::service {

void MemberCache::Get(int64_t group_id, core::Callback<MemberList> done) {
  uint64_t generation = 0;
  std::optional<MemberList> cached;
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[group_id];
    if (e.loaded) {
      cached = e.members;
    } else {
      generation = e.generation;
    }
  }
  // Callbacks run without mu_ held: they may call back into the cache.
  if (cached) return std::move(done)(std::move(*cached));
  Load(group_id, generation, std::make_shared<std::vector<int64_t>>(), 0, std::move(done));
}

void MemberCache::Invalidate(int64_t group_id) {
  std::lock_guard lock(mu_);
  Entry& e = entries_[group_id];
  ++e.generation;
  e.loaded = false;
  e.members.reset();
}

void MemberCache::Load(int64_t group_id, uint64_t generation,
                       std::shared_ptr<std::vector<int64_t>> acc, int64_t after,
                       core::Callback<MemberList> done) {
  store_.groups().ListMembers(
      group_id, after, store::kMaxPageLimit,
      [this, group_id, generation, acc,
       done = std::move(done)](core::StatusOr<store::Page<store::GroupMember>> page) mutable {
        if (!page.ok()) {
          if (page.status().code() == absl::StatusCode::kNotFound) {
            return std::move(done)(page.status());
          }
          return std::move(done)(StorageError(page.status()));
        }
        for (const auto& m : page->items) acc->push_back(m.user_id);
        bool large = static_cast<int64_t>(acc->size()) > max_;
        if (page->has_more && !large) {
          return Load(group_id, generation, acc, page->items.back().user_id, std::move(done));
        }
        MemberList result = large ? nullptr : MemberList(std::move(acc));
        {
          std::lock_guard lock(mu_);
          Entry& e = entries_[group_id];
          if (e.generation == generation) {
            e.loaded = true;
            e.members = result;
          }
        }
        std::move(done)(result);
      });
}

}  // namespace mpim::service
