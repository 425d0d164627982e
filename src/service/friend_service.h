// Friends, friend requests and blocks (docs/protocol.md section 2).
//
// Asynchronous; callbacks run once on an internal thread. Errors: not_found
// (unknown user, nothing to remove), invalid_argument (yourself, bad page),
// already_exists (already friends, request pending), permission_denied
// (one user blocks the other), unavailable.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every asynchronous call may be a network round trip and
// also fails with unavailable when no logic node answers in time; callers
// never wait for it synchronously on an io thread.
#pragma once

#include <cstdint>
#include <vector>

#include "core/callback.h"
#include "service/user_service.h"

namespace mpim::service {

enum class FriendOutcome { kRequested, kFriends };

struct FriendEntry {
  UserProfile user;
  int64_t since = 0;  // ms: friends since, requested at, or blocked at
};

struct FriendPage {
  std::vector<FriendEntry> entries;
  bool has_more = false;
};

struct FriendRequests {
  std::vector<FriendEntry> incoming;
  std::vector<FriendEntry> outgoing;
};

class FriendService {
 public:
  virtual ~FriendService() = default;

  virtual void List(int64_t user_id, int64_t after, int limit, core::Callback<FriendPage> done) = 0;
  // Asks `to`, or accepts when `to` already asked `from`.
  virtual void Request(int64_t from, int64_t to, core::Callback<FriendOutcome> done) = 0;
  // Ends a friendship or removes a pending request in either direction.
  virtual void Remove(int64_t user_id, int64_t other, core::DoneCallback done) = 0;
  virtual void Requests(int64_t user_id, int limit, core::Callback<FriendRequests> done) = 0;
  // Blocking is idempotent, and ends friendship and requests between the two.
  virtual void Block(int64_t blocker, int64_t blocked, core::DoneCallback done) = 0;
  virtual void Unblock(int64_t blocker, int64_t blocked, core::DoneCallback done) = 0;
  virtual void ListBlocked(int64_t blocker, int64_t after, int limit,
                           core::Callback<FriendPage> done) = 0;
};

}  // namespace mpim::service
