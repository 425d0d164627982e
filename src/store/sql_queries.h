// Reads and writes whose SQL is the same on both SQL engines: templates over
// the engine's Connection (Query, QueryInt, Exec, Changes), called from the
// engines' executor bodies. What differs between the engines (locking reads,
// dialect, RETURNING, upserts) stays in the engines.
//
// Small pieces each engine provides next to its Connection (in its
// rows.h), found by argument-dependent lookup:
//   int64_t LastInsertId(Connection&);
//   const char* IdsTable(Connection&);  // "(SELECT ...)" of IdsJson's ids
//   core::Status InsertPrivateConversation(Connection&, conv_id, a, b, now);
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/conv_id.h"
#include "store/friend_store.h"
#include "store/sql_pages.h"
#include "store/sql_rows.h"
#include "store/status_macros.h"

namespace mpim::store {

// ---- Users

template <typename Conn>
core::StatusOr<User> LoadUser(Conn& c, int64_t user_id) {
  static const std::string kSql =
      std::string("SELECT ") + kUserColumns + " FROM users WHERE user_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, user_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("user " + std::to_string(user_id) + " not found");
  return ReadUser(rows);
}

template <typename Conn>
core::StatusOr<User> LoadUserByName(Conn& c, const std::string& username) {
  static const std::string kSql =
      std::string("SELECT ") + kUserColumns + " FROM users WHERE username = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, username));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("user " + username + " not found");
  return ReadUser(rows);
}

template <typename Conn>
core::StatusOr<User> CreateUser(Conn& c, const NewUser& user, int64_t now) {
  if (user.username.empty()) return absl::InvalidArgumentError("empty username");
  auto st = c.Exec(
      "INSERT INTO users (username, password_hash, display_name, avatar_url, created_at)"
      " VALUES (?, ?, ?, ?, ?)",
      user.username, user.password_hash, user.display_name, user.avatar_url, now);
  if (st.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError("username " + user.username + " is taken");
  }
  MPIM_RETURN_IF_ERROR(st);
  return LoadUser(c, LastInsertId(c));
}

template <typename Conn>
core::StatusOr<User> UpdateUser(Conn& c, int64_t user_id, const UserUpdate& update) {
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE users SET display_name = coalesce(?, display_name),"
             " avatar_url = coalesce(?, avatar_url), password_hash = coalesce(?, password_hash)"
             " WHERE user_id = ?",
             update.display_name, update.avatar_url, update.password_hash, user_id));
  return LoadUser(c, user_id);
}

// ---- Sessions

template <typename Conn>
core::StatusOr<Session> LoadSession(Conn& c, int64_t session_id) {
  static const std::string kSql =
      std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE session_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, session_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("session " + std::to_string(session_id) + " not found");
  return ReadSession(rows);
}

// Inserts a new session (the caller then prunes and loads it).
template <typename Conn>
core::Status InsertSession(Conn& c, const NewSession& session, int64_t now) {
  if (session.session_id <= 0) return absl::InvalidArgumentError("session_id must be > 0");
  auto st = c.Exec(
      "INSERT INTO sessions (session_id, user_id, device, refresh_hash, created_at,"
      " expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      session.session_id, session.user_id, session.device, session.refresh_token_hash, now,
      session.expires_at);
  if (st.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("user " + std::to_string(session.user_id) + " not found");
  }
  return st;
}

// Forgets what a session that can no longer rotate (revoked) had: its used
// tokens and its push device.
template <typename Conn>
core::Status ForgetRevokedSession(Conn& c, int64_t session_id) {
  MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM devices WHERE session_id = ?", session_id));
  return c.Exec("DELETE FROM used_refresh_tokens WHERE session_id = ?", session_id);
}

// `now` from RevokeTime.
template <typename Conn>
core::Status RevokeSession(Conn& c, int64_t session_id, int64_t now) {
  MPIM_ASSIGN_OR_RETURN(auto found,
                        c.QueryInt("SELECT 1 FROM sessions WHERE session_id = ?", session_id));
  if (!found) return absl::NotFoundError("session " + std::to_string(session_id) + " not found");
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE sessions SET revoked_at = ? WHERE session_id = ? AND revoked_at = 0", now,
             session_id));
  return ForgetRevokedSession(c, session_id);
}

template <typename Conn>
core::StatusOr<std::vector<Session>> ListUserSessions(Conn& c, int64_t user_id) {
  static const std::string kSql = std::string("SELECT ") + kSessionColumns +
                                  " FROM sessions WHERE user_id = ? ORDER BY session_id";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, user_id));
  return CollectRows<Session>(rows, ReadSession);
}

