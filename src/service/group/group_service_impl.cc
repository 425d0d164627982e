#include "service/group/group_service_impl.h"

#include <boost/json/serialize.hpp>
#include <unordered_map>

#include "core/async.h"
#include "core/logging.h"
#include "service/errors.h"
#include "service/user/user_service_impl.h"
#include "service/validation.h"
#include "store/conv_id.h"

namespace mpim::service {
namespace {

const core::Logger& Log() {
  static const core::Logger log("groups");
  return log;
}

std::string GroupNotFound(int64_t id) { return "group " + std::to_string(id) + " not found"; }

core::Status ValidateGroupName(const std::string& name) {
  int64_t len = Utf8Length(name);
  if (len < 1 || len > 64) return absl::InvalidArgumentError("name: must be 1-64 characters");
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("name: must not contain control characters");
    }
  }
  return absl::OkStatus();
}

core::Status GroupError(const core::Status& s, int64_t group_id) {
  if (s.code() == absl::StatusCode::kNotFound) return absl::NotFoundError(GroupNotFound(group_id));
  if (s.code() == absl::StatusCode::kInvalidArgument) return s;
  return StorageError(s);
}

boost::json::array Ids(const std::vector<int64_t>& ids) {
  boost::json::array a;
  for (int64_t id : ids) a.push_back(boost::json::value(std::to_string(id)));
  return a;
}

// Ownership goes to admins before members, then to whoever joined first.
bool Older(const store::GroupMember& a, const store::GroupMember& b) {
  bool a_admin = a.role == store::GroupRole::kAdmin;
  bool b_admin = b.role == store::GroupRole::kAdmin;
  if (a_admin != b_admin) return a_admin;
  if (a.joined_seq != b.joined_seq) return a.joined_seq < b.joined_seq;
  if (a.joined_at != b.joined_at) return a.joined_at < b.joined_at;
  return a.user_id < b.user_id;
}

bool IsAdmin(const std::optional<store::GroupMember>& m) {
  return m && m->role != store::GroupRole::kMember;
}

}  // namespace

void GroupServiceImpl::Load(Principal who, int64_t group_id, core::Callback<Context> done) {
  store_.groups().Get(group_id, [this, who, group_id, done = std::move(done)](
                                    core::StatusOr<store::Group> group) mutable {
    if (!group.ok()) return std::move(done)(GroupError(group.status(), group_id));
    store_.groups().GetMember(group_id, who.user_id,
                              [group = std::move(*group), done = std::move(done)](
                                  core::StatusOr<store::GroupMember> me) mutable {
                                if (me.ok())
                                  return std::move(done)(Context{std::move(group), std::move(*me)});
                                if (me.status().code() != absl::StatusCode::kNotFound) {
                                  return std::move(done)(StorageError(me.status()));
                                }
                                std::move(done)(Context{std::move(group), std::nullopt});
                              });
  });
}

void GroupServiceImpl::Announce(int64_t group_id, int64_t by, boost::json::object body,
                                absl::AnyInvocable<void() &&> then) {
  body["by"] = std::to_string(by);
  messages_.PostSystem(
      group_id, by, boost::json::serialize(body),
      [group_id, then = std::move(then)](core::StatusOr<store::Message> m) mutable {
        if (!m.ok()) {
          Log().Warn("system message not posted",
                     {{"group", group_id}, {"error", std::string(m.status().message())}});
        }
        std::move(then)();
      });
}

void GroupServiceImpl::Create(Principal who, NewGroupRequest req,
                              core::Callback<store::Group> done) {
  if (auto s = ValidateGroupName(req.name); !s.ok()) return std::move(done)(s);
  std::vector<int64_t> members;
  for (int64_t id : req.members) {
    if (id <= 0) return std::move(done)(absl::InvalidArgumentError("members: bad id"));
    if (id != who.user_id && std::find(members.begin(), members.end(), id) == members.end()) {
      members.push_back(id);
    }
  }
  if (static_cast<int64_t>(members.size()) + 1 > max_members_) {
    return std::move(done)(absl::InvalidArgumentError("members: a group has at most " +
                                                      std::to_string(max_members_) + " members"));
  }
  store::NewGroup group{req.name, "", who.user_id, req.is_public, members};
  store_.groups().Create(group, [this, who, members, done = std::move(done)](
                                    core::StatusOr<store::Group> created) mutable {
    if (!created.ok()) {
      if (created.status().code() == absl::StatusCode::kNotFound) {
        return std::move(done)(absl::NotFoundError("a member is not a user"));
      }
      return std::move(done)(GroupError(created.status(), 0));
    }
    store::Group g = *created;
    members_.Invalidate(g.group_id, [this, g, who, members, done = std::move(done)]() mutable {
      boost::json::object body{{"event", "created"}, {"name", g.name}, {"users", Ids(members)}};
      Announce(g.group_id, who.user_id, std::move(body),
               [this, g, who, members, done = std::move(done)]() mutable {
                 std::vector<int64_t> all = members;
                 all.push_back(who.user_id);
                 deliverer_.Conv(all, g.conv_id, "joined");
                 std::move(done)(std::move(g));
               });
    });
  });
}

