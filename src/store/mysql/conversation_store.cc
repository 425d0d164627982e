#include "store/mysql/conversation_store.h"

#include <algorithm>
#include <string>

#include "store/conv_id.h"
#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {

void MysqlConversationStore::EnsurePrivate(int64_t user_a, int64_t user_b,
                                           Callback<Conversation> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<Conversation>>(
      [user_a, user_b, now](Connection& c) {
        return EnsurePrivateConversation(c, user_a, user_b, now);
      },
      std::move(done));
}

void MysqlConversationStore::Get(const std::string& conv_id, Callback<Conversation> done) {
  exec_.Read<core::StatusOr<Conversation>>(
      [conv_id](Connection& c) { return LoadConversation(c, conv_id); }, std::move(done));
}

void MysqlConversationStore::GetForUser(int64_t user_id, const std::string& conv_id,
                                        Callback<UserConversation> done) {
  exec_.Read<core::StatusOr<UserConversation>>(
      [user_id, conv_id](Connection& c) { return LoadUserConversation(c, user_id, conv_id); },
      std::move(done));
}

void MysqlConversationStore::ListForUser(int64_t user_id,
                                         const std::optional<ConversationCursor>& after, int limit,
                                         Callback<ConversationPage> done) {
  exec_.Read<core::StatusOr<ConversationPage>>(
      [user_id, after, limit](Connection& c) {
        return ListUserConversations(c, user_id, after, limit);
      },
      std::move(done));
}

void MysqlConversationStore::MarkRead(int64_t user_id, const std::string& conv_id, int64_t seq,
                                      Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [user_id, conv_id, seq](Connection& c) -> core::StatusOr<int64_t> {
        // No UPDATE ... RETURNING in MariaDB: update, then read the row back
        // (this transaction holds its lock).
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE user_conversations SET read_seq = GREATEST(read_seq,"
                   " LEAST(?, (SELECT last_seq FROM conversations WHERE conv_id = ?)))"
                   " WHERE user_id = ? AND conv_id = ?",
                   seq, conv_id, user_id, conv_id));
        if (c.Changes() == 0) return NotTakingPart(user_id, conv_id);
        MPIM_ASSIGN_OR_RETURN(
            auto read_seq,
            c.QueryInt("SELECT read_seq FROM user_conversations WHERE user_id = ? AND conv_id = ?",
                       user_id, conv_id));
        if (!read_seq) return NotTakingPart(user_id, conv_id);
        return *read_seq;
      },
      std::move(done));
}

void MysqlConversationStore::MarkDelivered(int64_t session_id, const std::string& conv_id,
                                           int64_t seq, Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [session_id, conv_id, seq](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(
            auto last_seq,
            c.QueryInt("SELECT last_seq FROM conversations WHERE conv_id = ?", conv_id));
        if (!last_seq) return absl::NotFoundError("conversation " + conv_id + " not found");
        MPIM_RETURN_IF_ERROR(
            c.Exec("INSERT INTO session_cursors (session_id, conv_id, delivered_seq)"
                   " VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE"
                   " delivered_seq = GREATEST(delivered_seq, VALUES(delivered_seq))",
                   session_id, conv_id, std::clamp<int64_t>(seq, 0, *last_seq)));
        MPIM_ASSIGN_OR_RETURN(auto delivered, c.QueryInt("SELECT delivered_seq FROM session_cursors"
                                                         " WHERE session_id = ? AND conv_id = ?",
                                                         session_id, conv_id));
        return delivered.value_or(0);
      },
      std::move(done));
}