template <typename Conn>
core::StatusOr<Page<Session>> ListRevokedSessions(Conn& c, int64_t since_ms,
                                                  int64_t after_session_id, int limit) {
  static const std::string kSql = std::string("SELECT ") + kSessionColumns +
                                  " FROM sessions"
                                  " WHERE revoked_at > 0 AND (revoked_at, session_id) > (?, ?)"
                                  " AND revoked_at >= ?"
                                  " ORDER BY revoked_at, session_id LIMIT ?";
  const int64_t since = std::max<int64_t>(since_ms, 1);
  return QueryPage<Session>(c, kSql, limit, ReadSession, since, after_session_id, since);
}

// ---- Push devices

inline constexpr char kDeviceColumns[] =
    "device_id, session_id, user_id, platform, token, created_at";
inline constexpr auto ReadDevice = [](const auto& row) {
  return Device{.device_id = row.Int(0),
                .session_id = row.Int(1),
                .user_id = row.Int(2),
                .platform = row.Text(3),
                .token = row.Text(4),
                .created_at = row.Int(5)};
};

template <typename Conn>
core::StatusOr<Device> SetSessionDevice(Conn& c, Device d, int64_t now) {
  MPIM_ASSIGN_OR_RETURN(auto live, c.QueryInt("SELECT 1 FROM sessions WHERE session_id = ?"
                                              " AND user_id = ? AND revoked_at = 0",
                                              d.session_id, d.user_id));
  if (!live) {
    return absl::NotFoundError("session " + std::to_string(d.session_id) + " not found");
  }
  MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM devices WHERE session_id = ?", d.session_id));
  d.created_at = now;
  MPIM_RETURN_IF_ERROR(
      c.Exec("INSERT INTO devices (device_id, session_id, user_id, platform, token, created_at)"
             " VALUES (?, ?, ?, ?, ?, ?)",
             d.device_id, d.session_id, d.user_id, d.platform, d.token, d.created_at));
  return d;
}

template <typename Conn>
core::StatusOr<std::vector<Device>> ListUserDevices(Conn& c, int64_t user_id) {
  static const std::string kSql = std::string("SELECT ") + kDeviceColumns +
                                  " FROM devices WHERE user_id = ? ORDER BY device_id";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, user_id));
  return CollectRows<Device>(rows, ReadDevice);
}

template <typename Conn>
core::Status DeleteUserDevice(Conn& c, int64_t user_id, int64_t device_id) {
  MPIM_RETURN_IF_ERROR(
      c.Exec("DELETE FROM devices WHERE device_id = ? AND user_id = ?", device_id, user_id));
  if (c.Changes() == 0) {
    return absl::NotFoundError("device " + std::to_string(device_id) + " not found");
  }
  return core::Status();
}

// The devices whose `column` is among `ids`.
template <typename Conn>
core::StatusOr<std::vector<Device>> DevicesWhere(Conn& c, const char* column,
                                                 const std::vector<int64_t>& ids) {
  if (ids.size() > static_cast<size_t>(kMaxPageLimit)) {
    return absl::InvalidArgumentError("too many ids");
  }
  if (ids.empty()) return std::vector<Device>();
  MPIM_ASSIGN_OR_RETURN(
      auto rows, c.Query(std::string("SELECT ") + kDeviceColumns + " FROM devices WHERE " + column +
                             " IN " + IdsTable(c) + " ORDER BY device_id",
                         IdsJson(ids)));
  return CollectRows<Device>(rows, ReadDevice);
}

// ---- Groups

template <typename Conn>
core::StatusOr<Group> LoadGroup(Conn& c, int64_t group_id) {
  static const std::string kSql =
      std::string("SELECT ") + kGroupColumns + " FROM chat_groups g WHERE g.group_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, group_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return GroupNotFound(group_id);
  return ReadGroup(rows);
}

// The group conversation's last_seq; kNotFound if the group does not exist.
template <typename Conn>
core::StatusOr<int64_t> GroupLastSeq(Conn& c, int64_t group_id) {
  MPIM_ASSIGN_OR_RETURN(auto seq, c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ?",
                                             GroupConvId(group_id)));
  if (!seq) return GroupNotFound(group_id);
  return *seq;
}

// The member, or nullopt.
template <typename Conn>
core::StatusOr<std::optional<GroupMember>> FindMember(Conn& c, int64_t group_id, int64_t user_id) {
  static const std::string kSql = std::string("SELECT ") + kMemberColumns +
                                  " FROM group_members WHERE group_id = ? AND user_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, group_id, user_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return std::optional<GroupMember>();
  return std::optional<GroupMember>(ReadMember(rows));
}

template <typename Conn>
core::StatusOr<GroupMember> LoadMember(Conn& c, int64_t group_id, int64_t user_id) {
  MPIM_ASSIGN_OR_RETURN(auto member, FindMember(c, group_id, user_id));
  if (!member) {
    return absl::NotFoundError("user " + std::to_string(user_id) + " is not a member of group " +
                               std::to_string(group_id));
  }
  return *member;
}

