#include "service/group/member_cache.h"

#include "cache/local_cache.h"
#include "service/errors.h"

namespace mpim::service {

MemberCache::MemberCache(store::Store& store, int64_t max_members,
                         std::unique_ptr<MemberListCache> cache)
    : store_(store), max_(max_members), cache_(std::move(cache)) {}

MemberCache::MemberCache(store::Store& store, int64_t max_members)
    : MemberCache(store, max_members, std::make_unique<cache::LocalCache<int64_t, MemberList>>()) {}

void MemberCache::Get(int64_t group_id, core::Callback<MemberList> done) {
  cache_->Get(
      group_id,
      [this, group_id](core::Callback<MemberList> loaded) {
        Load(group_id, std::make_shared<std::vector<int64_t>>(), 0, std::move(loaded));
      },
      std::move(done));
}

void MemberCache::Load(int64_t group_id, std::shared_ptr<std::vector<int64_t>> acc, int64_t after,
                       core::Callback<MemberList> done) {
  store_.groups().ListMembers(
      group_id, after, store::kMaxPageLimit,
      [this, group_id, acc,
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
          return Load(group_id, acc, page->items.back().user_id, std::move(done));
        }
        std::move(done)(large ? nullptr : MemberList(std::move(acc)));
      });
}

}  // namespace mpim::service