void GroupServiceImpl::Get(Principal who, int64_t group_id, core::Callback<GroupView> done) {
  Load(who, group_id, [group_id, done = std::move(done)](core::StatusOr<Context> ctx) mutable {
    if (!ctx.ok()) return std::move(done)(ctx.status());
    auto& [group, me] = *ctx;
    if (!me && !group.is_public) {
      return std::move(done)(
          absl::PermissionDeniedError("group " + std::to_string(group_id) + " is private"));
    }
    GroupView view{std::move(group), std::nullopt};
    if (me) view.role = me->role;
    std::move(done)(std::move(view));
  });
}

void GroupServiceImpl::Update(Principal who, int64_t group_id, std::optional<std::string> name,
                              std::optional<bool> is_public, core::Callback<GroupView> done) {
  if (name) {
    if (auto s = ValidateGroupName(*name); !s.ok()) return std::move(done)(s);
  }
  Load(who, group_id,
       [this, who, group_id, name, is_public,
        done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         auto& [group, me] = *ctx;
         if (!IsAdmin(me)) {
           return std::move(done)(
               absl::PermissionDeniedError("only the owner or an admin may do that"));
         }
         bool renamed = name && *name != group.name;
         store::GroupUpdate update{name, std::nullopt, is_public};
         store::GroupRole role = me->role;
         store_.groups().Update(
             group_id, update,
             [this, who, group_id, renamed, role,
              done = std::move(done)](core::StatusOr<store::Group> updated) mutable {
               if (!updated.ok()) return std::move(done)(GroupError(updated.status(), group_id));
               GroupView view{*updated, role};
               auto finish = [this, view, done = std::move(done)]() mutable {
                 // Tell the members of a small group their conversation changed.
                 auto ref = store::ParseConvId(view.group.conv_id);
                 members_.Get(ref->a, [this, view, done = std::move(done)](
                                          core::StatusOr<MemberList> members) mutable {
                   if (members.ok() && *members)
                     deliverer_.Conv(**members, view.group.conv_id, "updated");
                   std::move(done)(std::move(view));
                 });
               };
               if (!renamed) return finish();
               Announce(group_id, who.user_id,
                        boost::json::object{{"event", "renamed"}, {"name", view.group.name}},
                        std::move(finish));
             });
       });
}

void GroupServiceImpl::AllMembers(int64_t group_id, std::shared_ptr<std::vector<int64_t>> acc,
                                  int64_t after,
                                  core::Callback<std::shared_ptr<std::vector<int64_t>>> done) {
  store_.groups().ListMembers(
      group_id, after, store::kMaxPageLimit,
      [this, group_id, acc,
       done = std::move(done)](core::StatusOr<store::Page<store::GroupMember>> page) mutable {
        if (!page.ok()) return std::move(done)(GroupError(page.status(), group_id));
        for (const auto& m : page->items) acc->push_back(m.user_id);
        if (page->has_more && !page->items.empty()) {
          return AllMembers(group_id, acc, page->items.back().user_id, std::move(done));
        }
        std::move(done)(acc);
      });
}

void GroupServiceImpl::Delete(Principal who, int64_t group_id, core::DoneCallback done) {
  Load(who, group_id,
       [this, group_id, done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         auto& [group, me] = *ctx;
         if (!me || me->role != store::GroupRole::kOwner) {
           return std::move(done)(
               absl::PermissionDeniedError("only the owner may delete the group"));
         }
         std::string conv_id = group.conv_id;
         AllMembers(group_id, std::make_shared<std::vector<int64_t>>(), 0,
                    [this, group_id, conv_id, done = std::move(done)](
                        core::StatusOr<std::shared_ptr<std::vector<int64_t>>> members) mutable {
                      if (!members.ok()) return std::move(done)(members.status());
                      store_.groups().Delete(
                          group_id, [this, group_id, conv_id, members = *members,
                                     done = std::move(done)](core::Status s) mutable {
                            if (!s.ok()) return std::move(done)(GroupError(s, group_id));
                            Gone(group_id, *members, conv_id, "removed", std::move(done));
                          });
                    });
       });
}

