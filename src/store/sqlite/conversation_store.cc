#include "store/sqlite/conversation_store.h"

#include <string>

#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

#define CONV_COLUMNS "c.conv_id, c.type, c.last_seq, c.last_msg_id, c.last_activity, c.created_at"

Conversation ReadConversation(const Stmt& row) {
  Conversation c;
  c.conv_id = row.Text(0);
  c.type = static_cast<ConvType>(row.Int(1));
  c.last_seq = row.Int(2);
  c.last_msg_id = row.Int(3);
  c.last_activity = row.Int(4);
  c.created_at = row.Int(5);
  return c;
}

core::StatusOr<Conversation> LoadConversation(Connection& c, const std::string& conv_id) {
  MPIM_ASSIGN_OR_RETURN(
      Stmt st,
      c.Query("SELECT " CONV_COLUMNS " FROM conversations c WHERE c.conv_id = ?", conv_id));
  MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
  if (!row) return absl::NotFoundError("conversation " + conv_id + " not found");
  return ReadConversation(st);
}

// A user's view of conversations: CONV_COLUMNS (0-5), read_seq, muted,
// pinned, unread (6-9), then the last message's columns (10-).
const std::string& SelectUserConversations() {
  static const std::string kSql =
      std::string("SELECT " CONV_COLUMNS
                  ", uc.read_seq, uc.muted, uc.pinned,"
                  " (SELECT count(*) FROM messages m WHERE m.conv_id = c.conv_id"
                  "   AND m.seq > uc.read_seq AND m.sender <> uc.user_id), ") +
      MessageColumns("lm") +
      " FROM user_conversations uc JOIN conversations c ON c.conv_id = uc.conv_id"
      " LEFT JOIN messages lm ON lm.msg_id = c.last_msg_id ";
  return kSql;
}

UserConversation ReadUserConversation(const Stmt& row) {
  UserConversation uc;
  uc.conversation = ReadConversation(row);
  uc.read_seq = row.Int(6);
  uc.muted = row.Bool(7);
  uc.pinned = row.Bool(8);
  uc.unread = row.Int(9);
  if (!row.IsNull(10)) uc.last_message = ReadMessage(row, 10);
  return uc;
}

core::Status NotTakingPart(int64_t user_id, const std::string& conv_id) {
  return absl::NotFoundError("user " + std::to_string(user_id) + " has no conversation " + conv_id);
}

}  // namespace

void SqliteConversationStore::EnsurePrivate(int64_t user_a, int64_t user_b,
                                            Callback<Conversation> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Conversation>>(
      [user_a, user_b, now](Connection& c) -> core::StatusOr<Conversation> {
        if (user_a == user_b || user_a <= 0 || user_b <= 0) {
          return absl::InvalidArgumentError("a private conversation needs two distinct users");
        }
        std::string conv_id = PrivateConvId(user_a, user_b);
        auto existing = LoadConversation(c, conv_id);
        if (existing.status().code() != absl::StatusCode::kNotFound) return existing;
        MPIM_RETURN_IF_ERROR(InsertPrivateConversation(c, conv_id, std::min(user_a, user_b),
                                                       std::max(user_a, user_b), now));
        return LoadConversation(c, conv_id);
      },
      std::move(done));
}

void SqliteConversationStore::Get(const std::string& conv_id, Callback<Conversation> done) {
  exec_.Read<core::StatusOr<Conversation>>(
      [conv_id](Connection& c) { return LoadConversation(c, conv_id); }, std::move(done));
}

void SqliteConversationStore::GetForUser(int64_t user_id, const std::string& conv_id,
                                         Callback<UserConversation> done) {
  exec_.Read<core::StatusOr<UserConversation>>(
      [user_id, conv_id](Connection& c) -> core::StatusOr<UserConversation> {
        MPIM_ASSIGN_OR_RETURN(
            Stmt st, c.Query(SelectUserConversations() + "WHERE uc.user_id = ? AND uc.conv_id = ?",
                             user_id, conv_id));
        MPIM_ASSIGN_OR_RETURN(bool row, st.Next());
        if (!row) return NotTakingPart(user_id, conv_id);
        return ReadUserConversation(st);
      },
      std::move(done));
}

void SqliteConversationStore::ListForUser(int64_t user_id,
                                          const std::optional<ConversationCursor>& after, int limit,
                                          Callback<ConversationPage> done) {
  exec_.Read<core::StatusOr<ConversationPage>>(
      [user_id, after, limit](Connection& c) -> core::StatusOr<ConversationPage> {
        MPIM_RETURN_IF_ERROR(CheckLimit(limit));
        // Keyset paging on (pinned DESC, last_activity DESC, conv_id ASC).
        const ConversationCursor cur = after.value_or(ConversationCursor{});
        MPIM_ASSIGN_OR_RETURN(
            Stmt st,
            c.Query(SelectUserConversations() +
                        "WHERE uc.user_id = ?1 AND (?2 = 0 OR uc.pinned < ?3"
                        "  OR (uc.pinned = ?3 AND (c.last_activity < ?4"
                        "   OR (c.last_activity = ?4 AND c.conv_id > ?5))))"
                        " ORDER BY uc.pinned DESC, c.last_activity DESC, c.conv_id LIMIT ?6",
                    user_id, after.has_value(), cur.pinned, cur.last_activity, cur.conv_id,
                    limit + 1));
        Page<UserConversation> page;
        MPIM_RETURN_IF_ERROR(FillPage(st, limit, &page, ReadUserConversation));
        ConversationPage result;
        result.items = std::move(page.items);
        result.has_more = page.has_more;
        if (result.has_more) {
          const UserConversation& last = result.items.back();
          result.next = ConversationCursor{last.pinned, last.conversation.last_activity,
                                           last.conversation.conv_id};
        }
        return result;
      },
      std::move(done));
}

