// Contract: FriendStore and GroupStore.
#include "store_contract.h"

namespace mpim::store::testing {
namespace {

using absl::StatusCode;

TEST_P(StoreContractTest, FriendRequestThenAcceptByAskingBack) {
  int64_t a = MakeUser("alice"), b = MakeUser("bob");
  auto r = Call(store().friends(), &FriendStore::Request, a, b);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(*r, FriendRequestOutcome::kRequested);
  EXPECT_EQ(Call(store().friends(), &FriendStore::Request, a, b).status().code(),
            StatusCode::kAlreadyExists);
  auto incoming = Call(store().friends(), &FriendStore::ListRequests, b, true, int64_t{0}, 10);
  ASSERT_TRUE(incoming.ok());
  ASSERT_EQ(incoming->items.size(), 1u);
  EXPECT_EQ(incoming->items[0].from_user, a);
  EXPECT_EQ(incoming->items[0].to_user, b);
  EXPECT_EQ(incoming->items[0].created_at, kStartMs);
  auto outgoing = Call(store().friends(), &FriendStore::ListRequests, a, false, int64_t{0}, 10);
  ASSERT_EQ(outgoing->items.size(), 1u);
  EXPECT_TRUE(
      Call(store().friends(), &FriendStore::ListRequests, a, true, int64_t{0}, 10)->items.empty());
  EXPECT_FALSE(*Call(store().friends(), &FriendStore::AreFriends, a, b));

  r = Call(store().friends(), &FriendStore::Request, b, a);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, FriendRequestOutcome::kAccepted);
  EXPECT_TRUE(*Call(store().friends(), &FriendStore::AreFriends, a, b));
  EXPECT_TRUE(*Call(store().friends(), &FriendStore::AreFriends, b, a));
  EXPECT_TRUE(
      Call(store().friends(), &FriendStore::ListRequests, b, true, int64_t{0}, 10)->items.empty());
  EXPECT_EQ(Call(store().friends(), &FriendStore::Request, a, b).status().code(),
            StatusCode::kAlreadyExists);

  auto friends = Call(store().friends(), &FriendStore::List, a, int64_t{0}, 10);
  ASSERT_EQ(friends->items.size(), 1u);
  EXPECT_EQ(friends->items[0].user_id, b);

  ASSERT_TRUE(Call(store().friends(), &FriendStore::Remove, b, a).ok());
  EXPECT_FALSE(*Call(store().friends(), &FriendStore::AreFriends, a, b));
  EXPECT_EQ(Call(store().friends(), &FriendStore::Remove, a, b).code(), StatusCode::kNotFound);
}

TEST_P(StoreContractTest, FriendErrorsAndRequestDeletion) {
  int64_t a = MakeUser("alice"), b = MakeUser("bob");
  EXPECT_EQ(Call(store().friends(), &FriendStore::Request, a, a).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().friends(), &FriendStore::Request, a, int64_t{4242}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().friends(), &FriendStore::DeleteRequest, a, b).code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(Call(store().friends(), &FriendStore::Request, a, b).ok());
  ASSERT_TRUE(Call(store().friends(), &FriendStore::DeleteRequest, a, b).ok());
  EXPECT_TRUE(
      Call(store().friends(), &FriendStore::ListRequests, b, true, int64_t{0}, 10)->items.empty());
  EXPECT_EQ(Call(store().friends(), &FriendStore::List, a, int64_t{0}, 0).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, FriendListPagesByUserId) {
  int64_t me = MakeUser("me");
  std::vector<int64_t> others;
  for (int i = 0; i < 5; ++i) {
    int64_t o = MakeUser(Numbered("u", i));
    others.push_back(o);
    ASSERT_TRUE(Call(store().friends(), &FriendStore::Request, o, me).ok());
    ASSERT_TRUE(Call(store().friends(), &FriendStore::Request, me, o).ok());
  }
  auto page = Call(store().friends(), &FriendStore::List, me, int64_t{0}, 2);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->items[0].user_id, others[0]);
  page = Call(store().friends(), &FriendStore::List, me, others[3], 2);
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].user_id, others[4]);
  EXPECT_FALSE(page->has_more);
  page = Call(store().friends(), &FriendStore::List, me, others[4], 2);
  EXPECT_TRUE(page->items.empty());
  EXPECT_FALSE(page->has_more);
}

