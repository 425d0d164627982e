#include "store/mysql/group_store.h"

#include <algorithm>
#include <string>

#include "store/conv_id.h"
#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {
namespace {

// The group conversation's last_seq; kNotFound if the group does not exist.
// The group conversation's last_seq, its row locked FOR UPDATE (as appends
// lock it) in a write that changes membership, so that joined_seq and
// left_seq are exact while other nodes append to the group. kNotFound if the
// group does not exist. (Reads use store::GroupLastSeq.)
core::StatusOr<int64_t> LockGroupLastSeq(Connection& c, int64_t group_id) {
  MPIM_ASSIGN_OR_RETURN(
      auto seq, c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ? FOR UPDATE",
                           GroupConvId(group_id)));
  if (!seq) return GroupNotFound(group_id);
  return *seq;
}

}  // namespace

void MysqlGroupStore::Create(const NewGroup& group, Callback<Group> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Group>>(
      [group, now](Connection& c) { return CreateGroup(c, group, now); }, std::move(done));
}

void MysqlGroupStore::Get(int64_t group_id, Callback<Group> done) {
  exec_.Read<core::StatusOr<Group>>([group_id](Connection& c) { return LoadGroup(c, group_id); },
                                    std::move(done));
}

void MysqlGroupStore::Update(int64_t group_id, const GroupUpdate& update, Callback<Group> done) {
  exec_.Write<core::StatusOr<Group>>(
      [group_id, update](Connection& c) { return UpdateGroup(c, group_id, update); },
      std::move(done));
}

void MysqlGroupStore::Delete(int64_t group_id, DoneCallback done) {
  exec_.Write<core::Status>(
      [group_id](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(LockGroupLastSeq(c, group_id).status());
        std::string conv_id = GroupConvId(group_id);
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM session_cursors WHERE conv_id = ?", conv_id));
        // Cascades to messages (and their search rows) and user_conversations.
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM conversations WHERE conv_id = ?", conv_id));
        // Cascades to group_members and group_member_spans.
        return c.Exec("DELETE FROM chat_groups WHERE group_id = ?", group_id);
      },
      std::move(done));
}

void MysqlGroupStore::AddMembers(int64_t group_id, const std::vector<int64_t>& user_ids,
                                 Callback<AddMembersResult> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<AddMembersResult>>(
      [group_id, user_ids, now](Connection& c) -> core::StatusOr<AddMembersResult> {
        MPIM_ASSIGN_OR_RETURN(int64_t last_seq, LockGroupLastSeq(c, group_id));
        return AddGroupMembers(c, group_id, user_ids, now, last_seq);
      },
      std::move(done));
}

void MysqlGroupStore::RemoveMember(int64_t group_id, int64_t user_id,
                                   Callback<MembershipSpan> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<MembershipSpan>>(
      [group_id, user_id, now](Connection& c) -> core::StatusOr<MembershipSpan> {
        MPIM_ASSIGN_OR_RETURN(int64_t last_seq, LockGroupLastSeq(c, group_id));
        return RemoveGroupMember(c, group_id, user_id, now, last_seq);
      },
      std::move(done));
}

void MysqlGroupStore::SetRole(int64_t group_id, int64_t user_id, GroupRole role,
                              Callback<GroupMember> done) {
  exec_.Write<core::StatusOr<GroupMember>>(
      [group_id, user_id, role](Connection& c) -> core::StatusOr<GroupMember> {
        MPIM_RETURN_IF_ERROR(CheckRole(role));
        MPIM_RETURN_IF_ERROR(LockGroupLastSeq(c, group_id).status());
        return SetMemberRole(c, group_id, user_id, role);
      },
      std::move(done));
}

void MysqlGroupStore::GetMember(int64_t group_id, int64_t user_id, Callback<GroupMember> done) {
  exec_.Read<core::StatusOr<GroupMember>>(
      [group_id, user_id](Connection& c) { return GetGroupMember(c, group_id, user_id); },
      std::move(done));
}

void MysqlGroupStore::ListMembers(int64_t group_id, int64_t after_user, int limit,
                                  Callback<Page<GroupMember>> done) {
  exec_.Read<core::StatusOr<Page<GroupMember>>>(
      [=](Connection& c) { return ListGroupMembers(c, group_id, after_user, limit); },
      std::move(done));
}

void MysqlGroupStore::ListPastSpans(int64_t group_id, int64_t user_id,
                                    Callback<std::vector<MembershipSpan>> done) {
  exec_.Read<core::StatusOr<std::vector<MembershipSpan>>>(
      [group_id, user_id](Connection& c) { return store::ListPastSpans(c, group_id, user_id); },
      std::move(done));
}

void MysqlGroupStore::ListForUser(int64_t user_id, int64_t after_group, int limit,
                                  Callback<Page<Group>> done) {
  exec_.Read<core::StatusOr<Page<Group>>>(
      [=](Connection& c) { return ListUserGroups(c, user_id, after_group, limit); },
      std::move(done));
}

void MysqlGroupStore::ListActive(int limit, Callback<std::vector<int64_t>> done) {
  exec_.Read<core::StatusOr<std::vector<int64_t>>>(
      [limit](Connection& c) { return ListActiveGroups(c, limit); }, std::move(done));
}

}  // namespace mpim::store::mysql