// Inserts one membership and the member's cursor row.
template <typename Conn>
core::Status InsertMember(Conn& c, const GroupMember& m) {
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
      " VALUES (?, ?, ?, ?)",
      m.user_id, GroupConvId(m.group_id), m.joined_seq, m.joined_seq);
}

template <typename Conn>
core::StatusOr<Group> CreateGroup(Conn& c, const NewGroup& group, int64_t now) {
  if (group.name.empty()) return absl::InvalidArgumentError("empty group name");
  auto st = c.Exec(
      "INSERT INTO chat_groups (name, avatar_url, owner_id, is_public, created_at)"
      " VALUES (?, ?, ?, ?, ?)",
      group.name, group.avatar_url, group.owner_id, group.is_public, now);
  if (st.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError("owner " + std::to_string(group.owner_id) + " not found");
  }
  MPIM_RETURN_IF_ERROR(st);
  int64_t group_id = LastInsertId(c);
  MPIM_RETURN_IF_ERROR(
      c.Exec("INSERT INTO conversations (conv_id, type, last_activity, created_at)"
             " VALUES (?, 1, ?, ?)",
             GroupConvId(group_id), now, now));
  std::vector<int64_t> members = group.members;
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  MPIM_RETURN_IF_ERROR(InsertMember(c, {group_id, group.owner_id, GroupRole::kOwner, now, 0}));
  int64_t count = 1;
  for (int64_t user_id : members) {
    if (user_id == group.owner_id) continue;
    MPIM_RETURN_IF_ERROR(InsertMember(c, {group_id, user_id, GroupRole::kMember, now, 0}));
    ++count;
  }
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE chat_groups SET member_count = ? WHERE group_id = ?", count, group_id));
  return LoadGroup(c, group_id);
}

template <typename Conn>
core::StatusOr<Group> UpdateGroup(Conn& c, int64_t group_id, const GroupUpdate& update) {
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
}

// The rest of AddMembers once the engine read (and locked, as it needs) the
// group's last_seq.
template <typename Conn>
core::StatusOr<AddMembersResult> AddGroupMembers(Conn& c, int64_t group_id,
                                                 std::vector<int64_t> ids, int64_t now,
                                                 int64_t last_seq) {
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
}

// The rest of RemoveMember once the engine read (and locked) last_seq.
template <typename Conn>
core::StatusOr<MembershipSpan> RemoveGroupMember(Conn& c, int64_t group_id, int64_t user_id,
                                                 int64_t now, int64_t last_seq) {
  MPIM_ASSIGN_OR_RETURN(GroupMember m, LoadMember(c, group_id, user_id));
  if (m.role == GroupRole::kOwner) {
    return absl::InvalidArgumentError("the owner cannot leave; transfer or delete the group");
  }
  MembershipSpan span{m.joined_seq, last_seq, now};
  MPIM_RETURN_IF_ERROR(
      c.Exec("DELETE FROM group_members WHERE group_id = ? AND user_id = ?", group_id, user_id));
  MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM user_conversations WHERE user_id = ? AND conv_id = ?",
                              user_id, GroupConvId(group_id)));
  MPIM_RETURN_IF_ERROR(
      c.Exec("INSERT INTO group_member_spans (group_id, user_id, joined_seq, left_seq,"
             " left_at) VALUES (?, ?, ?, ?, ?)",
             group_id, user_id, span.joined_seq, span.left_seq, span.left_at));
  MPIM_RETURN_IF_ERROR(c.Exec(
      "UPDATE chat_groups SET member_count = member_count - 1 WHERE group_id = ?", group_id));
  return span;
}

// kInvalidArgument for a role that is none of GroupRole's.
inline core::Status CheckRole(GroupRole role) {
  if (role != GroupRole::kMember && role != GroupRole::kAdmin && role != GroupRole::kOwner) {
    return absl::InvalidArgumentError("unknown role");
  }
  return core::Status();
}

// The rest of SetRole once the engine checked the role and read (and locked)
// the group's last_seq.
template <typename Conn>
core::StatusOr<GroupMember> SetMemberRole(Conn& c, int64_t group_id, int64_t user_id,
                                          GroupRole role) {
  MPIM_ASSIGN_OR_RETURN(GroupMember m, LoadMember(c, group_id, user_id));
  if (m.role == role) return m;
  if (m.role == GroupRole::kOwner) {
    return absl::InvalidArgumentError("make another member the owner instead");
  }
  if (role == GroupRole::kOwner) {
    MPIM_RETURN_IF_ERROR(c.Exec("UPDATE group_members SET role = ? WHERE group_id = ? AND role = ?",
                                static_cast<int>(GroupRole::kAdmin), group_id,
                                static_cast<int>(GroupRole::kOwner)));
    MPIM_RETURN_IF_ERROR(
        c.Exec("UPDATE chat_groups SET owner_id = ? WHERE group_id = ?", user_id, group_id));
  }
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE group_members SET role = ? WHERE group_id = ? AND user_id = ?",
             static_cast<int>(role), group_id, user_id));
  m.role = role;
  return m;
}