TEST_P(StoreContractTest, BlocksAreDirectional) {
  int64_t a = MakeUser("alice"), b = MakeUser("bob");
  ASSERT_TRUE(Call(store().friends(), &FriendStore::Block, a, b).ok());
  EXPECT_EQ(Call(store().friends(), &FriendStore::Block, a, b).code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(*Call(store().friends(), &FriendStore::IsBlocked, a, b));
  EXPECT_FALSE(*Call(store().friends(), &FriendStore::IsBlocked, b, a));
  EXPECT_FALSE(*Call(store().friends(), &FriendStore::IsBlocked, a, int64_t{4242}));
  EXPECT_EQ(Call(store().friends(), &FriendStore::Block, a, a).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().friends(), &FriendStore::Block, a, int64_t{4242}).code(),
            StatusCode::kNotFound);
  auto blocked = Call(store().friends(), &FriendStore::ListBlocked, a, int64_t{0}, 10);
  ASSERT_EQ(blocked->items.size(), 1u);
  EXPECT_EQ(blocked->items[0].user_id, b);
  EXPECT_EQ(blocked->items[0].since, kStartMs);
  ASSERT_TRUE(Call(store().friends(), &FriendStore::Unblock, a, b).ok());
  EXPECT_EQ(Call(store().friends(), &FriendStore::Unblock, a, b).code(), StatusCode::kNotFound);
  EXPECT_FALSE(*Call(store().friends(), &FriendStore::IsBlocked, a, b));
}

TEST_P(StoreContractTest, GroupCreateWithMembers) {
  int64_t owner = MakeUser("owner"), m1 = MakeUser("m1"), m2 = MakeUser("m2");
  auto g = Call(store().groups(), &GroupStore::Create,
                NewGroup{"team", "t.png", owner, true, {m2, m1, m1, owner}});
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->group_id, 1001);
  EXPECT_EQ(g->conv_id, "g:1001");
  EXPECT_EQ(g->name, "team");
  EXPECT_EQ(g->avatar_url, "t.png");
  EXPECT_EQ(g->owner_id, owner);
  EXPECT_TRUE(g->is_public);
  EXPECT_EQ(g->member_count, 3);
  EXPECT_EQ(g->created_at, kStartMs);

  auto conv = Call(store().conversations(), &ConversationStore::Get, g->conv_id);
  ASSERT_TRUE(conv.ok()) << conv.status();
  EXPECT_EQ(conv->type, ConvType::kGroup);
  EXPECT_EQ(conv->last_seq, 0);

  auto members = Call(store().groups(), &GroupStore::ListMembers, g->group_id, int64_t{0}, 10);
  ASSERT_TRUE(members.ok());
  ASSERT_EQ(members->items.size(), 3u);
  EXPECT_EQ(members->items[0].user_id, owner);
  EXPECT_EQ(members->items[0].role, GroupRole::kOwner);
  EXPECT_EQ(members->items[1].role, GroupRole::kMember);
  EXPECT_EQ(members->items[1].joined_at, kStartMs);
  EXPECT_EQ(members->items[1].joined_seq, 0);

  // Each member now has the conversation.
  auto uc = Call(store().conversations(), &ConversationStore::GetForUser, m2, g->conv_id);
  ASSERT_TRUE(uc.ok()) << uc.status();
  EXPECT_EQ(uc->read_seq, 0);
}

TEST_P(StoreContractTest, GroupCreateErrorsWriteNothing) {
  int64_t owner = MakeUser("owner");
  EXPECT_EQ(Call(store().groups(), &GroupStore::Create, NewGroup{"", "", owner, false, {}})
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().groups(), &GroupStore::Create, NewGroup{"x", "", int64_t{4242}, false, {}})
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().groups(), &GroupStore::Create, NewGroup{"x", "", owner, false, {4242}})
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(
      Call(store().groups(), &GroupStore::ListForUser, owner, int64_t{0}, 10)->items.empty());
  EXPECT_EQ(Call(store().groups(), &GroupStore::Get, int64_t{1001}).status().code(),
            StatusCode::kNotFound);
}

