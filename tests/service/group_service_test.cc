// GroupService (service/group/group_service_impl.h) on a real SQLite store
// behind a FaultStore, with a recording Deliverer: who may do what (owner,
// admin, member, outsider; public and private groups), what each change
// announces (a system message) and tells (a conv event), ownership hand-
// over, and that a storage failure changes and tells nothing while a failed
// announcement does not undo a change.
#include <gtest/gtest.h>

#include <algorithm>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "support/service_fixture.h"

namespace mpim::service {
namespace {

using store::GroupRole;
using testing::Await;
using testing::AwaitStatus;

class GroupServiceTest : public testing::ServiceTest {
 protected:
  void SetUp() override {
    ServiceTest::SetUp();
    if (HasFatalFailure()) return;
    for (const char* name : {"alice", "bob", "carol", "dave", "erin"}) {
      ids_.push_back(MakeUser(name));
      who_.push_back(Login(ids_.back()));
    }
  }
  testing::ServiceOptions Options() const override {
    testing::ServiceOptions o;
    o.limits.group_max_members = 4;
    return o;
  }

  GroupService& groups() { return services().groups(); }
  int64_t id(int i) const { return ids_[static_cast<size_t>(i)]; }
  Principal who(int i) const { return who_[static_cast<size_t>(i)]; }

  core::StatusOr<store::Group> Create(int by, const std::string& name, std::vector<int64_t> members,
                                      bool is_public = false) {
    return Await<store::Group>([&](auto cb) {
      groups().Create(who(by), NewGroupRequest{name, std::move(members), is_public}, std::move(cb));
    });
  }
  core::StatusOr<GroupView> Get(int by, int64_t group) {
    return Await<GroupView>([&](auto cb) { groups().Get(who(by), group, std::move(cb)); });
  }
  core::StatusOr<std::vector<int64_t>> Add(int by, int64_t group, std::vector<int64_t> users) {
    return Await<std::vector<int64_t>>(
        [&](auto cb) { groups().AddMembers(who(by), group, std::move(users), std::move(cb)); });
  }
  core::Status Remove(int by, int64_t group, int64_t user) {
    return AwaitStatus(
        [&](auto cb) { groups().RemoveMember(who(by), group, user, std::move(cb)); });
  }
  core::StatusOr<store::GroupMember> SetRole(int by, int64_t group, int64_t user, GroupRole role) {
    return Await<store::GroupMember>(
        [&](auto cb) { groups().SetRole(who(by), group, user, role, std::move(cb)); });
  }
  // The member's role, or nullopt if not a member (read from the store).
  std::optional<GroupRole> RoleOf(int64_t group, int64_t user) {
    auto m = store::Call(store_->groups(), &store::GroupStore::GetMember, group, user);
    if (!m.ok()) {
      EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << m.status();
      return std::nullopt;
    }
    return m->role;
  }
  // The "event" of every system message in the group's conversation.
  std::vector<std::string> Announced(int64_t group) {
    std::vector<std::string> events;
    for (const auto& m : Stored(store::GroupConvId(group))) {
      EXPECT_EQ(m.type, "system");
      const std::string key = "\"event\":\"";
      size_t at = m.body.find(key);
      if (at == std::string::npos) continue;
      at += key.size();
      events.push_back(m.body.substr(at, m.body.find('"', at) - at));
    }
    return events;
  }
  // A group of alice and bob made by alice, with the conv events of its
  // creation forgotten.
  int64_t Team() {
    auto g = Create(0, "team", {id(1)});
    EXPECT_TRUE(g.ok()) << g.status();
    deliverer_.convs.Clear();
    return g.ok() ? g->group_id : 0;
  }