template <typename Conn>
core::StatusOr<GroupMember> GetGroupMember(Conn& c, int64_t group_id, int64_t user_id) {
  MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
  return LoadMember(c, group_id, user_id);
}

template <typename Conn>
core::StatusOr<Page<GroupMember>> ListGroupMembers(Conn& c, int64_t group_id, int64_t after_user,
                                                   int limit) {
  static const std::string kSql =
      std::string("SELECT ") + kMemberColumns +
      " FROM group_members WHERE group_id = ? AND user_id > ? ORDER BY user_id LIMIT ?";
  MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
  return QueryPage<GroupMember>(c, kSql, limit, ReadMember, group_id, after_user);
}

template <typename Conn>
core::StatusOr<std::vector<MembershipSpan>> ListPastSpans(Conn& c, int64_t group_id,
                                                          int64_t user_id) {
  MPIM_RETURN_IF_ERROR(GroupLastSeq(c, group_id).status());
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query("SELECT joined_seq, left_seq, left_at"
                                           " FROM group_member_spans WHERE group_id = ?"
                                           " AND user_id = ? ORDER BY span_id",
                                           group_id, user_id));
  return CollectRows<MembershipSpan>(rows, [](const auto& row) {
    return MembershipSpan{row.Int(0), row.Int(1), row.Int(2)};
  });
}

template <typename Conn>
core::StatusOr<Page<Group>> ListUserGroups(Conn& c, int64_t user_id, int64_t after_group,
                                           int limit) {
  static const std::string kSql =
      std::string("SELECT ") + kGroupColumns +
      " FROM group_members m JOIN chat_groups g ON g.group_id = m.group_id WHERE"
      " m.user_id = ? AND m.group_id > ? ORDER BY m.group_id LIMIT ?";
  return QueryPage<Group>(c, kSql, limit, ReadGroup, user_id, after_group);
}

template <typename Conn>
core::StatusOr<std::vector<int64_t>> ListActiveGroups(Conn& c, int limit) {
  MPIM_RETURN_IF_ERROR(CheckLimit(limit));
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query("SELECT conv_id FROM conversations WHERE type = 1"
                                           " ORDER BY last_activity DESC, conv_id LIMIT ?",
                                           limit));
  std::vector<int64_t> ids;
  for (;;) {
    MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
    if (!row) return ids;
    auto ref = ParseConvId(rows.Text(0));
    if (ref && ref->type == ConvType::kGroup) ids.push_back(ref->a);
  }
}

// ---- Messages

inline const std::string& SelectMessage() {
  static const std::string kSql = std::string("SELECT ") + kMessageColumns + " FROM messages ";
  return kSql;
}

// The message matching `where` (bound to `args`), or nullopt.
template <typename Conn, typename... Args>
core::StatusOr<std::optional<Message>> FindMessage(Conn& c, const char* where,
                                                   const Args&... args) {
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(SelectMessage() + where, args...));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return std::optional<Message>();
  return std::optional<Message>(ReadMessage(rows));
}

template <typename Conn>
core::StatusOr<Message> LoadMessage(Conn& c, int64_t msg_id) {
  MPIM_ASSIGN_OR_RETURN(auto m, FindMessage(c, "WHERE msg_id = ?", msg_id));
  if (!m) return absl::NotFoundError("message " + std::to_string(msg_id) + " not found");
  return std::move(*m);
}

template <typename Conn>
core::StatusOr<Message> LoadMessageByClientMsgId(Conn& c, int64_t sender,
                                                 const std::string& client_msg_id) {
  MPIM_ASSIGN_OR_RETURN(
      auto m, FindMessage(c, "WHERE sender = ? AND client_msg_id = ?", sender, client_msg_id));
  if (!m) return absl::NotFoundError("no message with this client_msg_id");
  return std::move(*m);
}