void GroupServiceImpl::ListMembers(Principal who, int64_t group_id, int64_t after, int limit,
                                   core::Callback<MemberPage> done) {
  if (limit < 1 || limit > page_max_) {
    return std::move(done)(
        absl::InvalidArgumentError("limit: must be between 1 and " + std::to_string(page_max_)));
  }
  Load(who, group_id,
       [this, group_id, after, limit, done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         if (!ctx->second && !ctx->first.is_public) {
           return std::move(done)(
               absl::PermissionDeniedError("group " + std::to_string(group_id) + " is private"));
         }
         store_.groups().ListMembers(
             group_id, after, limit,
             [this, done = std::move(done)](
                 core::StatusOr<store::Page<store::GroupMember>> page) mutable {
               if (!page.ok()) return std::move(done)(StorageError(page.status()));
               std::vector<int64_t> ids;
               for (const auto& m : page->items) ids.push_back(m.user_id);
               auto members = std::make_shared<store::Page<store::GroupMember>>(std::move(*page));
               store_.users().GetMany(
                   ids, [this, members, done = std::move(done)](
                            core::StatusOr<std::vector<store::User>> users) mutable {
                     if (!users.ok()) return std::move(done)(StorageError(users.status()));
                     std::unordered_map<int64_t, const store::User*> by_id;
                     for (const auto& u : *users) by_id[u.user_id] = &u;
                     MemberPage out;
                     out.has_more = members->has_more;
                     for (const auto& m : members->items) {
                       auto it = by_id.find(m.user_id);
                       if (it == by_id.end()) continue;
                       UserProfile p = ToProfile(*it->second);
                       DecoratePresence(presence_, p);
                       out.members.push_back(MemberView{std::move(p), m.role, m.joined_at});
                     }
                     std::move(done)(std::move(out));
                   });
             });
       });
}

void GroupServiceImpl::AddMembers(Principal who, int64_t group_id, std::vector<int64_t> user_ids,
                                  core::Callback<std::vector<int64_t>> done) {
  if (user_ids.empty()) return std::move(done)(absl::InvalidArgumentError("user_ids: empty"));
  for (int64_t id : user_ids) {
    if (id <= 0) return std::move(done)(absl::InvalidArgumentError("user_ids: bad id"));
  }
  Load(who, group_id,
       [this, who, group_id, user_ids = std::move(user_ids),
        done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         auto& [group, me] = *ctx;
         bool self_join = user_ids.size() == 1 && user_ids[0] == who.user_id;
         if (!IsAdmin(me) && !(self_join && group.is_public && !me)) {
           if (self_join && me) {
             return std::move(done)(absl::AlreadyExistsError("already a member"));
           }
           return std::move(done)(absl::PermissionDeniedError(
               self_join ? "the group is private" : "only the owner or an admin may add members"));
         }
         if (group.member_count + static_cast<int64_t>(user_ids.size()) > max_members_) {
           return std::move(done)(absl::InvalidArgumentError(
               "user_ids: a group has at most " + std::to_string(max_members_) + " members"));
         }
         std::string conv_id = group.conv_id;
         store_.groups().AddMembers(
             group_id, user_ids,
             [this, who, group_id, conv_id, self_join,
              done = std::move(done)](core::StatusOr<store::AddMembersResult> r) mutable {
               if (!r.ok()) {
                 if (r.status().code() == absl::StatusCode::kNotFound) {
                   return std::move(done)(absl::NotFoundError("a user to add does not exist"));
                 }
                 return std::move(done)(GroupError(r.status(), group_id));
               }
               if (r->added.empty()) {
                 return std::move(done)(absl::AlreadyExistsError("already members"));
               }
               std::vector<int64_t> added;
               for (const auto& m : r->added) added.push_back(m.user_id);
               members_.Invalidate(group_id, [this, who, group_id, conv_id, self_join, added,
                                              done = std::move(done)]() mutable {
                 boost::json::object body{{"event", "joined"}, {"users", Ids(added)}};
                 if (self_join) body["user"] = std::to_string(who.user_id);
                 Announce(group_id, who.user_id, std::move(body),
                          [this, conv_id, added, done = std::move(done)]() mutable {
                            deliverer_.Conv(added, conv_id, "joined");
                            std::move(done)(std::move(added));
                          });
               });
             });
       });
}

