// Accounts: users with a unique username, profile fields and last_seen.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/common.h"

namespace mpim::store {

struct User {
  int64_t user_id = 0;  // store-assigned, the first is 1001
  std::string username;
  std::string password_hash;  // opaque to the store
  std::string display_name;
  std::string avatar_url;
  int64_t created_at = 0;  // ms
  int64_t last_seen = 0;   // ms; 0 = never
};

struct NewUser {
  std::string username;  // validated by the service; unique in the store
  std::string password_hash;
  std::string display_name;
  std::string avatar_url;
};

// Fields left unset are not changed.
struct UserUpdate {
  std::optional<std::string> display_name;
  std::optional<std::string> avatar_url;
  std::optional<std::string> password_hash;
};

class UserStore {
 public:
  virtual ~UserStore() = default;

  // Creates a user; created_at is the store's clock. kAlreadyExists if the
  // username is taken; kInvalidArgument if it is empty.
  virtual void Create(const NewUser& user, Callback<User> done) = 0;

  // kNotFound for an unknown id or name.
  virtual void Get(int64_t user_id, Callback<User> done) = 0;
  virtual void GetByUsername(const std::string& username, Callback<User> done) = 0;

  // The users among `user_ids` that exist, in ascending id order; unknown ids
  // are skipped. At most kMaxPageLimit ids (else kInvalidArgument).
  virtual void GetMany(const std::vector<int64_t>& user_ids, Callback<std::vector<User>> done) = 0;

  // Applies the set fields and returns the updated user. kNotFound if unknown.
  virtual void Update(int64_t user_id, const UserUpdate& update, Callback<User> done) = 0;

  // Moves last_seen forward (an older value is ignored). kNotFound if unknown.
  virtual void TouchLastSeen(int64_t user_id, int64_t ts_ms, DoneCallback done) = 0;

  // Users whose username starts with `prefix` (exact bytes), ascending by
  // username, starting after `after_username` (empty: from the start).
  virtual void SearchByPrefix(const std::string& prefix, const std::string& after_username,
                              int limit, Callback<Page<User>> done) = 0;

  // How many users there are (the admin API's stats).
  virtual void Count(Callback<int64_t> done) = 0;
};

}  // namespace mpim::store
