#include "store/sqlite/group_store.h"

#include <algorithm>
#include <string>

#include "store/conv_id.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

#define GROUP_COLUMNS \
  "g.group_id, g.name, g.avatar_url, g.owner_id, g.is_public, g.member_count, g.created_at"
#define MEMBER_COLUMNS "group_id, user_id, role, joined_at, joined_seq"

Group ReadGroup(const Stmt& row) {
  Group g;
  g.group_id = row.Int(0);
  g.conv_id = GroupConvId(g.group_id);
  g.name = row.Text(1);
  g.avatar_url = row.Text(2);
  g.owner_id = row.Int(3);
  g.is_public = row.Bool(4);
  g.member_count = row.Int(5);
  g.created_at = row.Int(6);
  return g;
}

GroupMember ReadMember(const Stmt& row) {
  GroupMember m;
  m.group_id = row.Int(0);
  m.user_id = row.Int(1);
  m.role = static_cast<GroupRole>(row.Int(2));
  m.joined_at = row.Int(3);
  m.joined_seq = row.Int(4);
  return m;
}

core::Status GroupNotFound(int64_t group_id) {
  return absl::NotFoundError("group " + std::to_string(group_id) + " not found");
}

core::StatusOr<Group> LoadGroup(Connection& c, int64_t group_id) {
  MPIM_ASSIGN_OR_RETURN(
      Stmt st,
      c.Query("SELECT " GROUP_COLUMNS " FROM chat_groups g WHERE g.group_id = ?", group_id));
  MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
  if (!row) return GroupNotFound(group_id);
  return ReadGroup(st);
}

// The member, or nullopt.
core::StatusOr<std::optional<GroupMember>> FindMember(Connection& c, int64_t group_id,
                                                      int64_t user_id) {
  MPIM_ASSIGN_OR_RETURN(Stmt st, c.Query("SELECT " MEMBER_COLUMNS " FROM group_members"
                                         " WHERE group_id = ? AND user_id = ?",
                                         group_id, user_id));
  MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
  if (!row) return std::optional<GroupMember>();
  return std::optional<GroupMember>(ReadMember(st));
}

core::StatusOr<GroupMember> LoadMember(Connection& c, int64_t group_id, int64_t user_id) {
  MPIM_ASSIGN_OR_RETURN(auto member, FindMember(c, group_id, user_id));
  if (!member) {
    return absl::NotFoundError("user " + std::to_string(user_id) + " is not a member of group " +
                               std::to_string(group_id));
  }
  return *member;
}

// The group conversation's last_seq; kNotFound if the group does not exist.
core::StatusOr<int64_t> GroupLastSeq(Connection& c, int64_t group_id) {
  MPIM_ASSIGN_OR_RETURN(auto seq, c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ?",
                                             GroupConvId(group_id)));
  if (!seq) return GroupNotFound(group_id);
  return *seq;
}

// Inserts one membership and the member's cursor row.
core::Status InsertMember(Connection& c, const GroupMember& m) {
  auto st = c.Exec(
      "INSERT INTO group_members (group_id, user_id, role, joined_at, joined_seq)"
      " VALUES (?, ?, ?, ?, ?)",
      m.group_id, m.user_id, static_cast<int>(m.role), m.joined_at, m.joined_seq);
  if (st.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("user " + std::to_string(m.user_id) + " not found");
  }
  MPIM_RETURN_IF_ERROR(st);
  return c.Exec(
      "INSERT INTO user_conversations (user_id, conv_id, read_seq, joined_seq)"
      " VALUES (?1, ?2, ?3, ?3)",
      m.user_id, GroupConvId(m.group_id), m.joined_seq);
}

}  // namespace