  std::vector<int64_t> ids_;
  std::vector<Principal> who_;
};

TEST_F(GroupServiceTest, CreateMakesTheCallerOwnerAnnouncesAndTellsEveryMember) {
  // The owner and a duplicate in the list are dropped.
  auto g = Create(0, "team", {id(1), id(2), id(1), id(0)});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->name, "team");
  EXPECT_EQ(g->owner_id, id(0));
  EXPECT_EQ(g->member_count, 3);
  EXPECT_EQ(RoleOf(g->group_id, id(0)), GroupRole::kOwner);
  EXPECT_EQ(RoleOf(g->group_id, id(1)), GroupRole::kMember);
  EXPECT_EQ(RoleOf(g->group_id, id(2)), GroupRole::kMember);
  EXPECT_EQ(Announced(g->group_id), std::vector<std::string>{"created"});
  auto convs = deliverer_.convs.calls();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(Sorted(convs[0].users), Sorted({id(0), id(1), id(2)}));
  EXPECT_EQ(convs[0].conv_id, store::GroupConvId(g->group_id));
  EXPECT_EQ(convs[0].event, "joined");
}

TEST_F(GroupServiceTest, CreateRefusesBadNamesUnknownMembersAndTooManyMembers) {
  EXPECT_EQ(Create(0, "", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(0, std::string(65, 'n'), {}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(0, "bad\nname", {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(0, "g", {0}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(0, "g", {id(1), 999999}).status().code(), absl::StatusCode::kNotFound);
  // limits.group_max_members = 4: the owner and four others are too many.
  EXPECT_EQ(Create(0, "g", {id(1), id(2), id(3), id(4)}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto mine = store::Call(store_->groups(), &store::GroupStore::ListForUser, id(0), int64_t{0}, 10);
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(mine->items.empty()) << "nothing was created";
  EXPECT_EQ(deliverer_.convs.size(), 0u);
  EXPECT_TRUE(Create(0, "g", {id(1), id(2), id(3)}).ok()) << "four is the limit";
}

TEST_F(GroupServiceTest, AFailedCreateIsUnavailableAndTellsNobody) {
  faults().FailNext("groups.Create");
  EXPECT_EQ(Create(0, "team", {id(1)}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(deliverer_.convs.size(), 0u);
  EXPECT_EQ(faults().Calls("messages.Append"), 0);
}

TEST_F(GroupServiceTest, OutsidersSeeAPublicGroupButNotAPrivateOne) {
  auto priv = Create(0, "private", {id(1)});
  auto pub = Create(0, "public", {id(1)}, /*is_public=*/true);
  ASSERT_TRUE(priv.ok() && pub.ok());
  EXPECT_EQ(Get(2, priv->group_id).status().code(), absl::StatusCode::kPermissionDenied);
  auto outside = Get(2, pub->group_id);
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_FALSE(outside->role.has_value());
  auto inside = Get(1, priv->group_id);
  ASSERT_TRUE(inside.ok()) << inside.status();
  EXPECT_EQ(inside->role, GroupRole::kMember);
  EXPECT_EQ(Get(2, priv->group_id + 1000).status().code(), absl::StatusCode::kNotFound);
  auto members = Await<MemberPage>(
      [&](auto cb) { groups().ListMembers(who(2), priv->group_id, 0, 10, std::move(cb)); });
  EXPECT_EQ(members.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(GroupServiceTest, ListMembersPagesByUserId) {
  auto g = Create(0, "team", {id(1), id(2), id(3)});
  ASSERT_TRUE(g.ok());
  auto first = Await<MemberPage>(
      [&](auto cb) { groups().ListMembers(who(1), g->group_id, 0, 3, std::move(cb)); });
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->members.size(), 3u);
  EXPECT_TRUE(first->has_more);
  EXPECT_EQ(first->members[0].user.user_id, id(0));
  EXPECT_EQ(first->members[0].role, GroupRole::kOwner);
  auto rest = Await<MemberPage>([&](auto cb) {
    groups().ListMembers(who(1), g->group_id, first->members.back().user.user_id, 3, std::move(cb));
  });
  ASSERT_TRUE(rest.ok()) << rest.status();
  ASSERT_EQ(rest->members.size(), 1u);
  EXPECT_EQ(rest->members[0].user.user_id, id(3));
  EXPECT_FALSE(rest->has_more);
  auto bad = Await<MemberPage>(
      [&](auto cb) { groups().ListMembers(who(1), g->group_id, 0, 0, std::move(cb)); });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GroupServiceTest, OnlyTheOwnerOrAnAdminAddsMembers) {
  const int64_t group = Team();
  ASSERT_NE(group, 0);
  EXPECT_EQ(Add(1, group, {id(2)}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(RoleOf(group, id(2)).has_value());
  auto added = Add(0, group, {id(2), id(1)});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, std::vector<int64_t>{id(2)}) << "bob was a member already";
  EXPECT_EQ(RoleOf(group, id(2)), GroupRole::kMember);
  EXPECT_EQ(Announced(group), (std::vector<std::string>{"created", "joined"}));
  auto convs = deliverer_.convs.calls();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(convs[0].users, std::vector<int64_t>{id(2)});
  EXPECT_EQ(convs[0].event, "joined");
  EXPECT_EQ(Add(0, group, {id(2)}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Add(0, group, {999999}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Add(0, group, {}).status().code(), absl::StatusCode::kInvalidArgument);
  // limits.group_max_members = 4: three now, two more are too many.
  EXPECT_EQ(Add(0, group, {id(3), id(4)}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(GroupServiceTest, AnyoneJoinsAPublicGroupAndNobodyAPrivateOneUninvited) {
  auto pub = Create(0, "public", {}, /*is_public=*/true);
  auto priv = Create(0, "private", {});
  ASSERT_TRUE(pub.ok() && priv.ok());
  auto joined = Add(2, pub->group_id, {id(2)});
  ASSERT_TRUE(joined.ok()) << joined.status();
  EXPECT_EQ(RoleOf(pub->group_id, id(2)), GroupRole::kMember);
  EXPECT_EQ(Add(2, pub->group_id, {id(2)}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Add(2, pub->group_id, {id(3)}).status().code(), absl::StatusCode::kPermissionDenied)
      << "a member does not add others";
  EXPECT_EQ(Add(2, priv->group_id, {id(2)}).status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(RoleOf(priv->group_id, id(2)).has_value());
}

TEST_F(GroupServiceTest, AFailedAddChangesNothingAndTellsNobody) {
  const int64_t group = Team();
  ASSERT_NE(group, 0);
  faults().FailNext("groups.AddMembers");
  EXPECT_EQ(Add(0, group, {id(2)}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(RoleOf(group, id(2)).has_value());
  EXPECT_EQ(deliverer_.convs.size(), 0u);
  EXPECT_EQ(Announced(group), std::vector<std::string>{"created"});
  faults().FailNext("groups.GetMember");
  EXPECT_EQ(Add(0, group, {id(2)}).status().code(), absl::StatusCode::kUnavailable)
      << "the caller's role could not be read";
  EXPECT_FALSE(RoleOf(group, id(2)).has_value());
}

TEST_F(GroupServiceTest, AFailedAnnouncementDoesNotUndoTheChange) {
  const int64_t group = Team();
  ASSERT_NE(group, 0);
  faults().FailNext("messages.Append");
  auto added = Add(0, group, {id(2)});
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(RoleOf(group, id(2)), GroupRole::kMember);
  EXPECT_EQ(Announced(group), std::vector<std::string>{"created"});
  EXPECT_EQ(deliverer_.convs.size(), 1u) << "carol is still told";
}

TEST_F(GroupServiceTest, AdminsRemoveMembersButNotOtherAdminsNorTheOwner) {
  auto g = Create(0, "team", {id(1), id(2), id(3)});
  ASSERT_TRUE(g.ok());
  const int64_t group = g->group_id;
  ASSERT_TRUE(SetRole(0, group, id(1), GroupRole::kAdmin).ok());
  ASSERT_TRUE(SetRole(0, group, id(2), GroupRole::kAdmin).ok());
  deliverer_.convs.Clear();
  EXPECT_EQ(Remove(3, group, id(2)).code(), absl::StatusCode::kPermissionDenied) << "a member";
  EXPECT_EQ(Remove(1, group, id(2)).code(), absl::StatusCode::kPermissionDenied) << "an admin";
  EXPECT_EQ(Remove(1, group, id(0)).code(), absl::StatusCode::kPermissionDenied) << "the owner";
  EXPECT_EQ(Remove(1, group, id(4)).code(), absl::StatusCode::kNotFound) << "not a member";
  EXPECT_EQ(deliverer_.convs.size(), 0u);
  ASSERT_TRUE(Remove(1, group, id(3)).ok());
  EXPECT_FALSE(RoleOf(group, id(3)).has_value());
  auto convs = deliverer_.convs.calls();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(convs[0].users, std::vector<int64_t>{id(3)});
  EXPECT_EQ(convs[0].event, "removed");
  ASSERT_TRUE(Remove(0, group, id(2)).ok()) << "the owner removes an admin";
  EXPECT_FALSE(RoleOf(group, id(2)).has_value());
}

TEST_F(GroupServiceTest, ARemovedMemberGetsNoMoreMessages) {
  auto g = Create(0, "team", {id(1), id(2)});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(Send(who(0), Text(g->group_id, "before", "x", true)).ok());  // members cached
  ASSERT_TRUE(Remove(0, g->group_id, id(2)).ok());
  deliverer_.messages.Clear();
  auto sent = Send(who(1), Text(g->group_id, "after", "x", true));
  ASSERT_TRUE(sent.ok()) << sent.status();
  auto calls = deliverer_.messages.calls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(Sorted(calls[0].users), Sorted({id(0), id(1)}));
  EXPECT_EQ(Send(who(2), Text(g->group_id, "out", "x", true)).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(GroupServiceTest, AnOwnerWhoLeavesHandsTheGroupToTheOldestAdmin) {
  auto g = Create(0, "team", {id(1), id(2)});
  ASSERT_TRUE(g.ok());
  const int64_t group = g->group_id;
  ASSERT_TRUE(SetRole(0, group, id(2), GroupRole::kAdmin).ok());
  ASSERT_TRUE(Remove(0, group, id(0)).ok());  // the owner leaves
  EXPECT_FALSE(RoleOf(group, id(0)).has_value());
  EXPECT_EQ(RoleOf(group, id(2)), GroupRole::kOwner) << "the admin, though bob joined as early";
  EXPECT_EQ(RoleOf(group, id(1)), GroupRole::kMember);
  auto view = Get(2, group);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(view->group.owner_id, id(2));
  auto events = Announced(group);
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(std::vector<std::string>(events.end() - 2, events.end()),
            (std::vector<std::string>{"owner_changed", "left"}));
}

TEST_F(GroupServiceTest, TheLastMemberLeavingDeletesTheGroup) {
  auto g = Create(0, "solo", {});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(Remove(0, g->group_id, id(0)).ok());
  auto gone = store::Call(store_->groups(), &store::GroupStore::Get, g->group_id);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Remove(0, g->group_id, id(0)).code(), absl::StatusCode::kNotFound);
}

TEST_F(GroupServiceTest, OnlyTheOwnerChangesRolesAndNeverToOwner) {
  auto g = Create(0, "team", {id(1), id(2)});
  ASSERT_TRUE(g.ok());
  const int64_t group = g->group_id;
  ASSERT_TRUE(SetRole(0, group, id(1), GroupRole::kAdmin).ok());
  EXPECT_EQ(SetRole(1, group, id(2), GroupRole::kAdmin).status().code(),
            absl::StatusCode::kPermissionDenied)
      << "an admin";
  EXPECT_EQ(SetRole(0, group, id(2), GroupRole::kOwner).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetRole(0, group, id(0), GroupRole::kMember).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SetRole(0, group, id(3), GroupRole::kAdmin).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(RoleOf(group, id(1)), GroupRole::kAdmin);
  EXPECT_EQ(RoleOf(group, id(2)), GroupRole::kMember);
  auto demoted = SetRole(0, group, id(1), GroupRole::kMember);
  ASSERT_TRUE(demoted.ok()) << demoted.status();
  EXPECT_EQ(demoted->role, GroupRole::kMember);
  EXPECT_EQ(Announced(group),
            (std::vector<std::string>{"created", "role_changed", "role_changed"}));
}

TEST_F(GroupServiceTest, OnlyTheOwnerDeletesAndEveryMemberIsTold) {
  auto g = Create(0, "team", {id(1), id(2)});
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(SetRole(0, g->group_id, id(1), GroupRole::kAdmin).ok());
  deliverer_.convs.Clear();
  EXPECT_EQ(
      AwaitStatus([&](auto cb) { groups().Delete(who(1), g->group_id, std::move(cb)); }).code(),
      absl::StatusCode::kPermissionDenied);
  faults().FailNext("groups.Delete");
  EXPECT_EQ(
      AwaitStatus([&](auto cb) { groups().Delete(who(0), g->group_id, std::move(cb)); }).code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(deliverer_.convs.size(), 0u);
  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { groups().Delete(who(0), g->group_id, std::move(cb)); }).ok());
  auto convs = deliverer_.convs.calls();
  ASSERT_EQ(convs.size(), 1u);
  EXPECT_EQ(Sorted(convs[0].users), Sorted({id(0), id(1), id(2)}));
  EXPECT_EQ(convs[0].event, "removed");
  EXPECT_EQ(Get(0, g->group_id).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace mpim::service
