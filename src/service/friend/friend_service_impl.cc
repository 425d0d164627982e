#include "service/friend/friend_service_impl.h"

#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "service/errors.h"
#include "service/user/user_service_impl.h"

namespace mpim::service {
namespace {

core::Status Self() { return absl::InvalidArgumentError("you cannot do that to yourself"); }

// not_found / invalid_argument / already_exists pass through with `what`;
// storage trouble becomes unavailable.
core::Status Mapped(const core::Status& s, const std::string& not_found,
                    const std::string& exists = "") {
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      return absl::NotFoundError(not_found);
    case absl::StatusCode::kAlreadyExists:
      return absl::AlreadyExistsError(exists.empty() ? std::string(s.message()) : exists);
    case absl::StatusCode::kInvalidArgument:
      return s;
    default:
      return StorageError(s);
  }
}

std::string UserNotFound(int64_t id) { return "user " + std::to_string(id) + " not found"; }

}  // namespace

core::Status FriendServiceImpl::CheckLimit(int limit) const {
  if (limit < 1 || limit > page_max_) {
    return absl::InvalidArgumentError("limit: must be between 1 and " + std::to_string(page_max_));
  }
  return absl::OkStatus();
}

void FriendServiceImpl::Join(std::vector<Ref> refs, core::Callback<std::vector<FriendEntry>> done) {
  if (refs.empty()) return std::move(done)(std::vector<FriendEntry>{});
  std::vector<int64_t> ids;
  ids.reserve(refs.size());
  for (const Ref& r : refs) ids.push_back(r.user_id);
  store_.users().GetMany(ids, [this, refs = std::move(refs), done = std::move(done)](
                                  core::StatusOr<std::vector<store::User>> users) mutable {
    if (!users.ok()) return std::move(done)(StorageError(users.status()));
    std::unordered_map<int64_t, const store::User*> by_id;
    for (const auto& u : *users) by_id[u.user_id] = &u;
    std::vector<FriendEntry> out;
    out.reserve(refs.size());
    for (const Ref& r : refs) {
      if (auto it = by_id.find(r.user_id); it != by_id.end()) {
        FriendEntry entry{ToProfile(*it->second), r.since};
        DecoratePresence(presence_, entry.user);
        out.push_back(std::move(entry));
      }
    }
    std::move(done)(std::move(out));
  });
}

void FriendServiceImpl::JoinPage(std::vector<Ref> refs, bool has_more,
                                 core::Callback<FriendPage> done) {
  Join(std::move(refs), [has_more, done = std::move(done)](
                            core::StatusOr<std::vector<FriendEntry>> entries) mutable {
    if (!entries.ok()) return std::move(done)(entries.status());
    std::move(done)(FriendPage{std::move(*entries), has_more});
  });
}

void FriendServiceImpl::List(int64_t user_id, int64_t after, int limit,
                             core::Callback<FriendPage> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  store_.friends().List(
      user_id, after, limit,
      [this, done = std::move(done)](core::StatusOr<store::Page<store::Friend>> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        std::vector<Ref> refs;
        for (const auto& f : page->items) refs.push_back({f.user_id, f.since});
        JoinPage(std::move(refs), page->has_more, std::move(done));
      });
}

void FriendServiceImpl::Request(int64_t from, int64_t to, core::Callback<FriendOutcome> done) {
  if (from == to) return std::move(done)(Self());
  // Neither may block the other; then ask (or accept).
  store_.friends().IsBlocked(
      to, from,
      [this, from, to, done = std::move(done)](core::StatusOr<bool> blocked_by_them) mutable {
        if (!blocked_by_them.ok()) return std::move(done)(StorageError(blocked_by_them.status()));
        if (*blocked_by_them) {
          return std::move(done)(
              absl::PermissionDeniedError("this user does not accept requests from you"));
        }
        store_.friends().IsBlocked(
            from, to,
            [this, from, to, done = std::move(done)](core::StatusOr<bool> blocked_by_me) mutable {
              if (!blocked_by_me.ok()) return std::move(done)(StorageError(blocked_by_me.status()));
              if (*blocked_by_me) {
                return std::move(done)(
                    absl::PermissionDeniedError("you block this user; unblock first"));
              }
              store_.friends().Request(
                  from, to,
                  [to,
                   done = std::move(done)](core::StatusOr<store::FriendRequestOutcome> r) mutable {
                    if (!r.ok()) {
                      return std::move(done)(Mapped(r.status(), UserNotFound(to),
                                                    "already friends, or a request is pending"));
                    }
                    std::move(done)(*r == store::FriendRequestOutcome::kAccepted
                                        ? FriendOutcome::kFriends
                                        : FriendOutcome::kRequested);
                  });
            });
      });
}

void FriendServiceImpl::Remove(int64_t user_id, int64_t other, core::DoneCallback done) {
  if (user_id == other) return std::move(done)(Self());
  // A friendship, else my request to them (cancel), else theirs to me (decline).
  auto shared_done = std::make_shared<core::DoneCallback>(std::move(done));
  auto finish = [shared_done, other](core::Status s) {
    if (s.ok()) return std::move(*shared_done)(absl::OkStatus());
    std::move (*shared_done)(
        Mapped(s, "no friendship or friend request with user " + std::to_string(other)));
  };
  store_.friends().Remove(user_id, other, [this, user_id, other, finish](core::Status s) mutable {
    if (s.code() != absl::StatusCode::kNotFound) return finish(s);
    store_.friends().DeleteRequest(
        user_id, other, [this, user_id, other, finish](core::Status s2) mutable {
          if (s2.code() != absl::StatusCode::kNotFound) return finish(s2);
          store_.friends().DeleteRequest(other, user_id, std::move(finish));
        });
  });
}

