// FriendService on a Store.
#pragma once

#include "service/friend/block_cache.h"
#include "service/friend_service.h"
#include "store/store.h"

namespace mpim::service {

class FriendServiceImpl final : public FriendService {
 public:
  // `page_max`: the protocol's page limit (limits.page_max).
  // `presence` (may be null) fills in online and last_seen.
  // `blocks` (may be null) is told of every block and unblock.
  FriendServiceImpl(store::Store& store, int page_max, const route::Presence* presence = nullptr,
                    BlockCache* blocks = nullptr)
      : store_(store), page_max_(page_max), presence_(presence), blocks_(blocks) {}

  void List(int64_t user_id, int64_t after, int limit, core::Callback<FriendPage> done) override;
  void Request(int64_t from, int64_t to, core::Callback<FriendOutcome> done) override;
  void Remove(int64_t user_id, int64_t other, core::DoneCallback done) override;
  void Requests(int64_t user_id, int limit, core::Callback<FriendRequests> done) override;
  void Block(int64_t blocker, int64_t blocked, core::DoneCallback done) override;
  void Unblock(int64_t blocker, int64_t blocked, core::DoneCallback done) override;
  void ListBlocked(int64_t blocker, int64_t after, int limit,
                   core::Callback<FriendPage> done) override;

 private:
  struct Ref {
    int64_t user_id;
    int64_t since;
  };
  // Looks up the profiles of `refs` and keeps their order; users that vanished
  // meanwhile are skipped.
  void Join(std::vector<Ref> refs, core::Callback<std::vector<FriendEntry>> done);
  // Join, as a page.
  void JoinPage(std::vector<Ref> refs, bool has_more, core::Callback<FriendPage> done);
  core::Status CheckLimit(int limit) const;
  // After a block or unblock committed (or failed): `then` once no node's
  // send path answers the old state.
  void BlocksChanged(int64_t blocker, int64_t blocked, absl::AnyInvocable<void() &&> then);
  // A block's second half: the friendship and the requests both ways go.
  void EndFriendship(int64_t blocker, int64_t blocked, core::DoneCallback done);

  store::Store& store_;
  const int page_max_;
  const route::Presence* presence_;
  BlockCache* blocks_;
};

}  // namespace mpim::service
