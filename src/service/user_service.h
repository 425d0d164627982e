// User profiles: the caller's own, anyone's by id, and username prefix search.
//
// Asynchronous; callbacks run once on an internal thread. Errors: not_found
// (unknown user), invalid_argument (bad fields, bad page size), unavailable.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every asynchronous call may be a network round trip and
// also fails with unavailable when no logic node answers in time; callers
// never wait for it synchronously on an io thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/callback.h"
#include "route/presence.h"

namespace mpim::service {

// A user as clients see it (never the password hash).
struct UserProfile {
  int64_t user_id = 0;
  std::string username;
  std::string display_name;
  std::string avatar_url;
  int64_t created_at = 0;  // ms
  int64_t last_seen = 0;   // ms; 0: unknown
  bool online = false;
};

// Sets online and last_seen on a profile from `presence` (this node's
// view; null: left as the store has them). The view's last_seen, when it
// has one, wins over the store's: every node's view holds the same value
// (the offline event's time), while the store's was written a few
// milliseconds later by the node the user left, so answering the fresher
// one would make nodes disagree.
inline void DecoratePresence(const route::Presence* presence, UserProfile& user) {
  if (!presence) return;
  route::UserPresence p = presence->Get(user.user_id);
  user.online = p.online;
  if (p.last_seen > 0) user.last_seen = p.last_seen;
}

struct ProfileUpdate {
  std::optional<std::string> display_name;
  std::optional<std::string> avatar_url;
};

struct UserPage {
  std::vector<UserProfile> users;
  bool has_more = false;
};

class UserService {
 public:
  virtual ~UserService() = default;

  virtual void Get(int64_t user_id, core::Callback<UserProfile> done) = 0;
  virtual void Update(int64_t user_id, ProfileUpdate update, core::Callback<UserProfile> done) = 0;
  // Usernames starting with `prefix`, ascending, after `after_username`.
  virtual void Search(std::string prefix, std::string after_username, int limit,
                      core::Callback<UserPage> done) = 0;
};

}  // namespace mpim::service