void GroupServiceImpl::Remove(int64_t group_id, int64_t by, int64_t user_id, const char* event,
                              core::DoneCallback done) {
  store_.groups().RemoveMember(
      group_id, user_id,
      [this, group_id, by, user_id, event,
       done = std::move(done)](core::StatusOr<store::MembershipSpan> span) mutable {
        if (!span.ok()) return std::move(done)(GroupError(span.status(), group_id));
        members_.Invalidate(
            group_id, [this, group_id, by, user_id, event, done = std::move(done)]() mutable {
              std::string conv_id = store::GroupConvId(group_id);
              deliverer_.Conv({user_id}, conv_id, event);
              Announce(group_id, by,
                       boost::json::object{{"event", event}, {"user", std::to_string(user_id)}},
                       [done = std::move(done)]() mutable { std::move(done)(absl::OkStatus()); });
            });
      });
}

void GroupServiceImpl::Gone(int64_t group_id, std::vector<int64_t> members, std::string conv_id,
                            const char* event, core::DoneCallback done) {
  members_.Invalidate(group_id, [this, members = std::move(members), conv_id = std::move(conv_id),
                                 event, done = std::move(done)]() mutable {
    deliverer_.Conv(members, conv_id, event);
    std::move(done)(absl::OkStatus());
  });
}

void GroupServiceImpl::Leave(const store::Group& group, const store::GroupMember& me,
                             core::DoneCallback done) {
  int64_t group_id = group.group_id;
  if (group.member_count <= 1) {
    // The last member leaving deletes the group.
    return store_.groups().Delete(group_id,
                                  [this, group_id, user = me.user_id, conv_id = group.conv_id,
                                   done = std::move(done)](core::Status s) mutable {
                                    if (!s.ok()) return std::move(done)(GroupError(s, group_id));
                                    Gone(group_id, {user}, conv_id, "left", std::move(done));
                                  });
  }
  if (me.role != store::GroupRole::kOwner) {
    return Remove(group_id, me.user_id, me.user_id, "left", std::move(done));
  }
  // An owner hands the group to the oldest admin, else the oldest member.
  FindSuccessor(group_id, me.user_id, 0, std::nullopt,
                [this, group_id, owner = me.user_id,
                 done = std::move(done)](core::StatusOr<store::GroupMember> next) mutable {
                  if (!next.ok()) return std::move(done)(next.status());
                  HandOver(group_id, owner, next->user_id, std::move(done));
                });
}

void GroupServiceImpl::FindSuccessor(int64_t group_id, int64_t owner, int64_t after,
                                     std::optional<store::GroupMember> best,
                                     core::Callback<store::GroupMember> done) {
  store_.groups().ListMembers(
      group_id, after, store::kMaxPageLimit,
      [this, group_id, owner, best,
       done = std::move(done)](core::StatusOr<store::Page<store::GroupMember>> page) mutable {
        if (!page.ok()) return std::move(done)(GroupError(page.status(), group_id));
        for (const auto& m : page->items) {
          if (m.user_id != owner && (!best || Older(m, *best))) best = m;
        }
        if (page->has_more && !page->items.empty()) {
          return FindSuccessor(group_id, owner, page->items.back().user_id, std::move(best),
                               std::move(done));
        }
        if (!best) return std::move(done)(absl::InternalError("no member to hand over to"));
        std::move(done)(std::move(*best));
      });
}

void GroupServiceImpl::HandOver(int64_t group_id, int64_t owner, int64_t next_owner,
                                core::DoneCallback done) {
  store_.groups().SetRole(group_id, next_owner, store::GroupRole::kOwner,
                          [this, group_id, owner, next_owner,
                           done = std::move(done)](core::StatusOr<store::GroupMember> m) mutable {
                            if (!m.ok()) return std::move(done)(GroupError(m.status(), group_id));
                            deliverer_.Conv({next_owner}, store::GroupConvId(group_id), "updated");
                            Announce(group_id, owner,
                                     boost::json::object{{"event", "owner_changed"},
                                                         {"user", std::to_string(next_owner)}},
                                     [this, group_id, owner, done = std::move(done)]() mutable {
                                       Remove(group_id, owner, owner, "left", std::move(done));
                                     });
                          });
}