TEST_P(StoreContractTest, GroupUpdateAndDelete) {
  int64_t owner = MakeUser("owner"), m = MakeUser("m");
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"team", "", owner, false, {m}});
  ASSERT_TRUE(g.ok());
  GroupUpdate update;
  update.name = "renamed";
  update.is_public = true;
  auto updated = Call(store().groups(), &GroupStore::Update, g->group_id, update);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->name, "renamed");
  EXPECT_TRUE(updated->is_public);
  EXPECT_EQ(updated->avatar_url, "");
  update = GroupUpdate{};
  update.name = "";
  EXPECT_EQ(Call(store().groups(), &GroupStore::Update, g->group_id, update).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(
      Call(store().groups(), &GroupStore::Update, int64_t{4242}, GroupUpdate{}).status().code(),
      StatusCode::kNotFound);

  auto msg = Append(TextMessage(g->conv_id, owner, g->group_id, "hello group", "c1"));
  ASSERT_TRUE(msg.ok());
  ASSERT_TRUE(Call(store().search(), &SearchStore::Index,
                   std::vector<SearchDocument>{{msg->message.msg_id, "hello group"}})
                  .ok());

  ASSERT_TRUE(Call(store().groups(), &GroupStore::Delete, g->group_id).ok());
  EXPECT_EQ(Call(store().groups(), &GroupStore::Get, g->group_id).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, g->conv_id).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().messages(), &MessageStore::Get, msg->message.msg_id).status().code(),
            StatusCode::kNotFound);
  // An engine may still remember the conversation's last_seq: no matter.
  EXPECT_EQ(Append(TextMessage(g->conv_id, owner, g->group_id, "late", "c2")).status().code(),
            StatusCode::kNotFound);
  EXPECT_TRUE(Call(store().groups(), &GroupStore::ListForUser, m, int64_t{0}, 10)->items.empty());
  EXPECT_TRUE(Call(store().conversations(), &ConversationStore::ListForUser, m,
                   std::optional<ConversationCursor>(), 10)
                  ->items.empty());
  EXPECT_EQ(Call(store().groups(), &GroupStore::Delete, g->group_id).code(), StatusCode::kNotFound);
}

TEST_P(StoreContractTest, GroupJoinSeqAndLeaveSpan) {
  int64_t owner = MakeUser("owner"), late = MakeUser("late"), ghost = MakeUser("ghost");
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"team", "", owner, false, {}});
  ASSERT_TRUE(g.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Append(TextMessage(g->conv_id, owner, g->group_id, "m", Numbered("c", i))).ok());
  }
  auto added = Call(store().groups(), &GroupStore::AddMembers, g->group_id,
                    std::vector<int64_t>{late, owner, late});
  ASSERT_TRUE(added.ok()) << added.status();
  ASSERT_EQ(added->added.size(), 1u);
  EXPECT_EQ(added->added[0].user_id, late);
  EXPECT_EQ(added->added[0].joined_seq, 3);
  EXPECT_EQ(added->already_members, std::vector<int64_t>{owner});
  EXPECT_EQ(Call(store().groups(), &GroupStore::Get, g->group_id)->member_count, 2);

  // Joined at 3: history from 4 on is theirs; nothing is unread yet.
  auto uc = Call(store().conversations(), &ConversationStore::GetForUser, late, g->conv_id);
  ASSERT_TRUE(uc.ok());
  EXPECT_EQ(uc->read_seq, 3);
  EXPECT_EQ(uc->unread, 0);

  // All or nothing: an unknown user adds nobody.
  EXPECT_EQ(Call(store().groups(), &GroupStore::AddMembers, g->group_id,
                 std::vector<int64_t>{ghost, 4242})
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().groups(), &GroupStore::GetMember, g->group_id, ghost).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(
      Call(store().groups(), &GroupStore::AddMembers, int64_t{4242}, std::vector<int64_t>{late})
          .status()
          .code(),
      StatusCode::kNotFound);

  ASSERT_TRUE(Append(TextMessage(g->conv_id, owner, g->group_id, "m", "c9")).ok());
  AdvanceMs(7);
  auto span = Call(store().groups(), &GroupStore::RemoveMember, g->group_id, late);
  ASSERT_TRUE(span.ok()) << span.status();
  EXPECT_EQ(span->joined_seq, 3);
  EXPECT_EQ(span->left_seq, 4);
  EXPECT_EQ(span->left_at, kStartMs + 7);
  EXPECT_EQ(Call(store().groups(), &GroupStore::RemoveMember, g->group_id, late).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().groups(), &GroupStore::RemoveMember, g->group_id, owner).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::GetForUser, late, g->conv_id)
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().groups(), &GroupStore::Get, g->group_id)->member_count, 1);

  // Rejoin: a new membership from the current seq; the old span is kept.
  ASSERT_TRUE(
      Call(store().groups(), &GroupStore::AddMembers, g->group_id, std::vector<int64_t>{late})
          .ok());
  EXPECT_EQ(Call(store().groups(), &GroupStore::GetMember, g->group_id, late)->joined_seq, 4);
  auto spans = Call(store().groups(), &GroupStore::ListPastSpans, g->group_id, late);
  ASSERT_TRUE(spans.ok());
  ASSERT_EQ(spans->size(), 1u);
  EXPECT_EQ((*spans)[0].left_seq, 4);
  EXPECT_TRUE(Call(store().groups(), &GroupStore::ListPastSpans, g->group_id, owner)->empty());
}

