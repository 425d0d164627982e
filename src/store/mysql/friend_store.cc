#include "store/mysql/friend_store.h"

#include <algorithm>
#include <string>

#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {
namespace {

// Request decides from what is there, and two nodes deciding for one pair at
// once (crossing requests a -> b and b -> a) would both see no request and
// both insert one. So Request locks one row per pair, the user row of the
// lower id, and Requests for a pair take turns as with SQLite's one writer.
// (Unknown users lock nothing; the insert then fails on the foreign key.)
core::Status LockPair(Connection& c, int64_t a, int64_t b) {
  return c.QueryInt("SELECT user_id FROM users WHERE user_id = ? FOR UPDATE", std::min(a, b))
      .status();
}

}  // namespace

void MysqlFriendStore::Request(int64_t from_user, int64_t to_user,
                               Callback<FriendRequestOutcome> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<FriendRequestOutcome>>(
      [from_user, to_user, now](Connection& c) -> core::StatusOr<FriendRequestOutcome> {
        MPIM_RETURN_IF_ERROR(CheckPair(from_user, to_user));
        MPIM_RETURN_IF_ERROR(LockPair(c, from_user, to_user));
        MPIM_ASSIGN_OR_RETURN(bool friends, Exists(c, kAreFriends, from_user, to_user));
        if (friends) return absl::AlreadyExistsError("already friends");
        MPIM_ASSIGN_OR_RETURN(bool asked, Exists(c, kRequestExists, from_user, to_user));
        if (asked) return absl::AlreadyExistsError("friend request already pending");
        // SQLite reads whether `to` asked `from` and then deletes the request.
        // Here the DELETE is the test: DeleteRequest does not take the pair
        // lock, and a decline committed by another node meanwhile must leave
        // nothing to accept.
        MPIM_RETURN_IF_ERROR(c.Exec(
            "DELETE FROM friend_requests WHERE from_user = ? AND to_user = ?", to_user, from_user));
        if (c.Changes() == 0) {
          MPIM_RETURN_IF_ERROR(UnknownUsers(
              c.Exec(
                  "INSERT INTO friend_requests (from_user, to_user, created_at) VALUES (?, ?, ?)",
                  from_user, to_user, now),
              from_user, to_user));
          return FriendRequestOutcome::kRequested;
        }
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO friendships (user_id, friend_id, since) VALUES (?, ?, ?),"
                   " (?, ?, ?)",
                   from_user, to_user, now, to_user, from_user, now));
        return FriendRequestOutcome::kAccepted;
      },
      std::move(done));
}

void MysqlFriendStore::DeleteRequest(int64_t from_user, int64_t to_user, DoneCallback done) {
  exec_.Write<core::Status>(
      [from_user, to_user](Connection& c) { return DeleteFriendRequest(c, from_user, to_user); },
      std::move(done));
}

void MysqlFriendStore::ListRequests(int64_t user_id, bool incoming, int64_t after_user, int limit,
                                    Callback<Page<FriendRequest>> done) {
  exec_.Read<core::StatusOr<Page<FriendRequest>>>(
      [=](Connection& c) { return ListFriendRequests(c, user_id, incoming, after_user, limit); },
      std::move(done));
}

void MysqlFriendStore::Remove(int64_t user_a, int64_t user_b, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_a, user_b](Connection& c) { return RemoveFriends(c, user_a, user_b); },
      std::move(done));
}

void MysqlFriendStore::AreFriends(int64_t user_a, int64_t user_b, Callback<bool> done) {
  exec_.Read<core::StatusOr<bool>>(
      [user_a, user_b](Connection& c) { return Exists(c, kAreFriends, user_a, user_b); },
      std::move(done));
}

void MysqlFriendStore::List(int64_t user_id, int64_t after_user, int limit,
                            Callback<Page<Friend>> done) {
  exec_.Read<core::StatusOr<Page<Friend>>>(
      [=](Connection& c) { return ListFriends(c, user_id, after_user, limit); }, std::move(done));
}

void MysqlFriendStore::Block(int64_t blocker, int64_t blocked, DoneCallback done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::Status>(
      [blocker, blocked, now](Connection& c) { return BlockUser(c, blocker, blocked, now); },
      std::move(done));
}

void MysqlFriendStore::Unblock(int64_t blocker, int64_t blocked, DoneCallback done) {
  exec_.Write<core::Status>(
      [blocker, blocked](Connection& c) { return UnblockUser(c, blocker, blocked); },
      std::move(done));
}

void MysqlFriendStore::IsBlocked(int64_t blocker, int64_t blocked, Callback<bool> done) {
  exec_.Read<core::StatusOr<bool>>(
      [blocker, blocked](Connection& c) { return Exists(c, kIsBlocked, blocker, blocked); },
      std::move(done));
}

void MysqlFriendStore::ListBlocked(int64_t blocker, int64_t after_user, int limit,
                                   Callback<Page<BlockEntry>> done) {
  exec_.Read<core::StatusOr<Page<BlockEntry>>>(
      [=](Connection& c) { return ListBlockedUsers(c, blocker, after_user, limit); },
      std::move(done));
}

}  // namespace mpim::store::mysql