void SqliteGroupStore::Create(const NewGroup& group, Callback<Group> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Group>>(
      [group, now](Connection& c) -> core::StatusOr<Group> {
        if (group.name.empty()) return absl::InvalidArgumentError("empty group name");
        auto st = c.Exec(
            "INSERT INTO chat_groups (name, avatar_url, owner_id, is_public, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            group.name, group.avatar_url, group.owner_id, group.is_public, now);
        if (st.code() == absl::StatusCode::kNotFound) {
          return absl::NotFoundError("owner " + std::to_string(group.owner_id) + " not found");
        }
        MPIM_RETURN_IF_ERROR(st);
        int64_t group_id = sqlite3_last_insert_rowid(c.raw());
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO conversations (conv_id, type, last_activity, created_at)"
                   " VALUES (?1, 1, ?2, ?2)",
                   GroupConvId(group_id), now));
        std::vector<int64_t> members = group.members;
        std::sort(members.begin(), members.end());
        members.erase(std::unique(members.begin(), members.end()), members.end());
        MPIM_RETURN_IF_ERROR(
            InsertMember(c, {group_id, group.owner_id, GroupRole::kOwner, now, 0}));
        int64_t count = 1;
        for (int64_t user_id : members) {
          if (user_id == group.owner_id) continue;
          MPIM_RETURN_IF_ERROR(InsertMember(c, {group_id, user_id, GroupRole::kMember, now, 0}));
          ++count;
        }
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE chat_groups SET member_count = ? WHERE group_id = ?", count, group_id));
        return LoadGroup(c, group_id);
      },
      std::move(done));
}

void SqliteGroupStore::Get(int64_t group_id, Callback<Group> done) {
  exec_.Read<core::StatusOr<Group>>([group_id](Connection& c) { return LoadGroup(c, group_id); },
                                    std::move(done));
}

void SqliteGroupStore::Update(int64_t group_id, const GroupUpdate& update, Callback<Group> done) {
  exec_.Write<core::StatusOr<Group>>(
      [group_id, update](Connection& c) -> core::StatusOr<Group> {
        if (update.name && update.name->empty()) {
          return absl::InvalidArgumentError("empty group name");
        }
        std::optional<int> is_public;
        if (update.is_public) is_public = *update.is_public ? 1 : 0;
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE chat_groups SET name = coalesce(?, name),"
                   " avatar_url = coalesce(?, avatar_url), is_public = coalesce(?, is_public)"
                   " WHERE group_id = ?",
                   update.name, update.avatar_url, is_public, group_id));
        return LoadGroup(c, group_id);
      },
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
        std::vector<int64_t> ids = user_ids;
        std::sort(ids.begin(), ids.end());
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        AddMembersResult result;
        for (int64_t user_id : ids) {
          MPIM_ASSIGN_OR_RETURN(auto existing, FindMember(c, group_id, user_id));
          if (existing) {
            result.already_members.push_back(user_id);
            continue;
          }
          GroupMember m{group_id, user_id, GroupRole::kMember, now, last_seq};
          MPIM_RETURN_IF_ERROR(InsertMember(c, m));
          result.added.push_back(m);
        }
        if (!result.added.empty()) {
          MPIM_RETURN_IF_ERROR(
              c.Exec("UPDATE chat_groups SET member_count = member_count + ? WHERE group_id = ?",
                     static_cast<int64_t>(result.added.size()), group_id));
        }
        return result;
      },
      std::move(done));
}

void SqliteGroupStore::RemoveMember(int64_t group_id, int64_t user_id,
                                    Callback<MembershipSpan> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<MembershipSpan>>(
      [group_id, user_id, now](Connection& c) -> core::StatusOr<MembershipSpan> {
        MPIM_ASSIGN_OR_RETURN(int64_t last_seq, GroupLastSeq(c, group_id));
        MPIM_ASSIGN_OR_RETURN(GroupMember m, LoadMember(c, group_id, user_id));
        if (m.role == GroupRole::kOwner) {
          return absl::InvalidArgumentError("the owner cannot leave; transfer or delete the group");
        }
        MembershipSpan span{m.joined_seq, last_seq, now};
        MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM group_members WHERE group_id = ? AND user_id = ?",
                                    group_id, user_id));
        MPIM_RETURN_IF_ERROR(
            c.Exec("DELETE FROM user_conversations WHERE user_id = ? AND conv_id = ?", user_id,
                   GroupConvId(group_id)));
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO group_member_spans (group_id, user_id, joined_seq, left_seq,"
                   " left_at) VALUES (?, ?, ?, ?, ?)",
                   group_id, user_id, span.joined_seq, span.left_seq, span.left_at));
        MPIM_RETURN_IF_ERROR(c.Exec(
            "UPDATE chat_groups SET member_count = member_count - 1 WHERE group_id = ?", group_id));
        return span;
      },
      std::move(done));
}