void SqliteConversationStore::MarkRead(int64_t user_id, const std::string& conv_id, int64_t seq,
                                       Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [user_id, conv_id, seq](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(
            auto read_seq,
            c.QueryInt("UPDATE user_conversations SET read_seq = max(read_seq,"
                       " min(?3, (SELECT last_seq FROM conversations WHERE conv_id = ?2)))"
                       " WHERE user_id = ?1 AND conv_id = ?2 RETURNING read_seq",
                       user_id, conv_id, seq));
        if (!read_seq) return NotTakingPart(user_id, conv_id);
        return *read_seq;
      },
      std::move(done));
}

void SqliteConversationStore::MarkDelivered(int64_t session_id, const std::string& conv_id,
                                            int64_t seq, Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [session_id, conv_id, seq](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(
            auto last_seq,
            c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ?", conv_id));
        if (!last_seq) return absl::NotFoundError("conversation " + conv_id + " not found");
        MPIM_ASSIGN_OR_RETURN(
            auto delivered,
            c.QueryInt("INSERT INTO session_cursors (session_id, conv_id, delivered_seq)"
                       " VALUES (?, ?, ?) ON CONFLICT (session_id, conv_id) DO UPDATE SET"
                       " delivered_seq = max(delivered_seq, excluded.delivered_seq)"
                       " RETURNING delivered_seq",
                       session_id, conv_id, std::clamp<int64_t>(seq, 0, *last_seq)));
        return delivered.value_or(0);
      },
      std::move(done));
}

void SqliteConversationStore::MarkDeliveredMany(std::vector<DeliveredCursor> cursors,
                                                DoneCallback done) {
  exec_.Write<core::Status>(
      [cursors = std::move(cursors)](Connection& c) -> core::Status {
        for (const DeliveredCursor& cur : cursors) {
          // No row from the SELECT (unknown conversation): nothing inserted.
          MPIM_RETURN_IF_ERROR(
              c.Exec("INSERT INTO session_cursors (session_id, conv_id, delivered_seq)"
                     " SELECT ?1, conv_id, max(0, min(?3, last_seq)) FROM conversations"
                     " WHERE conv_id = ?2"
                     " ON CONFLICT (session_id, conv_id) DO UPDATE SET"
                     " delivered_seq = max(delivered_seq, excluded.delivered_seq)",
                     cur.session_id, cur.conv_id, cur.seq));
        }
        return core::Status();
      },
      std::move(done));
}

void SqliteConversationStore::ListPending(int64_t user_id, int64_t session_id,
                                          Callback<std::vector<PendingConversation>> done) {
  exec_.Read<core::StatusOr<std::vector<PendingConversation>>>(
      [user_id, session_id](Connection& c) -> core::StatusOr<std::vector<PendingConversation>> {
        MPIM_ASSIGN_OR_RETURN(
            Stmt st,
            c.Query("SELECT uc.conv_id, c.last_seq, uc.read_seq, coalesce(sc.delivered_seq, 0)"
                    " FROM user_conversations uc JOIN conversations c ON c.conv_id = uc.conv_id"
                    " LEFT JOIN session_cursors sc ON sc.session_id = ?2"
                    "  AND sc.conv_id = uc.conv_id"
                    " WHERE uc.user_id = ?1"
                    "  AND c.last_seq > max(coalesce(sc.delivered_seq, 0), uc.joined_seq)"
                    " ORDER BY uc.conv_id",
                    user_id, session_id));
        return CollectRows<PendingConversation>(st, [](const Stmt& row) {
          return PendingConversation{row.Text(0), row.Int(1), row.Int(2), row.Int(3)};
        });
      },
      std::move(done));
}

void SqliteConversationStore::SetFlag(const char* sql, int64_t user_id, const std::string& conv_id,
                                      bool value, DoneCallback done) {
  exec_.Write<core::Status>(
      [sql, user_id, conv_id, value](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(c.Exec(sql, value, user_id, conv_id));
        if (c.Changes() == 0) return NotTakingPart(user_id, conv_id);
        return core::Status();
      },
      std::move(done));
}

void SqliteConversationStore::SetMuted(int64_t user_id, const std::string& conv_id, bool muted,
                                       DoneCallback done) {
  SetFlag("UPDATE user_conversations SET muted = ? WHERE user_id = ? AND conv_id = ?", user_id,
          conv_id, muted, std::move(done));
}

void SqliteConversationStore::SetPinned(int64_t user_id, const std::string& conv_id, bool pinned,
                                        DoneCallback done) {
  SetFlag("UPDATE user_conversations SET pinned = ? WHERE user_id = ? AND conv_id = ?", user_id,
          conv_id, pinned, std::move(done));
}

}  // namespace mpim::store::sqlite
