#include "cache/cached_store.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "cache/codec.h"

namespace mpim::cache {

// Byte codecs of the cached store values (for the redis engine): fields in
// order, integers in decimal, strings length-prefixed ("5:alice"), each
// field followed by ';'.
namespace {

void PutInt(int64_t v, std::string& out) {
  Codec<int64_t>::Encode(v, out);
  out += ';';
}
void PutText(const std::string& v, std::string& out) {
  Codec<int64_t>::Encode(static_cast<int64_t>(v.size()), out);
  out += ':';
  out += v;
  out += ';';
}
bool TakeInt(std::string_view& in, int64_t* v) {
  size_t end = in.find(';');
  if (end == std::string_view::npos || !Codec<int64_t>::Decode(in.substr(0, end), v)) return false;
  in.remove_prefix(end + 1);
  return true;
}
bool TakeText(std::string_view& in, std::string* v) {
  size_t colon = in.find(':');
  int64_t n = 0;
  if (colon == std::string_view::npos || !Codec<int64_t>::Decode(in.substr(0, colon), &n) ||
      n < 0 || in.size() < colon + 1 + static_cast<size_t>(n) + 1 ||
      in[colon + 1 + static_cast<size_t>(n)] != ';') {
    return false;
  }
  v->assign(in.substr(colon + 1, static_cast<size_t>(n)));
  in.remove_prefix(colon + 1 + static_cast<size_t>(n) + 1);
  return true;
}

}  // namespace

template <>
struct Codec<store::User> {
  static void Encode(const store::User& u, std::string& out) {
    PutInt(u.user_id, out);
    PutText(u.username, out);
    PutText(u.password_hash, out);
    PutText(u.display_name, out);
    PutText(u.avatar_url, out);
    PutInt(u.created_at, out);
    PutInt(u.last_seen, out);
  }
  static bool Decode(std::string_view in, store::User* u) {
    return TakeInt(in, &u->user_id) && TakeText(in, &u->username) &&
           TakeText(in, &u->password_hash) && TakeText(in, &u->display_name) &&
           TakeText(in, &u->avatar_url) && TakeInt(in, &u->created_at) &&
           TakeInt(in, &u->last_seen) && in.empty();
  }
};

template <>
struct Codec<store::Group> {
  static void Encode(const store::Group& g, std::string& out) {
    PutInt(g.group_id, out);
    PutText(g.conv_id, out);
    PutText(g.name, out);
    PutText(g.avatar_url, out);
    PutInt(g.owner_id, out);
    PutInt(g.is_public ? 1 : 0, out);
    PutInt(g.member_count, out);
    PutInt(g.created_at, out);
  }
  static bool Decode(std::string_view in, store::Group* g) {
    int64_t is_public = 0;
    bool ok = TakeInt(in, &g->group_id) && TakeText(in, &g->conv_id) && TakeText(in, &g->name) &&
              TakeText(in, &g->avatar_url) && TakeInt(in, &g->owner_id) &&
              TakeInt(in, &is_public) && TakeInt(in, &g->member_count) &&
              TakeInt(in, &g->created_at) && in.empty();
    g->is_public = is_public != 0;
    return ok;
  }
};

template <>
struct Codec<store::GroupMember> {
  static void Encode(const store::GroupMember& m, std::string& out) {
    PutInt(m.group_id, out);
    PutInt(m.user_id, out);
    PutInt(static_cast<int64_t>(m.role), out);
    PutInt(m.joined_at, out);
    PutInt(m.joined_seq, out);
  }
  static bool Decode(std::string_view in, store::GroupMember* m) {
    int64_t role = -1;
    bool ok = TakeInt(in, &m->group_id) && TakeInt(in, &m->user_id) && TakeInt(in, &role) &&
              TakeInt(in, &m->joined_at) && TakeInt(in, &m->joined_seq) && in.empty() &&
              role >= 0 && role <= 2;
    m->role = static_cast<store::GroupRole>(role);
    return ok;
  }
};

namespace {

// A writer's answer, given once its invalidations are done (cache/cache.h).
template <typename R, typename Done>
absl::AnyInvocable<void() &&> Answer(R result, Done done) {
  return [result = std::move(result), done = std::move(done)]() mutable {
    std::move(done)(std::move(result));
  };
}

using MemberKey = std::pair<int64_t, int64_t>;  // (group, user)
struct MemberKeyHash {
  size_t operator()(const MemberKey& k) const {
    return std::hash<int64_t>()(k.first) * 31 + std::hash<int64_t>()(k.second);
  }
};

class CachedUserStore final : public store::UserStore {
 public:
  CachedUserStore(store::UserStore& inner, std::unique_ptr<Cache<int64_t, store::User>> users)
      : inner_(inner), users_(std::move(users)) {}