// MessageStore::Read (see RangeQuery).
template <typename Conn>
core::StatusOr<Page<Message>> ReadMessages(Conn& c, const std::string& conv_id,
                                           const RangeQuery& query) {
  MPIM_RETURN_IF_ERROR(CheckLimit(query.limit));
  const int64_t after = std::max<int64_t>(query.after_seq.value_or(0), 0);
  const int64_t before = query.before_seq.value_or(INT64_MAX);
  // Without after_seq we want the newest messages below `before`.
  const bool newest = !query.after_seq.has_value();
  std::string sql = SelectMessage() + "WHERE conv_id = ? AND seq > ? AND seq < ? ORDER BY seq" +
                    (newest ? " DESC" : "") + " LIMIT ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(sql, conv_id, after, before, query.limit + 1));
  Page<Message> page;
  MPIM_RETURN_IF_ERROR(FillPage(rows, query.limit, &page, ReadMessage));
  if (newest) std::reverse(page.items.begin(), page.items.end());
  return page;
}

// ---- Jobs

template <typename Conn>
core::StatusOr<int64_t> EnqueueJob(Conn& c, const NewJob& job, int64_t now) {
  if (job.kind.empty()) return absl::InvalidArgumentError("empty job kind");
  if (job.max_attempts < 1) return absl::InvalidArgumentError("max_attempts must be >= 1");
  if (job.delay_ms < 0 || job.backoff_base_ms < 0 || job.backoff_max_ms < 0 ||
      job.coalesce_ms < 0) {
    return absl::InvalidArgumentError("negative delay, back-off or coalesce_ms");
  }
  int64_t run_at = now + job.delay_ms;
  if (!job.coalesce_key.empty()) {
    MPIM_ASSIGN_OR_RETURN(auto twin,
                          c.QueryInt("SELECT job_id FROM jobs WHERE coalesce_key = ? AND kind = ?"
                                     " AND state = 0 ORDER BY job_id LIMIT 1",
                                     job.coalesce_key, job.kind));
    if (twin) {
      MPIM_RETURN_IF_ERROR(
          c.Exec("UPDATE jobs SET payload = ? WHERE job_id = ?", job.payload, *twin));
      return *twin;
    }
    MPIM_ASSIGN_OR_RETURN(auto leased,
                          c.QueryInt("SELECT 1 FROM jobs WHERE coalesce_key = ? AND kind = ?"
                                     " AND state = 1 LIMIT 1",
                                     job.coalesce_key, job.kind));
    if (leased) run_at = std::max(run_at, now + job.coalesce_ms);
    MPIM_ASSIGN_OR_RETURN(
        auto done_at,
        c.QueryInt("SELECT done_at FROM job_coalesce WHERE coalesce_key = ?", job.coalesce_key));
    if (done_at) run_at = std::max(run_at, *done_at + job.coalesce_ms);
  }
  MPIM_RETURN_IF_ERROR(c.Exec(
      "INSERT INTO jobs (kind, payload, state, max_attempts, backoff_base_ms,"
      " backoff_max_ms, run_at, created_at, coalesce_key) VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?)",
      job.kind, job.payload, job.max_attempts, job.backoff_base_ms, job.backoff_max_ms, run_at, now,
      job.coalesce_key));
  return LastInsertId(c);
}

template <typename Conn>
core::StatusOr<std::vector<int64_t>> EnqueueJobs(Conn& c, const std::vector<NewJob>& jobs,
                                                 int64_t now) {
  std::vector<int64_t> ids;
  ids.reserve(jobs.size());
  for (const NewJob& job : jobs) {
    MPIM_ASSIGN_OR_RETURN(int64_t id, EnqueueJob(c, job, now));
    ids.push_back(id);
  }
  return ids;
}

// How often an ack also forgets coalescing marks older than a day (the
// window is seconds; a day is far past any).
inline constexpr int64_t kCoalescePruneEvery = 256;
inline constexpr int64_t kCoalesceKeepMs = 86400000;

template <typename Conn>
core::Status AckJob(Conn& c, int64_t job_id, int attempt, int64_t now) {
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query("SELECT coalesce_key FROM jobs WHERE job_id = ?"
                                           " AND state = 1 AND attempts = ?",
                                           job_id, attempt));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return LeaseLost(job_id, attempt);
  const std::string key = rows.Text(0);
  MPIM_RETURN_IF_ERROR(
      c.Exec("DELETE FROM jobs WHERE job_id = ? AND state = 1 AND attempts = ?", job_id, attempt));
  if (c.Changes() == 0) return LeaseLost(job_id, attempt);
  if (!key.empty()) {
    MPIM_RETURN_IF_ERROR(
        c.Exec("REPLACE INTO job_coalesce (coalesce_key, done_at) VALUES (?, ?)", key, now));
    if (job_id % kCoalescePruneEvery == 0) {
      MPIM_RETURN_IF_ERROR(
          c.Exec("DELETE FROM job_coalesce WHERE done_at < ?", now - kCoalesceKeepMs));
    }
  }
  return core::Status();
}

