// Friendships (symmetric), pending friend requests (directional) and blocks
// (directional: "a blocks b" says nothing about b blocking a).
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h. Unknown user ids are
// kNotFound; a user acting on themself is kInvalidArgument.
#pragma once

#include <cstdint>

#include "store/common.h"

namespace mpim::store {

struct FriendRequest {
  int64_t from_user = 0;
  int64_t to_user = 0;
  int64_t created_at = 0;  // ms, store clock
};

struct Friend {
  int64_t user_id = 0;  // the friend
  int64_t since = 0;    // ms, store clock
};

struct BlockEntry {
  int64_t user_id = 0;  // the blocked user
  int64_t since = 0;
};

enum class FriendRequestOutcome {
  kRequested,  // a pending request from -> to now exists
  kAccepted,   // `to` had already asked `from`: they are friends now
};

class FriendStore {
 public:
  virtual ~FriendStore() = default;

  // Asks `from` -> `to`, or accepts when `to` already asked `from` (the
  // pending request is consumed). kAlreadyExists if they are already friends
  // or the same request is already pending. Blocks are checked by the
  // service, not here.
  virtual void Request(int64_t from_user, int64_t to_user, Callback<FriendRequestOutcome> done) = 0;

  // Removes a pending request (decline by `to`, or cancel by `from`).
  // kNotFound if there is none.
  virtual void DeleteRequest(int64_t from_user, int64_t to_user, DoneCallback done) = 0;

  // Requests addressed to `user_id` (incoming = true) or sent by it, ascending
  // by the other user's id, starting after `after_user`.
  virtual void ListRequests(int64_t user_id, bool incoming, int64_t after_user, int limit,
                            Callback<Page<FriendRequest>> done) = 0;

  // Ends a friendship (both directions). kNotFound if they are not friends.
  virtual void Remove(int64_t user_a, int64_t user_b, DoneCallback done) = 0;

  virtual void AreFriends(int64_t user_a, int64_t user_b, Callback<bool> done) = 0;

  // The user's friends ascending by id, starting after `after_user`.
  virtual void List(int64_t user_id, int64_t after_user, int limit,
                    Callback<Page<Friend>> done) = 0;

  // `blocker` blocks `blocked`. kAlreadyExists if already blocked.
  virtual void Block(int64_t blocker, int64_t blocked, DoneCallback done) = 0;
  // kNotFound if not blocked.
  virtual void Unblock(int64_t blocker, int64_t blocked, DoneCallback done) = 0;
  // Whether `blocker` blocks `blocked` (false for unknown users).
  virtual void IsBlocked(int64_t blocker, int64_t blocked, Callback<bool> done) = 0;
  // Whom `blocker` blocks, ascending by id, starting after `after_user`.
  virtual void ListBlocked(int64_t blocker, int64_t after_user, int limit,
                           Callback<Page<BlockEntry>> done) = 0;
};

}  // namespace mpim::store