  void Create(const store::NewUser& user, store::Callback<store::User> done) override {
    inner_.Create(user, [this, done = std::move(done)](core::StatusOr<store::User> r) mutable {
      if (!r.ok()) return std::move(done)(std::move(r));
      int64_t id = r->user_id;
      users_->Invalidate(id, Answer(std::move(r), std::move(done)));
    });
  }
  void Get(int64_t user_id, store::Callback<store::User> done) override {
    users_->Get(
        user_id,
        [this, user_id](core::Callback<store::User> load) { inner_.Get(user_id, std::move(load)); },
        std::move(done));
  }
  void GetByUsername(const std::string& username, store::Callback<store::User> done) override {
    inner_.GetByUsername(username, std::move(done));
  }
  void GetMany(const std::vector<int64_t>& user_ids,
               store::Callback<std::vector<store::User>> done) override {
    inner_.GetMany(user_ids, std::move(done));
  }
  void Update(int64_t user_id, const store::UserUpdate& update,
              store::Callback<store::User> done) override {
    inner_.Update(user_id, update,
                  [this, user_id, done = std::move(done)](core::StatusOr<store::User> r) mutable {
                    users_->Invalidate(user_id, Answer(std::move(r), std::move(done)));
                  });
  }
  void TouchLastSeen(int64_t user_id, int64_t ts_ms, store::DoneCallback done) override {
    inner_.TouchLastSeen(user_id, ts_ms,
                         [this, user_id, done = std::move(done)](core::Status s) mutable {
                           users_->Invalidate(user_id, Answer(std::move(s), std::move(done)));
                         });
  }
  void SearchByPrefix(const std::string& prefix, const std::string& after_username, int limit,
                      store::Callback<store::Page<store::User>> done) override {
    inner_.SearchByPrefix(prefix, after_username, limit, std::move(done));
  }
  void Count(store::Callback<int64_t> done) override { inner_.Count(std::move(done)); }

 private:
  store::UserStore& inner_;
  std::unique_ptr<Cache<int64_t, store::User>> users_;
};

class CachedGroupStore final : public store::GroupStore {
 public:
  CachedGroupStore(store::GroupStore& inner, std::unique_ptr<Cache<int64_t, store::Group>> groups,
                   std::unique_ptr<Cache<MemberKey, store::GroupMember>> members)
      : inner_(inner), groups_(std::move(groups)), members_(std::move(members)) {}