// One statement per 1,000 cursors (they travel as one JSON array): the
// service writes every session's acks this way every 200 ms, so a statement
// per cursor would cost the writer a round trip per session.
void MysqlConversationStore::MarkDeliveredMany(std::vector<DeliveredCursor> cursors,
                                               DoneCallback done) {
  exec_.Write<core::Status>(
      [cursors = std::move(cursors)](Connection& c) -> core::Status {
        constexpr size_t kPerStatement = 1000;
        for (size_t at = 0; at < cursors.size(); at += kPerStatement) {
          // [[session, "conv", seq], ...]; malformed conv ids are skipped
          // (they name no conversation), so the rest needs no escaping.
          std::string json = "[";
          for (size_t i = at; i < std::min(cursors.size(), at + kPerStatement); ++i) {
            const DeliveredCursor& cur = cursors[i];
            if (!ParseConvId(cur.conv_id)) continue;
            if (json.size() > 1) json += ',';
            json += "[" + std::to_string(cur.session_id) + ",\"" + cur.conv_id + "\"," +
                    std::to_string(cur.seq) + "]";
          }
          json += ']';
          if (json == "[]") continue;
          // No conversation row (unknown conversation): nothing inserted.
          // (The conv id column has the key's charset and collation, or the
          // join could not use the key and scanned every conversation.)
          MPIM_RETURN_IF_ERROR(c.Exec(
              "INSERT INTO session_cursors (session_id, conv_id, delivered_seq)"
              " SELECT j.s, c.conv_id, GREATEST(0, LEAST(j.q, c.last_seq))"
              " FROM JSON_TABLE(?, '$[*]' COLUMNS (s BIGINT PATH '$[0]',"
              "   cv VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin PATH '$[1]',"
              "   q BIGINT PATH '$[2]')) AS j"
              " JOIN conversations c ON c.conv_id = j.cv"
              " ON DUPLICATE KEY UPDATE"
              " delivered_seq = GREATEST(session_cursors.delivered_seq, VALUES(delivered_seq))",
              json));
        }
        return core::Status();
      },
      std::move(done));
}

void MysqlConversationStore::ListPending(int64_t user_id, int64_t session_id,
                                         Callback<std::vector<PendingConversation>> done) {
  exec_.Read<core::StatusOr<std::vector<PendingConversation>>>(
      [user_id, session_id](Connection& c) -> core::StatusOr<std::vector<PendingConversation>> {
        MPIM_ASSIGN_OR_RETURN(
            Rows rows,
            c.Query("SELECT uc.conv_id, c.last_seq, uc.read_seq, coalesce(sc.delivered_seq, 0)"
                    " FROM user_conversations uc JOIN conversations c ON c.conv_id = uc.conv_id"
                    " LEFT JOIN session_cursors sc ON sc.session_id = ?"
                    "  AND sc.conv_id = uc.conv_id"
                    " WHERE uc.user_id = ?"
                    "  AND c.last_seq > GREATEST(coalesce(sc.delivered_seq, 0), uc.joined_seq)"
                    " ORDER BY uc.conv_id",
                    session_id, user_id));
        return CollectRows<PendingConversation>(rows, [](const Rows& row) {
          return PendingConversation{row.Text(0), row.Int(1), row.Int(2), row.Int(3)};
        });
      },
      std::move(done));
}

void MysqlConversationStore::StartSeq(int64_t user_id, int64_t session_id,
                                      const std::string& conv_id, Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [user_id, session_id, conv_id](Connection& c) {
        return LoadStartSeq(c, user_id, session_id, conv_id);
      },
      std::move(done));
}

void MysqlConversationStore::SetFlag(const char* sql, int64_t user_id, const std::string& conv_id,
                                     bool value, DoneCallback done) {
  exec_.Write<core::Status>(
      [sql, user_id, conv_id, value](Connection& c) {
        return SetConversationFlag(c, sql, user_id, conv_id, value);
      },
      std::move(done));
}

void MysqlConversationStore::SetMuted(int64_t user_id, const std::string& conv_id, bool muted,
                                      DoneCallback done) {
  SetFlag("UPDATE user_conversations SET muted = ? WHERE user_id = ? AND conv_id = ?", user_id,
          conv_id, muted, std::move(done));
}

void MysqlConversationStore::SetPinned(int64_t user_id, const std::string& conv_id, bool pinned,
                                       DoneCallback done) {
  SetFlag("UPDATE user_conversations SET pinned = ? WHERE user_id = ? AND conv_id = ?", user_id,
          conv_id, pinned, std::move(done));
}

void MysqlConversationStore::MutedAmong(const std::string& conv_id,
                                        const std::vector<int64_t>& users,
                                        Callback<std::vector<int64_t>> done) {
  exec_.Read<core::StatusOr<std::vector<int64_t>>>(
      [conv_id, users](Connection& c) { return MutedMembers(c, conv_id, users); }, std::move(done));
}

void MysqlConversationStore::TotalUnread(const std::vector<int64_t>& users,
                                         Callback<std::vector<std::pair<int64_t, int64_t>>> done) {
  exec_.Read<core::StatusOr<std::vector<std::pair<int64_t, int64_t>>>>(
      [users](Connection& c) { return TotalUnreadOf(c, users); }, std::move(done));
}

}  // namespace mpim::store::mysql
