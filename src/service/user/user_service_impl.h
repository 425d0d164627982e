// UserService on a Store.
#pragma once

#include "service/user_service.h"
#include "store/store.h"

namespace mpim::service {

class UserServiceImpl final : public UserService {
 public:
  // `page_max`: the protocol's page limit (limits.page_max).
  // `presence` (may be null) fills in online and last_seen.
  UserServiceImpl(store::Store& store, int page_max, const route::Presence* presence = nullptr)
      : store_(store), page_max_(page_max), presence_(presence) {}

  void Get(int64_t user_id, core::Callback<UserProfile> done) override;
  void Update(int64_t user_id, ProfileUpdate update, core::Callback<UserProfile> done) override;
  void Search(std::string prefix, std::string after_username, int limit,
              core::Callback<UserPage> done) override;

 private:
  UserProfile Profile(const store::User& user) const;

  store::Store& store_;
  const int page_max_;
  const route::Presence* presence_;
};

// The client view of a stored user (never the password hash).
UserProfile ToProfile(const store::User& user);

}  // namespace mpim::service