  void Create(const store::NewGroup& group, store::Callback<store::Group> done) override {
    // A new id: nothing of it can be cached but "not found" answers, which
    // the group's own entry drops; its members' entries are dropped too.
    inner_.Create(group, [this, members = group.members, owner = group.owner_id,
                          done = std::move(done)](core::StatusOr<store::Group> r) mutable {
      if (!r.ok()) return std::move(done)(std::move(r));
      members.push_back(owner);
      Drop(r->group_id, std::move(members), Answer(std::move(r), std::move(done)));
    });
  }
  void Get(int64_t group_id, store::Callback<store::Group> done) override {
    groups_->Get(
        group_id,
        [this, group_id](core::Callback<store::Group> load) {
          inner_.Get(group_id, std::move(load));
        },
        std::move(done));
  }
  void Update(int64_t group_id, const store::GroupUpdate& update,
              store::Callback<store::Group> done) override {
    inner_.Update(group_id, update, After(group_id, {}, std::move(done)));
  }
  void Delete(int64_t group_id, store::DoneCallback done) override {
    inner_.Delete(group_id, [this, group_id, done = std::move(done)](core::Status s) mutable {
      groups_->Invalidate(group_id, Answer(std::move(s), std::move(done)));
    });
  }
  void AddMembers(int64_t group_id, const std::vector<int64_t>& user_ids,
                  store::Callback<store::AddMembersResult> done) override {
    inner_.AddMembers(group_id, user_ids, After(group_id, user_ids, std::move(done)));
  }
  void RemoveMember(int64_t group_id, int64_t user_id,
                    store::Callback<store::MembershipSpan> done) override {
    inner_.RemoveMember(group_id, user_id, After(group_id, {user_id}, std::move(done)));
  }
  void SetRole(int64_t group_id, int64_t user_id, store::GroupRole role,
               store::Callback<store::GroupMember> done) override {
    if (role != store::GroupRole::kOwner) {
      return inner_.SetRole(group_id, user_id, role, After(group_id, {user_id}, std::move(done)));
    }
    // A new owner demotes the old one: learn who that is first.
    inner_.Get(group_id, [this, group_id, user_id, role,
                          done = std::move(done)](core::StatusOr<store::Group> g) mutable {
      std::vector<int64_t> changed = {user_id};
      if (g.ok()) changed.push_back(g->owner_id);
      inner_.SetRole(group_id, user_id, role, After(group_id, changed, std::move(done)));
    });
  }
  // Through the group's entry first: a deleted group drops only its own
  // entry, and its members' entries must not outlive it.
  void GetMember(int64_t group_id, int64_t user_id,
                 store::Callback<store::GroupMember> done) override {
    Get(group_id, [this, group_id, user_id,
                   done = std::move(done)](core::StatusOr<store::Group> group) mutable {
      if (!group.ok()) return std::move(done)(group.status());
      members_->Get(
          {group_id, user_id},
          [this, group_id, user_id](core::Callback<store::GroupMember> load) {
            inner_.GetMember(group_id, user_id, std::move(load));
          },
          std::move(done));
    });
  }
  void ListMembers(int64_t group_id, int64_t after_user, int limit,
                   store::Callback<store::Page<store::GroupMember>> done) override {
    inner_.ListMembers(group_id, after_user, limit, std::move(done));
  }
  void ListPastSpans(int64_t group_id, int64_t user_id,
                     store::Callback<std::vector<store::MembershipSpan>> done) override {
    inner_.ListPastSpans(group_id, user_id, std::move(done));
  }
  void ListForUser(int64_t user_id, int64_t after_group, int limit,
                   store::Callback<store::Page<store::Group>> done) override {
    inner_.ListForUser(user_id, after_group, limit, std::move(done));
  }
  void ListActive(int limit, store::Callback<std::vector<int64_t>> done) override {
    inner_.ListActive(limit, std::move(done));
  }

  // Loads the `limit` most recently active groups and the first page of
  // each one's members into the caches; `done` gets how many entries.
  void WarmUp(int limit, core::Callback<size_t> done) {
    inner_.ListActive(
        limit, [this, done = std::move(done)](core::StatusOr<std::vector<int64_t>> ids) mutable {
          if (!ids.ok()) return std::move(done)(ids.status());
          struct Count {
            std::atomic<size_t> entries{0};
            core::Callback<size_t> done;
            ~Count() { std::move(done)(entries.load()); }
          };
          auto count = std::make_shared<Count>();
          count->done = std::move(done);
          cache::WarmUp<int64_t, store::Group>(
              *groups_, *ids,
              [this](const int64_t& g, core::Callback<store::Group> cb) {
                inner_.Get(g, std::move(cb));
              },
              [count](core::StatusOr<size_t> n) { count->entries += n.value_or(0); });
          for (int64_t g : *ids) {
            inner_.ListMembers(
                g, 0, store::kMaxPageLimit,
                [this, g, count](core::StatusOr<store::Page<store::GroupMember>> page) {
                  if (!page.ok()) return;
                  auto members =
                      std::make_shared<std::vector<store::GroupMember>>(std::move(page->items));
                  std::vector<MemberKey> keys;
                  for (const auto& m : *members) keys.emplace_back(g, m.user_id);
                  // Answered from the page just read (no read per member).
                  cache::WarmUp<MemberKey, store::GroupMember>(
                      *members_, std::move(keys),
                      [members](const MemberKey& k, core::Callback<store::GroupMember> cb) {
                        for (const auto& m : *members) {
                          if (m.user_id == k.second) return std::move(cb)(m);
                        }
                        std::move(cb)(absl::NotFoundError("not a member"));
                      },
                      [count](core::StatusOr<size_t> n) { count->entries += n.value_or(0); });
                });
          }
        });
  }