void SqliteGroupStore::SetRole(int64_t group_id, int64_t user_id, GroupRole role,
                               Callback<GroupMember> done) {
  exec_.Write<core::StatusOr<GroupMember>>(
      [group_id, user_id, role](Connection& c) -> core::StatusOr<GroupMember> {
        if (role != GroupRole::kMember && role != GroupRole::kAdmin && role != GroupRole::kOwner) {
          return absl::InvalidArgumentError("unknown role");
        }
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        MPIM_ASSIGN_OR_RETURN(GroupMember m, LoadMember(c, group_id, user_id));
        if (m.role == role) return m;
        if (m.role == GroupRole::kOwner) {
          return absl::InvalidArgumentError("make another member the owner instead");
        }
        if (role == GroupRole::kOwner) {
          MPIM_RETURN_IF_ERROR(c.Exec(
              "UPDATE group_members SET role = ?1 WHERE group_id = ?2 AND role = ?3",
              static_cast<int>(GroupRole::kAdmin), group_id, static_cast<int>(GroupRole::kOwner)));
          MPIM_RETURN_IF_ERROR(
              c.Exec("UPDATE chat_groups SET owner_id = ? WHERE group_id = ?", user_id, group_id));
        }
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?",
                   static_cast<int>(role), group_id, user_id));
        m.role = role;
        return m;
      },
      std::move(done));
}

void SqliteGroupStore::GetMember(int64_t group_id, int64_t user_id, Callback<GroupMember> done) {
  exec_.Read<core::StatusOr<GroupMember>>(
      [group_id, user_id](Connection& c) -> core::StatusOr<GroupMember> {
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        return LoadMember(c, group_id, user_id);
      },
      std::move(done));
}

void SqliteGroupStore::ListMembers(int64_t group_id, int64_t after_user, int limit,
                                   Callback<Page<GroupMember>> done) {
  exec_.Read<core::StatusOr<Page<GroupMember>>>(
      [=](Connection& c) -> core::StatusOr<Page<GroupMember>> {
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        return QueryPage<GroupMember>(c,
                                      "SELECT " MEMBER_COLUMNS
                                      " FROM group_members WHERE"
                                      " group_id = ? AND user_id > ? ORDER BY user_id LIMIT ?",
                                      limit, ReadMember, group_id, after_user);
      },
      std::move(done));
}

void SqliteGroupStore::ListPastSpans(int64_t group_id, int64_t user_id,
                                     Callback<std::vector<MembershipSpan>> done) {
  exec_.Read<core::StatusOr<std::vector<MembershipSpan>>>(
      [group_id, user_id](Connection& c) -> core::StatusOr<std::vector<MembershipSpan>> {
        MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
        MPIM_ASSIGN_OR_RETURN(Stmt st, c.Query("SELECT joined_seq, left_seq, left_at"
                                               " FROM group_member_spans WHERE group_id = ?"
                                               " AND user_id = ? ORDER BY span_id",
                                               group_id, user_id));
        return CollectRows<MembershipSpan>(st, [](const Stmt& row) {
          return MembershipSpan{row.Int(0), row.Int(1), row.Int(2)};
        });
      },
      std::move(done));
}

void SqliteGroupStore::ListForUser(int64_t user_id, int64_t after_group, int limit,
                                   Callback<Page<Group>> done) {
  exec_.Read<core::StatusOr<Page<Group>>>(
      [=](Connection& c) -> core::StatusOr<Page<Group>> {
        return QueryPage<Group>(c,
                                "SELECT " GROUP_COLUMNS
                                " FROM group_members m"
                                " JOIN chat_groups g ON g.group_id = m.group_id WHERE"
                                " m.user_id = ? AND m.group_id > ? ORDER BY m.group_id LIMIT ?",
                                limit, ReadGroup, user_id, after_group);
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