void FriendServiceImpl::Requests(int64_t user_id, int limit, core::Callback<FriendRequests> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  store_.friends().ListRequests(
      user_id, /*incoming=*/true, 0, limit,
      [this, user_id, limit,
       done = std::move(done)](core::StatusOr<store::Page<store::FriendRequest>> in) mutable {
        if (!in.ok()) return std::move(done)(StorageError(in.status()));
        std::vector<Ref> incoming;
        for (const auto& r : in->items) incoming.push_back({r.from_user, r.created_at});
        store_.friends().ListRequests(
            user_id, /*incoming=*/false, 0, limit,
            [this, incoming = std::move(incoming), done = std::move(done)](
                core::StatusOr<store::Page<store::FriendRequest>> out) mutable {
              if (!out.ok()) return std::move(done)(StorageError(out.status()));
              // A user is never in both lists (a crossing request is an accept),
              // so the joined entries split by id.
              std::unordered_set<int64_t> incoming_ids;
              std::vector<Ref> all = incoming;
              for (const Ref& r : incoming) incoming_ids.insert(r.user_id);
              for (const auto& r : out->items) all.push_back({r.to_user, r.created_at});
              Join(std::move(all), [incoming_ids = std::move(incoming_ids), done = std::move(done)](
                                       core::StatusOr<std::vector<FriendEntry>> entries) mutable {
                if (!entries.ok()) return std::move(done)(entries.status());
                FriendRequests result;
                for (auto& e : *entries) {
                  (incoming_ids.count(e.user.user_id) ? result.incoming : result.outgoing)
                      .push_back(std::move(e));
                }
                std::move(done)(std::move(result));
              });
            });
      });
}

void FriendServiceImpl::Block(int64_t blocker, int64_t blocked, core::DoneCallback done) {
  if (blocker == blocked) return std::move(done)(Self());
  store_.friends().Block(
      blocker, blocked, [this, blocker, blocked, done = std::move(done)](core::Status s) mutable {
        BlocksChanged(blocker, blocked,
                      [this, blocker, blocked, s = std::move(s), done = std::move(done)]() mutable {
                        if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
                          return std::move(done)(Mapped(s, UserNotFound(blocked)));
                        }
                        EndFriendship(blocker, blocked, std::move(done));
                      });
      });
}

// Each step may find nothing to remove.
void FriendServiceImpl::EndFriendship(int64_t blocker, int64_t blocked, core::DoneCallback done) {
  auto ignore_missing = [](const core::Status& st) {
    return st.ok() || st.code() == absl::StatusCode::kNotFound;
  };
  store_.friends().Remove(
      blocker, blocked,
      [this, blocker, blocked, ignore_missing, done = std::move(done)](core::Status s1) mutable {
        if (!ignore_missing(s1)) return std::move(done)(StorageError(s1));
        store_.friends().DeleteRequest(
            blocker, blocked,
            [this, blocker, blocked, ignore_missing,
             done = std::move(done)](core::Status s2) mutable {
              if (!ignore_missing(s2)) return std::move(done)(StorageError(s2));
              store_.friends().DeleteRequest(
                  blocked, blocker,
                  [ignore_missing, done = std::move(done)](core::Status s3) mutable {
                    if (!ignore_missing(s3)) return std::move(done)(StorageError(s3));
                    std::move(done)(absl::OkStatus());
                  });
            });
      });
}

void FriendServiceImpl::BlocksChanged(int64_t blocker, int64_t blocked,
                                      absl::AnyInvocable<void() &&> then) {
  if (blocks_ == nullptr) return std::move(then)();
  blocks_->Invalidate(blocker, blocked, std::move(then));
}

void FriendServiceImpl::Unblock(int64_t blocker, int64_t blocked, core::DoneCallback done) {
  if (blocker == blocked) return std::move(done)(Self());
  store_.friends().Unblock(
      blocker, blocked, [this, blocker, blocked, done = std::move(done)](core::Status s) mutable {
        BlocksChanged(
            blocker, blocked, [blocked, s = std::move(s), done = std::move(done)]() mutable {
              if (s.ok()) return std::move(done)(s);
              std::move(done)(Mapped(s, "user " + std::to_string(blocked) + " is not blocked"));
            });
      });
}

void FriendServiceImpl::ListBlocked(int64_t blocker, int64_t after, int limit,
                                    core::Callback<FriendPage> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  store_.friends().ListBlocked(
      blocker, after, limit,
      [this, done = std::move(done)](core::StatusOr<store::Page<store::BlockEntry>> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        std::vector<Ref> refs;
        for (const auto& b : page->items) refs.push_back({b.user_id, b.since});
        JoinPage(std::move(refs), page->has_more, std::move(done));
      });
}

}  // namespace mpim::service
