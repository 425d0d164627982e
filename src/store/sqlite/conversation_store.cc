#include "store/sqlite/conversation_store.h"

#include <string>

#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {

void SqliteConversationStore::EnsurePrivate(int64_t user_a, int64_t user_b,
                                            Callback<Conversation> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Conversation>>(
      [user_a, user_b, now](Connection& c) {
        return EnsurePrivateConversation(c, user_a, user_b, now);
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
      [user_id, conv_id](Connection& c) { return LoadUserConversation(c, user_id, conv_id); },
      std::move(done));
}

void SqliteConversationStore::ListForUser(int64_t user_id,
                                          const std::optional<ConversationCursor>& after, int limit,
                                          Callback<ConversationPage> done) {
  exec_.Read<core::StatusOr<ConversationPage>>(
      [user_id, after, limit](Connection& c) {
        return ListUserConversations(c, user_id, after, limit);
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

void SqliteConversationStore::StartSeq(int64_t user_id, int64_t session_id,
                                       const std::string& conv_id, Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [user_id, session_id, conv_id](Connection& c) {
        return LoadStartSeq(c, user_id, session_id, conv_id);
      },
      std::move(done));
}

void SqliteConversationStore::SetFlag(const char* sql, int64_t user_id, const std::string& conv_id,
                                      bool value, DoneCallback done) {
  exec_.Write<core::Status>(
      [sql, user_id, conv_id, value](Connection& c) {
        return SetConversationFlag(c, sql, user_id, conv_id, value);
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

void SqliteConversationStore::MutedAmong(const std::string& conv_id,
                                         const std::vector<int64_t>& users,
                                         Callback<std::vector<int64_t>> done) {
  exec_.Read<core::StatusOr<std::vector<int64_t>>>(
      [conv_id, users](Connection& c) { return MutedMembers(c, conv_id, users); }, std::move(done));
}

void SqliteConversationStore::TotalUnread(const std::vector<int64_t>& users,
                                          Callback<std::vector<std::pair<int64_t, int64_t>>> done) {
  exec_.Read<core::StatusOr<std::vector<std::pair<int64_t, int64_t>>>>(
      [users](Connection& c) { return TotalUnreadOf(c, users); }, std::move(done));
}

}  // namespace mpim::store::sqlite