 private:
  // A callback that drops the group and the members `users` once the write
  // answered (whatever it answered: a failed write may still have
  // committed, and dropping is always safe), then answers.
  template <typename T>
  store::Callback<T> After(int64_t group_id, std::vector<int64_t> users, store::Callback<T> done) {
    return [this, group_id, users = std::move(users),
            done = std::move(done)](core::StatusOr<T> r) mutable {
      Drop(group_id, std::move(users), Answer(std::move(r), std::move(done)));
    };
  }
  // Drops the group and the members `users`; `done` once both are dropped.
  void Drop(int64_t group_id, std::vector<int64_t> users, absl::AnyInvocable<void() &&> done) {
    std::vector<MemberKey> keys;
    for (int64_t user : users) keys.emplace_back(group_id, user);
    groups_->Invalidate(group_id, [this, keys = std::move(keys), done = std::move(done)]() mutable {
      members_->InvalidateAll(keys, std::move(done));
    });
  }

  store::GroupStore& inner_;
  std::unique_ptr<Cache<int64_t, store::Group>> groups_;
  std::unique_ptr<Cache<MemberKey, store::GroupMember>> members_;
};

class CachedStore final : public store::Store {
 public:
  CachedStore(std::unique_ptr<store::Store> inner, std::unique_ptr<CachedUserStore> users,
              std::unique_ptr<CachedGroupStore> groups)
      : inner_(std::move(inner)), users_(std::move(users)), groups_(std::move(groups)) {}
  // The store first: its Close answers the calls still queued, whose
  // callbacks reach the caches below.
  ~CachedStore() override { inner_->Close(); }

  store::UserStore& users() override { return *users_; }
  store::SessionStore& sessions() override { return inner_->sessions(); }
  store::FriendStore& friends() override { return inner_->friends(); }
  store::GroupStore& groups() override { return *groups_; }
  store::ConversationStore& conversations() override { return inner_->conversations(); }
  store::MessageStore& messages() override { return inner_->messages(); }
  store::SearchStore& search() override { return inner_->search(); }
  store::JobStore& jobs() override { return inner_->jobs(); }
  void Ping(store::DoneCallback done) override { inner_->Ping(std::move(done)); }
  void Close() override { inner_->Close(); }
  CachedGroupStore& cached_groups() { return *groups_; }

 private:
  std::unique_ptr<store::Store> inner_;
  std::unique_ptr<CachedUserStore> users_;
  std::unique_ptr<CachedGroupStore> groups_;
};

}  // namespace

void WarmUpCaches(store::Store& store, int groups, core::Callback<size_t> done) {
  auto* cached = dynamic_cast<CachedStore*>(&store);
  if (cached == nullptr || groups <= 0) return std::move(done)(size_t{0});
  cached->cached_groups().WarmUp(std::min(groups, store::kMaxPageLimit), std::move(done));
}

core::StatusOr<std::unique_ptr<store::Store>> MakeCachedStore(std::unique_ptr<store::Store> inner,
                                                              const core::Config& config,
                                                              redis::Client* redis) {
  if (config.cache.engine == "none") return inner;
  LocalCacheOptions bounded;
  bounded.max_entries = 1 << 18;
  auto users =
      MakeCache<int64_t, store::User>(config, {.name = "users", .local = bounded, .redis = redis});
  if (!users.ok()) return users.status();
  auto groups = MakeCache<int64_t, store::Group>(
      config, {.name = "groups", .local = bounded, .redis = redis, .strict = true});
  if (!groups.ok()) return groups.status();
  auto members = MakeCache<MemberKey, store::GroupMember, MemberKeyHash>(
      config, {.name = "group_members", .local = bounded, .redis = redis, .strict = true});
  if (!members.ok()) return members.status();
  auto cached_users = std::make_unique<CachedUserStore>(inner->users(), std::move(*users));
  auto cached_groups =
      std::make_unique<CachedGroupStore>(inner->groups(), std::move(*groups), std::move(*members));
  return std::unique_ptr<store::Store>(
      new CachedStore(std::move(inner), std::move(cached_users), std::move(cached_groups)));
}

}  // namespace mpim::cache