// The rest of Fail once the engine read (and locked) the leased job `r`.
template <typename Conn>
core::StatusOr<Job> FailJob(Conn& c, JobRow r, const JobFailure& failure, int64_t now) {
  Job& job = r.job;
  job.last_error = failure.error;
  job.lease_owner.clear();
  if (failure.final || job.attempts >= job.max_attempts) {
    job.state = JobState::kDead;
  } else {
    job.state = JobState::kReady;
    job.run_at =
        now + (failure.delay_ms >= 0 ? failure.delay_ms
                                     : Backoff(r.backoff_base_ms, r.backoff_max_ms, job.attempts));
  }
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE jobs SET state = ?, run_at = ?, lease_owner = '', last_error = ?"
             " WHERE job_id = ?",
             static_cast<int>(job.state), job.run_at, failure.error, job.job_id));
  return job;
}

template <typename Conn>
core::StatusOr<Page<Job>> ListJobs(Conn& c, const JobFilter& f) {
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs WHERE job_id > ?";
  const int state = f.state ? static_cast<int>(*f.state) : -1;
  if (f.state) sql += " AND state = ?";
  if (!f.kind.empty()) sql += " AND kind = ?";
  sql += " ORDER BY job_id LIMIT ?";
  if (f.state && !f.kind.empty()) {
    return QueryPage<Job>(c, sql, f.limit, ReadJob, f.after_job, state, f.kind);
  }
  if (f.state) return QueryPage<Job>(c, sql, f.limit, ReadJob, f.after_job, state);
  if (!f.kind.empty()) return QueryPage<Job>(c, sql, f.limit, ReadJob, f.after_job, f.kind);
  return QueryPage<Job>(c, sql, f.limit, ReadJob, f.after_job);
}

template <typename Conn>
core::StatusOr<Job> GetJob(Conn& c, int64_t job_id) {
  static const std::string kSql =
      std::string("SELECT ") + kJobColumns + " FROM jobs WHERE job_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, job_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("job " + std::to_string(job_id) + " not found");
  return ReadJob(rows);
}

template <typename Conn>
core::Status DeleteJob(Conn& c, int64_t job_id) {
  MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM jobs WHERE job_id = ?", job_id));
  if (c.Changes() == 0) return absl::NotFoundError("job " + std::to_string(job_id) + " not found");
  return core::Status();
}

template <typename Conn>
core::StatusOr<std::vector<JobCount>> CountJobs(Conn& c) {
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query("SELECT kind, state, COUNT(*), MIN(run_at) FROM jobs"
                                           " GROUP BY kind, state ORDER BY kind, state"));
  return CollectRows<JobCount>(rows, [](const auto& row) {
    return JobCount{.kind = row.Text(0),
                    .state = static_cast<JobState>(row.Int(1)),
                    .count = row.Int(2),
                    .oldest_run_at = row.Int(3)};
  });
}

template <typename Conn>
core::Status RequeueJob(Conn& c, int64_t job_id, int64_t now) {
  MPIM_RETURN_IF_ERROR(
      c.Exec("UPDATE jobs SET state = 0, attempts = 0, run_at = ?, lease_owner = ''"
             " WHERE job_id = ? AND state = 2",
             now, job_id));
  if (c.Changes() == 0) {
    return absl::NotFoundError("job " + std::to_string(job_id) + " is not a dead letter");
  }
  return core::Status();
}

// ---- Conversations

template <typename Conn>
core::StatusOr<std::vector<int64_t>> MutedMembers(Conn& c, const std::string& conv_id,
                                                  const std::vector<int64_t>& users) {
  if (users.size() > static_cast<size_t>(kMaxPageLimit)) {
    return absl::InvalidArgumentError("too many user ids");
  }
  if (users.empty()) return std::vector<int64_t>();
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(std::string("SELECT user_id FROM user_conversations"
                                                       " WHERE conv_id = ? AND muted <> 0"
                                                       " AND user_id IN ") +
                                               IdsTable(c) + " ORDER BY user_id",
                                           conv_id, IdsJson(users)));
  return CollectRows<int64_t>(rows, [](const auto& row) { return row.Int(0); });
}

// unread as in SelectUserConversations, summed per user.
template <typename Conn>
core::StatusOr<std::vector<std::pair<int64_t, int64_t>>> TotalUnreadOf(
    Conn& c, const std::vector<int64_t>& users) {
  using Row = std::pair<int64_t, int64_t>;
  if (users.size() > static_cast<size_t>(kMaxPageLimit)) {
    return absl::InvalidArgumentError("too many user ids");
  }
  if (users.empty()) return std::vector<Row>();
  MPIM_ASSIGN_OR_RETURN(
      auto rows, c.Query(std::string("SELECT uc.user_id, (SELECT count(*) FROM messages m"
                                     " WHERE m.conv_id = uc.conv_id AND m.seq > uc.read_seq"
                                     " AND m.sender <> uc.user_id) FROM user_conversations uc"
                                     " WHERE uc.user_id IN ") +
                             IdsTable(c) + " ORDER BY uc.user_id",
                         IdsJson(users)));
  MPIM_ASSIGN_OR_RETURN(std::vector<Row> per_conv, CollectRows<Row>(rows, [](const auto& row) {
                          return Row{row.Int(0), row.Int(1)};
                        }));
  std::vector<Row> out;
  for (const Row& r : per_conv) {
    if (out.empty() || out.back().first != r.first) out.push_back({r.first, 0});
    out.back().second += r.second;
  }
  return out;
}

