// User profiles: the caller's own, anyone's by id, and username prefix search.
//
// Asynchronous; callbacks run once on an internal thread. Errors: not_found
// (unknown user), invalid_argument (bad fields, bad page size), unavailable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/callback.h"

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