TEST_P(StoreContractTest, GroupRolesAndOwnershipTransfer) {
  int64_t owner = MakeUser("owner"), a = MakeUser("a"), outsider = MakeUser("x");
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"team", "", owner, false, {a}});
  ASSERT_TRUE(g.ok());
  auto m = Call(store().groups(), &GroupStore::SetRole, g->group_id, a, GroupRole::kAdmin);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->role, GroupRole::kAdmin);
  EXPECT_EQ(Call(store().groups(), &GroupStore::GetMember, g->group_id, a)->role,
            GroupRole::kAdmin);
  EXPECT_EQ(Call(store().groups(), &GroupStore::SetRole, g->group_id, outsider, GroupRole::kAdmin)
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().groups(), &GroupStore::SetRole, g->group_id, owner, GroupRole::kMember)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  ASSERT_TRUE(Call(store().groups(), &GroupStore::SetRole, g->group_id, a, GroupRole::kOwner).ok());
  EXPECT_EQ(Call(store().groups(), &GroupStore::Get, g->group_id)->owner_id, a);
  EXPECT_EQ(Call(store().groups(), &GroupStore::GetMember, g->group_id, owner)->role,
            GroupRole::kAdmin);
  EXPECT_STREQ(GroupRoleName(GroupRole::kOwner), "owner");
  EXPECT_STREQ(GroupRoleName(GroupRole::kAdmin), "admin");
  EXPECT_STREQ(GroupRoleName(GroupRole::kMember), "member");
}

TEST_P(StoreContractTest, GroupMemberPagingAndUserGroups) {
  int64_t owner = MakeUser("owner");
  std::vector<int64_t> users;
  for (int i = 0; i < 7; ++i) users.push_back(MakeUser(Numbered("u", i)));
  auto g1 = Call(store().groups(), &GroupStore::Create, NewGroup{"one", "", owner, false, users});
  auto g2 = Call(store().groups(), &GroupStore::Create, NewGroup{"two", "", owner, false, {}});
  ASSERT_TRUE(g1.ok() && g2.ok());
  std::vector<int64_t> seen;
  int64_t after = 0;
  for (;;) {
    auto page = Call(store().groups(), &GroupStore::ListMembers, g1->group_id, after, 3);
    ASSERT_TRUE(page.ok());
    for (const auto& m : page->items) seen.push_back(m.user_id);
    if (!page->has_more) break;
    after = page->items.back().user_id;
  }
  std::vector<int64_t> expected = users;
  expected.insert(expected.begin(), owner);
  EXPECT_EQ(seen, expected);
  EXPECT_EQ(Call(store().groups(), &GroupStore::ListMembers, int64_t{4242}, int64_t{0}, 3)
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(
      Call(store().groups(), &GroupStore::ListMembers, g1->group_id, int64_t{0}, 0).status().code(),
      StatusCode::kInvalidArgument);

  auto mine = Call(store().groups(), &GroupStore::ListForUser, owner, int64_t{0}, 1);
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_TRUE(mine->has_more);
  EXPECT_EQ(mine->items[0].group_id, g1->group_id);
  mine = Call(store().groups(), &GroupStore::ListForUser, owner, g1->group_id, 1);
  ASSERT_EQ(mine->items.size(), 1u);
  EXPECT_FALSE(mine->has_more);
  EXPECT_EQ(mine->items[0].name, "two");
  EXPECT_EQ(
      Call(store().groups(), &GroupStore::ListForUser, users[0], int64_t{0}, 10)->items.size(), 1u);
}

}  // namespace
TEST_P(StoreContractTest, ActiveGroupsNewestFirstWithoutPrivateChats) {
  int64_t a = MakeUser("a"), b = MakeUser("b");
  std::vector<int64_t> groups;
  for (int i = 0; i < 3; ++i) {
    auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"g", "", a, false, {b}});
    ASSERT_TRUE(g.ok()) << g.status();
    groups.push_back(g->group_id);
  }
  // Activity: group 0 last, group 2 before it, group 1 never (its creation).
  AdvanceMs(10);
  ASSERT_TRUE(Append(TextMessage(GroupConvId(groups[2]), a, groups[2], "x", "k1")).ok());
  AdvanceMs(10);
  ASSERT_TRUE(Append(TextMessage(PrivateConvId(a, b), a, b, "x", "k2")).ok());
  AdvanceMs(10);
  ASSERT_TRUE(Append(TextMessage(GroupConvId(groups[0]), a, groups[0], "x", "k3")).ok());
  auto active = Call(store().groups(), &GroupStore::ListActive, 10);
  ASSERT_TRUE(active.ok()) << active.status();
  ASSERT_EQ(active->size(), 3u);
  EXPECT_EQ((*active)[0], groups[0]);
  EXPECT_EQ((*active)[1], groups[2]);
  EXPECT_EQ((*active)[2], groups[1]);
  EXPECT_EQ(Call(store().groups(), &GroupStore::ListActive, 1)->size(), 1u);
  EXPECT_EQ(Call(store().groups(), &GroupStore::ListActive, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace mpim::store::testing