template <typename Conn>
core::StatusOr<Conversation> LoadConversation(Conn& c, const std::string& conv_id) {
  static const std::string kSql =
      std::string("SELECT ") + kConversationColumns + " FROM conversations c WHERE c.conv_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, conv_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("conversation " + conv_id + " not found");
  return ReadConversation(rows);
}

template <typename Conn>
core::StatusOr<Conversation> EnsurePrivateConversation(Conn& c, int64_t user_a, int64_t user_b,
                                                       int64_t now) {
  if (user_a == user_b || user_a <= 0 || user_b <= 0) {
    return absl::InvalidArgumentError("a private conversation needs two distinct users");
  }
  std::string conv_id = PrivateConvId(user_a, user_b);
  auto existing = LoadConversation(c, conv_id);
  if (existing.status().code() != absl::StatusCode::kNotFound) return existing;
  MPIM_RETURN_IF_ERROR(InsertPrivateConversation(c, conv_id, std::min(user_a, user_b),
                                                 std::max(user_a, user_b), now));
  return LoadConversation(c, conv_id);
}

template <typename Conn>
core::StatusOr<UserConversation> LoadUserConversation(Conn& c, int64_t user_id,
                                                      const std::string& conv_id) {
  static const std::string kSql =
      SelectUserConversations() + "WHERE uc.user_id = ? AND uc.conv_id = ?";
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query(kSql, user_id, conv_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return NotTakingPart(user_id, conv_id);
  return ReadUserConversation(rows);
}

template <typename Conn>
core::StatusOr<ConversationPage> ListUserConversations(
    Conn& c, int64_t user_id, const std::optional<ConversationCursor>& after, int limit) {
  // Keyset paging on (pinned DESC, last_activity DESC, conv_id ASC).
  static const std::string kSql =
      SelectUserConversations() +
      "WHERE uc.user_id = ? AND (? = 0 OR uc.pinned < ?"
      "  OR (uc.pinned = ? AND (c.last_activity < ?"
      "   OR (c.last_activity = ? AND c.conv_id > ?))))"
      " ORDER BY uc.pinned DESC, c.last_activity DESC, c.conv_id LIMIT ?";
  MPIM_RETURN_IF_ERROR(CheckLimit(limit));
  const ConversationCursor cur = after.value_or(ConversationCursor{});
  const int64_t pinned = cur.pinned;
  MPIM_ASSIGN_OR_RETURN(auto rows,
                        c.Query(kSql, user_id, after.has_value(), pinned, pinned, cur.last_activity,
                                cur.last_activity, cur.conv_id, limit + 1));
  Page<UserConversation> page;
  MPIM_RETURN_IF_ERROR(FillPage(rows, limit, &page, ReadUserConversation));
  ConversationPage result;
  result.items = std::move(page.items);
  result.has_more = page.has_more;
  if (result.has_more) {
    const UserConversation& last = result.items.back();
    result.next =
        ConversationCursor{last.pinned, last.conversation.last_activity, last.conversation.conv_id};
  }
  return result;
}

// `sql` sets one flag: "UPDATE user_conversations SET <flag> = ? WHERE
// user_id = ? AND conv_id = ?".
template <typename Conn>
core::Status SetConversationFlag(Conn& c, const char* sql, int64_t user_id,
                                 const std::string& conv_id, bool value) {
  MPIM_RETURN_IF_ERROR(c.Exec(sql, value, user_id, conv_id));
  if (c.Changes() == 0) return NotTakingPart(user_id, conv_id);
  return core::Status();
}

// ConversationStore::StartSeq.
template <typename Conn>
core::StatusOr<int64_t> LoadStartSeq(Conn& c, int64_t user_id, int64_t session_id,
                                     const std::string& conv_id) {
  MPIM_ASSIGN_OR_RETURN(auto rows, c.Query("SELECT uc.joined_seq, coalesce(sc.delivered_seq, 0)"
                                           " FROM user_conversations uc"
                                           " LEFT JOIN session_cursors sc ON sc.session_id = ?"
                                           "  AND sc.conv_id = uc.conv_id"
                                           " WHERE uc.user_id = ? AND uc.conv_id = ?",
                                           session_id, user_id, conv_id));
  MPIM_ASSIGN_OR_RETURN(bool row, rows.Next());
  if (!row) return absl::NotFoundError("not a member of " + conv_id);
  return std::max(rows.Int(0), rows.Int(1));
}

// ---- Friends and blocks

inline constexpr char kAreFriends[] =
    "SELECT 1 FROM friendships WHERE user_id = ? AND friend_id = ?";
inline constexpr char kRequestExists[] =
    "SELECT 1 FROM friend_requests WHERE from_user = ? AND to_user = ?";
inline constexpr char kIsBlocked[] = "SELECT 1 FROM blocks WHERE blocker = ? AND blocked = ?";

// Whether `sql` (one of the above) finds a row for (a, b).
template <typename Conn>
core::StatusOr<bool> Exists(Conn& c, const char* sql, int64_t a, int64_t b) {
  MPIM_ASSIGN_OR_RETURN(auto row, c.QueryInt(sql, a, b));
  return row.has_value();
}

template <typename Conn>
core::Status DeleteFriendRequest(Conn& c, int64_t from_user, int64_t to_user) {
  MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM friend_requests WHERE from_user = ? AND to_user = ?",
                              from_user, to_user));
  if (c.Changes() == 0) return absl::NotFoundError("no such friend request");
  return core::Status();
}

