#include "store/sqlite/friend_store.h"

#include <string>

#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

core::Status CheckPair(int64_t a, int64_t b) {
  if (a == b) return absl::InvalidArgumentError("a user cannot do this to themself");
  return core::Status();
}

// kNotFound naming the pair when a foreign key failed.
core::Status UnknownUsers(const core::Status& status, int64_t a, int64_t b) {
  if (status.code() != absl::StatusCode::kNotFound) return status;
  return absl::NotFoundError("user " + std::to_string(a) + " or " + std::to_string(b) +
                             " not found");
}

core::StatusOr<bool> Exists(Connection& c, const char* sql, int64_t a, int64_t b) {
  MPIM_ASSIGN_OR_RETURN(auto row, c.QueryInt(sql, a, b));
  return row.has_value();
}

constexpr const char* kAreFriends = "SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?";
constexpr const char* kRequestExists =
    "SELECT 1 FROM friend_requests WHERE from_user = ? AND to_user = ?";

// Reads (other user, time) rows into a page of T{user_id, since}.
template <typename T>
core::StatusOr<Page<T>> ListPairs(Connection& c, const char* sql, int64_t user, int64_t after,
                                  int limit) {
  return QueryPage<T>(
      c, sql, limit,
      [](const Stmt& row) {
        return T{row.Int(0), row.Int(1)};
      },
      user, after);
}

}  // namespace

void SqliteFriendStore::Request(int64_t from_user, int64_t to_user,
                                Callback<FriendRequestOutcome> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<FriendRequestOutcome>>(
      [from_user, to_user, now](Connection& c) -> core::StatusOr<FriendRequestOutcome> {
        MPIM_RETURN_IF_ERROR(CheckPair(from_user, to_user));
        MPIM_ASSIGN_OR_RETURN(bool friends, Exists(c, kAreFriends, from_user, to_user));
        if (friends) return absl::AlreadyExistsError("already friends");
        MPIM_ASSIGN_OR_RETURN(bool asked, Exists(c, kRequestExists, from_user, to_user));
        if (asked) return absl::AlreadyExistsError("friend request already pending");
        MPIM_ASSIGN_OR_RETURN(bool reverse, Exists(c, kRequestExists, to_user, from_user));
        if (!reverse) {
          MPIM_RETURN_IF_ERROR(UnknownUsers(
              c.Exec(
                  "INSERT INTO friend_requests (from_user, to_user, created_at) VALUES (?, ?, ?)",
                  from_user, to_user, now),
              from_user, to_user));
          return FriendRequestOutcome::kRequested;
        }
        MPIM_RETURN_IF_ERROR(c.Exec(
            "DELETE FROM friend_requests WHERE from_user = ? AND to_user = ?", to_user, from_user));
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO friendships (user_id, friend_id, since) VALUES (?1, ?2, ?3),"
                   " (?2, ?1, ?3)",
                   from_user, to_user, now));
        return FriendRequestOutcome::kAccepted;
      },
      std::move(done));
}

void SqliteFriendStore::DeleteRequest(int64_t from_user, int64_t to_user, DoneCallback done) {
  exec_.Write<core::Status>(
      [from_user, to_user](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(c.Exec(
            "DELETE FROM friend_requests WHERE from_user = ? AND to_user = ?", from_user, to_user));
        if (c.Changes() == 0) return absl::NotFoundError("no such friend request");
        return core::Status();
      },
      std::move(done));
}

void SqliteFriendStore::ListRequests(int64_t user_id, bool incoming, int64_t after_user, int limit,
                                     Callback<Page<FriendRequest>> done) {
  exec_.Read<core::StatusOr<Page<FriendRequest>>>(
      [=](Connection& c) -> core::StatusOr<Page<FriendRequest>> {
        const char* sql = incoming
                              ? "SELECT from_user, to_user, created_at FROM friend_requests"
                                " WHERE to_user = ?1 AND from_user > ?2 ORDER BY from_user LIMIT ?3"
                              : "SELECT from_user, to_user, created_at FROM friend_requests"
                                " WHERE from_user = ?1 AND to_user > ?2 ORDER BY to_user LIMIT ?3";
        return QueryPage<FriendRequest>(
            c, sql, limit,
            [](const Stmt& row) {
              return FriendRequest{row.Int(0), row.Int(1), row.Int(2)};
            },
            user_id, after_user);
      },
      std::move(done));
}

void SqliteFriendStore::Remove(int64_t user_a, int64_t user_b, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_a, user_b](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(CheckPair(user_a, user_b));
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE FROM friendships WHERE (user_id = ?1 AND friend_id = ?2)"
                   " OR (user_id = ?2 AND friend_id = ?1)",
                   user_a, user_b));
        if (c.Changes() == 0) return absl::NotFoundError("not friends");
        return core::Status();
      },
      std::move(done));
}

void SqliteFriendStore::AreFriends(int64_t user_a, int64_t user_b, Callback<bool> done) {
  exec_.Read<core::StatusOr<bool>>(
      [user_a, user_b](Connection& c) { return Exists(c, kAreFriends, user_a, user_b); },
      std::move(done));
}

void SqliteFriendStore::List(int64_t user_id, int64_t after_user, int limit,
                             Callback<Page<Friend>> done) {
  exec_.Read<core::StatusOr<Page<Friend>>>(
      [=](Connection& c) {
        return ListPairs<Friend>(c,
                                 "SELECT friend_id, since FROM friendships WHERE user_id = ?1"
                                 " AND friend_id > ?2 ORDER BY friend_id LIMIT ?3",
                                 user_id, after_user, limit);
      },
      std::move(done));
}

void SqliteFriendStore::Block(int64_t blocker, int64_t blocked, DoneCallback done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::Status>(
      [blocker, blocked, now](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(CheckPair(blocker, blocked));
        auto st = c.Exec("INSERT INTO blocks (blocker, blocked, since) VALUES (?, ?, ?)", blocker,
                         blocked, now);
        if (st.code() == absl::StatusCode::kAlreadyExists) {
          return absl::AlreadyExistsError("already blocked");
        }
        return UnknownUsers(st, blocker, blocked);
      },
      std::move(done));
}

void SqliteFriendStore::Unblock(int64_t blocker, int64_t blocked, DoneCallback done) {
  exec_.Write<core::Status>(
      [blocker, blocked](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE FROM blocks WHERE blocker = ? AND blocked = ?", blocker, blocked));
        if (c.Changes() == 0) return absl::NotFoundError("not blocked");
        return core::Status();
      },
      std::move(done));
}

void SqliteFriendStore::IsBlocked(int64_t blocker, int64_t blocked, Callback<bool> done) {
  exec_.Read<core::StatusOr<bool>>(
      [blocker, blocked](Connection& c) {
        return Exists(c, "SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?", blocker,
                      blocked);
      },
      std::move(done));
}

void SqliteFriendStore::ListBlocked(int64_t blocker, int64_t after_user, int limit,
                                    Callback<Page<BlockEntry>> done) {
  exec_.Read<core::StatusOr<Page<BlockEntry>>>(
      [=](Connection& c) {
        return ListPairs<BlockEntry>(c,
                                     "SELECT blocked, since FROM blocks WHERE blocker = ?1"
                                     " AND blocked > ?2 ORDER BY blocked LIMIT ?3",
                                     blocker, after_user, limit);
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