void GroupServiceImpl::RemoveMember(Principal who, int64_t group_id, int64_t user_id,
                                    core::DoneCallback done) {
  Load(who, group_id,
       [this, who, group_id, user_id, done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         auto& [group, me] = *ctx;
         if (user_id == who.user_id) {
           if (!me) return std::move(done)(absl::NotFoundError("not a member"));
           return Leave(group, *me, std::move(done));
         }
         if (!IsAdmin(me)) {
           return std::move(done)(
               absl::PermissionDeniedError("only the owner or an admin may remove members"));
         }
         store::GroupRole my_role = me->role;
         store_.groups().GetMember(
             group_id, user_id,
             [this, who, group_id, user_id, my_role,
              done = std::move(done)](core::StatusOr<store::GroupMember> target) mutable {
               if (!target.ok()) {
                 if (target.status().code() == absl::StatusCode::kNotFound) {
                   return std::move(done)(
                       absl::NotFoundError("user " + std::to_string(user_id) + " is not a member"));
                 }
                 return std::move(done)(StorageError(target.status()));
               }
               bool allowed =
                   my_role == store::GroupRole::kOwner || target->role == store::GroupRole::kMember;
               if (!allowed) {
                 return std::move(done)(
                     absl::PermissionDeniedError("admins may remove members only"));
               }
               Remove(group_id, who.user_id, user_id, "removed", std::move(done));
             });
       });
}

void GroupServiceImpl::SetRole(Principal who, int64_t group_id, int64_t user_id,
                               store::GroupRole role, core::Callback<store::GroupMember> done) {
  if (role == store::GroupRole::kOwner) {
    return std::move(done)(absl::InvalidArgumentError("role: must be admin or member"));
  }
  Load(who, group_id,
       [this, who, group_id, user_id, role,
        done = std::move(done)](core::StatusOr<Context> ctx) mutable {
         if (!ctx.ok()) return std::move(done)(ctx.status());
         auto& me = ctx->second;
         if (!me || me->role != store::GroupRole::kOwner) {
           return std::move(done)(absl::PermissionDeniedError("only the owner may change roles"));
         }
         if (user_id == who.user_id) {
           return std::move(done)(absl::InvalidArgumentError("the owner's role cannot change"));
         }
         store_.groups().SetRole(
             group_id, user_id, role,
             [this, who, group_id, user_id, role,
              done = std::move(done)](core::StatusOr<store::GroupMember> m) mutable {
               if (!m.ok()) {
                 if (m.status().code() == absl::StatusCode::kNotFound) {
                   return std::move(done)(
                       absl::NotFoundError("user " + std::to_string(user_id) + " is not a member"));
                 }
                 return std::move(done)(StorageError(m.status()));
               }
               deliverer_.Conv({user_id}, store::GroupConvId(group_id), "updated");
               Announce(group_id, who.user_id,
                        boost::json::object{{"event", "role_changed"},
                                            {"user", std::to_string(user_id)},
                                            {"role", store::GroupRoleName(role)}},
                        [m = std::move(*m), done = std::move(done)]() mutable {
                          std::move(done)(std::move(m));
                        });
             });
       });
}

void GroupServiceImpl::ListMine(Principal who, core::Callback<std::vector<GroupView>> done) {
  store_.groups().ListForUser(
      who.user_id, 0, store::kMaxPageLimit,
      [this, who, done = std::move(done)](core::StatusOr<store::Page<store::Group>> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        auto views = std::make_shared<std::vector<GroupView>>();
        for (auto& g : page->items) views->push_back(GroupView{std::move(g), std::nullopt});
        // Each with the caller's role.
        core::ForEachSequential(
            views->size(),
            [this, who, views](size_t i, auto next) {
              store_.groups().GetMember(
                  (*views)[i].group.group_id, who.user_id,
                  [views, i, next = std::move(next)](core::StatusOr<store::GroupMember> m) mutable {
                    if (m.ok()) (*views)[i].role = m->role;
                    next();
                  });
            },
            [views, done = std::move(done)]() mutable { std::move(done)(std::move(*views)); });
      });
}

}  // namespace mpim::service