template <typename Conn>
core::StatusOr<Page<FriendRequest>> ListFriendRequests(Conn& c, int64_t user_id, bool incoming,
                                                       int64_t after_user, int limit) {
  const char* sql = incoming ? "SELECT from_user, to_user, created_at FROM friend_requests"
                               " WHERE to_user = ? AND from_user > ? ORDER BY from_user LIMIT ?"
                             : "SELECT from_user, to_user, created_at FROM friend_requests"
                               " WHERE from_user = ? AND to_user > ? ORDER BY to_user LIMIT ?";
  return QueryPage<FriendRequest>(
      c, sql, limit,
      [](const auto& row) {
        return FriendRequest{row.Int(0), row.Int(1), row.Int(2)};
      },
      user_id, after_user);
}

template <typename Conn>
core::Status RemoveFriends(Conn& c, int64_t user_a, int64_t user_b) {
  MPIM_RETURN_IF_ERROR(CheckPair(user_a, user_b));
  MPIM_RETURN_IF_ERROR(
      c.Exec("DELETE FROM friendships WHERE (user_id = ? AND friend_id = ?)"
             " OR (user_id = ? AND friend_id = ?)",
             user_a, user_b, user_b, user_a));
  if (c.Changes() == 0) return absl::NotFoundError("not friends");
  return core::Status();
}

// Reads (other user, time) rows into a page of T{user_id, since}.
template <typename T, typename Conn>
core::StatusOr<Page<T>> ListPairs(Conn& c, const char* sql, int64_t user, int64_t after,
                                  int limit) {
  return QueryPage<T>(
      c, sql, limit,
      [](const auto& row) {
        return T{row.Int(0), row.Int(1)};
      },
      user, after);
}

template <typename Conn>
core::StatusOr<Page<Friend>> ListFriends(Conn& c, int64_t user_id, int64_t after_user, int limit) {
  return ListPairs<Friend>(c,
                           "SELECT friend_id, since FROM friendships WHERE user_id = ?"
                           " AND friend_id > ? ORDER BY friend_id LIMIT ?",
                           user_id, after_user, limit);
}

template <typename Conn>
core::Status BlockUser(Conn& c, int64_t blocker, int64_t blocked, int64_t now) {
  MPIM_RETURN_IF_ERROR(CheckPair(blocker, blocked));
  auto st = c.Exec("INSERT INTO blocks (blocker, blocked, since) VALUES (?, ?, ?)", blocker,
                   blocked, now);
  if (st.code() == absl::StatusCode::kAlreadyExists) {
    return absl::AlreadyExistsError("already blocked");
  }
  return UnknownUsers(st, blocker, blocked);
}

template <typename Conn>
core::Status UnblockUser(Conn& c, int64_t blocker, int64_t blocked) {
  MPIM_RETURN_IF_ERROR(
      c.Exec("DELETE FROM blocks WHERE blocker = ? AND blocked = ?", blocker, blocked));
  if (c.Changes() == 0) return absl::NotFoundError("not blocked");
  return core::Status();
}

template <typename Conn>
core::StatusOr<Page<BlockEntry>> ListBlockedUsers(Conn& c, int64_t blocker, int64_t after_user,
                                                  int limit) {
  return ListPairs<BlockEntry>(c,
                               "SELECT blocked, since FROM blocks WHERE blocker = ?"
                               " AND blocked > ? ORDER BY blocked LIMIT ?",
                               blocker, after_user, limit);
}

}  // namespace mpim::store
