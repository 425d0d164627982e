#include "store/sqlite/group_store.h"

#include <algorithm>
#include <string>

#include "store/conv_id.h"
#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {

void SqliteGroupStore::Create(const NewGroup& group, Callback<Group> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Group>>(
      [group, now](Connection& c) { return CreateGroup(c, group, now); }, std::move(done));
}

void SqliteGroupStore::Get(int64_t group_id, Callback<Group> done) {
  exec_.Read<core::StatusOr<Group>>([group_id](Connection& c) { return LoadGroup(c, group_id); },
                                    std::move(done));
}

void SqliteGroupStore::Update(int64_t group_id, const GroupUpdate& update, Callback<Group> done) {
  exec_.Write<core::StatusOr<Group>>(
      [group_id, update](Connection& c) { return UpdateGroup(c, group_id, update); },
      std::move(done));
}

void SqliteGroupStore::Delete(int64_t group_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [group_id](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        std::string conv_id = GroupConvId(group_id);
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE FROM message_fts WHERE rowid IN (SELECT msg_id FROM messages WHERE "
                   "conv_id = ?)",
                   conv_id));
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM session_cursors WHERE conv_id = ?", conv_id));
        // Cascades to messages and user_conversations.
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM conversations WHERE conv_id = ?", conv_id));
        // Cascades to group_members and group_member_spans.
        return c.Exec("DELETE FROM chat_groups WHERE group_id = ?", group_id);
      },
      std::move(done));
}

void SqliteGroupStore::AddMembers(int64_t group_id, const std::vector<int64_t>& user_ids,
                                  Callback<AddMembersResult> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<AddMembersResult>>(
      [group_id, user_ids, now](Connection& c) -> core::StatusOr<AddMembersResult> {
        MPIM_ASSIGN_OR_RETURN(int64_t last_seq, GroupLastSeq(c, group_id));
        return AddGroupMembers(c, group_id, user_ids, now, last_seq);
      },
      std::move(done));
}

void SqliteGroupStore::RemoveMember(int64_t group_id, int64_t user_id,
                                    Callback<MembershipSpan> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<MembershipSpan>>(
      [group_id, user_id, now](Connection& c) -> core::StatusOr<MembershipSpan> {
        MPIM_ASSIGN_OR_RETURN(int64_t last_seq, GroupLastSeq(c, group_id));
        return RemoveGroupMember(c, group_id, user_id, now, last_seq);
      },
      std::move(done));
}

void SqliteGroupStore::SetRole(int64_t group_id, int64_t user_id, GroupRole role,
                               Callback<GroupMember> done) {
  exec_.Write<core::StatusOr<GroupMember>>(
      [group_id, user_id, role](Connection& c) -> core::StatusOr<GroupMember> {
        MPIM_RETURN_IF_ERROR(CheckRole(role));
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        return SetMemberRole(c, group_id, user_id, role);
      },
      std::move(done));
}

void SqliteGroupStore::GetMember(int64_t group_id, int64_t user_id, Callback<GroupMember> done) {
  exec_.Read<core::StatusOr<GroupMember>>(
      [group_id, user_id](Connection& c) { return GetGroupMember(c, group_id, user_id); },
      std::move(done));
}

void SqliteGroupStore::ListMembers(int64_t group_id, int64_t after_user, int limit,
                                   Callback<Page<GroupMember>> done) {
  exec_.Read<core::StatusOr<Page<GroupMember>>>(
      [=](Connection& c) { return ListGroupMembers(c, group_id, after_user, limit); },
      std::move(done));
}

void SqliteGroupStore::ListPastSpans(int64_t group_id, int64_t user_id,
                                     Callback<std::vector<MembershipSpan>> done) {
  exec_.Read<core::StatusOr<std::vector<MembershipSpan>>>(
      [group_id, user_id](Connection& c) { return store::ListPastSpans(c, group_id, user_id); },
      std::move(done));
}

void SqliteGroupStore::ListForUser(int64_t user_id, int64_t after_group, int limit,
                                   Callback<Page<Group>> done) {
  exec_.Read<core::StatusOr<Page<Group>>>(
      [=](Connection& c) { return ListUserGroups(c, user_id, after_group, limit); },
      std::move(done));
}

void SqliteGroupStore::ListActive(int limit, Callback<std::vector<int64_t>> done) {
  exec_.Read<core::StatusOr<std::vector<int64_t>>>(
      [limit](Connection& c) { return ListActiveGroups(c, limit); }, std::move(done));
}

}  // namespace mpim::store::sqlite
