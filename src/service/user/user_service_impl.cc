#include "service/user/user_service_impl.h"

#include "service/errors.h"
#include "service/validation.h"

namespace mpim::service {

UserProfile ToProfile(const store::User& user) {
  return UserProfile{
      user.user_id,   user.username, user.display_name, user.avatar_url, user.created_at,
      user.last_seen, false};
}

namespace {

// Passes not_found and invalid_argument through; storage trouble becomes
// unavailable.
core::Status UserError(const core::Status& s, int64_t user_id) {
  if (s.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("user " + std::to_string(user_id) + " not found");
  }
  if (s.code() == absl::StatusCode::kInvalidArgument) return s;
  return StorageError(s);
}

}  // namespace

UserProfile UserServiceImpl::Profile(const store::User& user) const {
  UserProfile p = ToProfile(user);
  DecoratePresence(presence_, p);
  return p;
}

void UserServiceImpl::Get(int64_t user_id, core::Callback<UserProfile> done) {
  store_.users().Get(
      user_id, [this, user_id, done = std::move(done)](core::StatusOr<store::User> user) mutable {
        if (!user.ok()) return std::move(done)(UserError(user.status(), user_id));
        std::move(done)(Profile(*user));
      });
}

void UserServiceImpl::Update(int64_t user_id, ProfileUpdate update,
                             core::Callback<UserProfile> done) {
  if (update.display_name) {
    if (auto s = ValidateDisplayName(*update.display_name); !s.ok()) return std::move(done)(s);
  }
  if (update.avatar_url) {
    if (auto s = ValidateAvatarUrl(*update.avatar_url); !s.ok()) return std::move(done)(s);
  }
  store::UserUpdate change{std::move(update.display_name), std::move(update.avatar_url),
                           std::nullopt};
  store_.users().Update(
      user_id, change,
      [this, user_id, done = std::move(done)](core::StatusOr<store::User> user) mutable {
        if (!user.ok()) return std::move(done)(UserError(user.status(), user_id));
        std::move(done)(Profile(*user));
      });
}

void UserServiceImpl::Search(std::string prefix, std::string after_username, int limit,
                             core::Callback<UserPage> done) {
  for (char& c : prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (prefix.empty() || prefix.size() > 32) {
    return std::move(done)(absl::InvalidArgumentError("prefix: must be 1-32 characters"));
  }
  for (char c : prefix) {
    if (!IsUsernameChar(c)) {
      return std::move(done)(
          absl::InvalidArgumentError("prefix: only a-z, 0-9, '_', '.' and '-' are allowed"));
    }
  }
  if (limit < 1 || limit > page_max_) {
    return std::move(done)(
        absl::InvalidArgumentError("limit: must be between 1 and " + std::to_string(page_max_)));
  }
  store_.users().SearchByPrefix(
      prefix, after_username, limit,
      [this, done = std::move(done)](core::StatusOr<store::Page<store::User>> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        UserPage out;
        out.has_more = page->has_more;
        for (const auto& u : page->items) out.users.push_back(Profile(u));
        std::move(done)(std::move(out));
      });
}

}  // namespace mpim::service
