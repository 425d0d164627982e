// Row mapping, column lists and error builders shared by the SQL engines
// (SQLite and MySQL). The readers take the engine's current row (SQLite's
// Stmt, MySQL's Rows: anything with Int(col), Text(col), Bool(col) and
// IsNull(col)); they are generic lambdas so that they can be passed as is to
// FillPage, QueryPage and CollectRows (sql_pages.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "store/conv_id.h"
#include "store/conversation_store.h"
#include "store/group_store.h"
#include "store/job_store.h"
#include "store/message_store.h"
#include "store/session_store.h"
#include "store/user_store.h"

namespace mpim::store {

// ---- Column lists, in the order of the readers below ("SELECT <list> FROM").

inline constexpr char kUserColumns[] =
    "user_id, username, password_hash, display_name, avatar_url, created_at, last_seen";
inline constexpr char kSessionColumns[] =
    "session_id, user_id, device, refresh_hash, prev_refresh_hash, refresh_generation, "
    "created_at, expires_at, revoked_at";
// For "FROM chat_groups g".
inline constexpr char kGroupColumns[] =
    "g.group_id, g.name, g.avatar_url, g.owner_id, g.is_public, g.member_count, g.created_at";
inline constexpr char kMemberColumns[] = "group_id, user_id, role, joined_at, joined_seq";
inline constexpr char kJobColumns[] =
    "job_id, kind, payload, state, attempts, max_attempts, run_at, lease_owner, last_error, "
    "created_at, backoff_base_ms, backoff_max_ms";
// For "FROM conversations c".
inline constexpr char kConversationColumns[] =
    "c.conv_id, c.type, c.last_seq, c.last_msg_id, c.last_activity, c.created_at";
inline constexpr char kMessageColumns[] =
    "msg_id, conv_id, seq, sender, recipient, type, body, ts, client_msg_id, recalled";

// kMessageColumns, each qualified with `alias` ("m" -> "m.msg_id, ...").
std::string MessageColumns(const std::string& alias);

// A user's view of conversations, up to its WHERE: kConversationColumns
// (0-5), read_seq, muted, pinned, unread (6-9), then the last message's
// columns (10-), from user_conversations uc, conversations c and messages lm.
const std::string& SelectUserConversations();

// ---- Row readers.

inline constexpr auto ReadUser = [](const auto& row) {
  User u;
  u.user_id = row.Int(0);
  u.username = row.Text(1);
  u.password_hash = row.Text(2);
  u.display_name = row.Text(3);
  u.avatar_url = row.Text(4);
  u.created_at = row.Int(5);
  u.last_seen = row.Int(6);
  return u;
};

inline constexpr auto ReadSession = [](const auto& row) {
  Session s;
  s.session_id = row.Int(0);
  s.user_id = row.Int(1);
  s.device = row.Text(2);
  s.refresh_token_hash = row.Text(3);
  s.previous_refresh_token_hash = row.Text(4);
  s.refresh_generation = row.Int(5);
  s.created_at = row.Int(6);
  s.expires_at = row.Int(7);
  s.revoked_at = row.Int(8);
  s.revoked = s.revoked_at != 0;
  return s;
};

inline constexpr auto ReadGroup = [](const auto& row) {
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
};

inline constexpr auto ReadMember = [](const auto& row) {
  GroupMember m;
  m.group_id = row.Int(0);
  m.user_id = row.Int(1);
  m.role = static_cast<GroupRole>(row.Int(2));
  m.joined_at = row.Int(3);
  m.joined_seq = row.Int(4);
  return m;
};

// A job with the back-off settings that are not part of Job.
struct JobRow {
  Job job;
  int64_t backoff_base_ms = 0;
  int64_t backoff_max_ms = 0;
};

inline constexpr auto ReadJobRow = [](const auto& row) {
  JobRow r;
  Job& j = r.job;
  j.job_id = row.Int(0);
  j.kind = row.Text(1);
  j.payload = row.Text(2);
  j.state = static_cast<JobState>(row.Int(3));
  j.attempts = static_cast<int>(row.Int(4));
  j.max_attempts = static_cast<int>(row.Int(5));
  j.run_at = row.Int(6);
  j.lease_owner = row.Text(7);
  j.last_error = row.Text(8);
  j.created_at = row.Int(9);
  r.backoff_base_ms = row.Int(10);
  r.backoff_max_ms = row.Int(11);
  return r;
};

inline constexpr auto ReadJob = [](const auto& row) { return ReadJobRow(row).job; };

inline constexpr auto ReadConversation = [](const auto& row) {
  Conversation c;
  c.conv_id = row.Text(0);
  c.type = static_cast<ConvType>(row.Int(1));
  c.last_seq = row.Int(2);
  c.last_msg_id = row.Int(3);
  c.last_activity = row.Int(4);
  c.created_at = row.Int(5);
  return c;
};

// A message from the current row, starting at column `first`.
inline constexpr auto ReadMessage = [](const auto& row, int first = 0) {
  Message m;
  m.msg_id = row.Int(first + 0);
  m.conv_id = row.Text(first + 1);
  m.seq = row.Int(first + 2);
  m.sender = row.Int(first + 3);
  m.recipient = row.Int(first + 4);
  m.type = row.Text(first + 5);
  m.body = row.Text(first + 6);
  m.ts = row.Int(first + 7);
  m.client_msg_id = row.Text(first + 8);
  m.recalled = row.Bool(first + 9);
  return m;
};

// A row of SelectUserConversations().
inline constexpr auto ReadUserConversation = [](const auto& row) {
  UserConversation uc;
  uc.conversation = ReadConversation(row);
  uc.read_seq = row.Int(6);
  uc.muted = row.Bool(7);
  uc.pinned = row.Bool(8);
  uc.unread = row.Int(9);
  if (!row.IsNull(10)) uc.last_message = ReadMessage(row, 10);
  return uc;
};

// ---- Rules and errors the engines share.

// kInvalidArgument when a user would befriend or block themself.
core::Status CheckPair(int64_t a, int64_t b);
// kNotFound naming the pair when `status` is kNotFound (a foreign key
// failed); otherwise `status`.
core::Status UnknownUsers(const core::Status& status, int64_t a, int64_t b);

// Revocation time: never 0, so that "revoked" stays true for a clock at 0.
int64_t RevokeTime(int64_t now);
// How many expired used-token rows one rotation deletes at most: more than the
// one row a rotation adds, so a backlog drains while each write stays short.
inline constexpr int kPruneBatch = 64;

core::Status GroupNotFound(int64_t group_id);
core::Status NotTakingPart(int64_t user_id, const std::string& conv_id);

// base * 2^(attempt - 1), capped at `max`, without overflow.
int64_t Backoff(int64_t base, int64_t max, int attempt);
// "[1,2,3]": ids bound as one parameter (the engines' IdsTable reads it).
std::string IdsJson(const std::vector<int64_t>& ids);
core::Status LeaseLost(int64_t job_id, int attempt);

}  // namespace mpim::store
