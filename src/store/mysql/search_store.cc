#include "store/mysql/search_store.h"

#include <cctype>
#include <string>

#include "store/conv_id.h"
#include "store/mysql/rows.h"

namespace mpim::store::mysql {
namespace {

bool WordByte(unsigned char ch) { return ch >= 0x80 || std::isalnum(ch) || ch == '_'; }

}  // namespace

std::string BooleanMatchExpression(const std::string& text, int min_token, int* words) {
  std::string out;
  *words = 0;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && !WordByte(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && WordByte(static_cast<unsigned char>(text[i]))) ++i;
    if (i == start) break;
    ++*words;
    // A '*' right after the word (before whitespace or the end) makes it a
    // prefix, as "meet*" does in SQLite.
    const bool prefix = i < text.size() && text[i] == '*';
    if (static_cast<int>(i - start) < min_token) continue;
    if (!out.empty()) out += ' ';
    out += '+';
    out.append(text, start, i - start);
    if (prefix) out += '*';
  }
  return out;
}

void MysqlSearchStore::Index(const std::vector<SearchDocument>& docs, Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [docs](Connection& c) -> core::StatusOr<int64_t> {
        int64_t indexed = 0;
        for (const SearchDocument& doc : docs) {
          MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM message_search WHERE msg_id = ?", doc.msg_id));
          MPIM_RETURN_IF_ERROR(
              c.Exec("INSERT INTO message_search (msg_id, text) SELECT msg_id, ? FROM messages"
                     " WHERE msg_id = ? AND recalled = 0",
                     doc.text, doc.msg_id));
          indexed += c.Changes();
        }
        return indexed;
      },
      std::move(done));
}

void MysqlSearchStore::LastIndexed(Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(auto last, c.QueryInt("SELECT MAX(msg_id) FROM message_search"));
        return last.value_or(0);
      },
      std::move(done));
}

void MysqlSearchStore::Unindexed(int64_t after_msg_id, int limit,
                                 Callback<std::vector<Message>> done) {
  exec_.Read<core::StatusOr<std::vector<Message>>>(
      [after_msg_id, limit](Connection& c) -> core::StatusOr<std::vector<Message>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(limit));
        MPIM_ASSIGN_OR_RETURN(
            Rows rows, c.Query("SELECT " + MessageColumns("m") +
                                   " FROM messages m WHERE m.msg_id > ? AND m.type = 'text'"
                                   " AND m.recalled = 0 AND NOT EXISTS ("
                                   "   SELECT 1 FROM message_search s WHERE s.msg_id = m.msg_id)"
                                   " ORDER BY m.msg_id LIMIT ?",
                               after_msg_id, limit));
        return CollectRows<Message>(rows, [](const Rows& row) { return ReadMessage(row); });
      },
      std::move(done));
}

void MysqlSearchStore::Search(const SearchQuery& query, Callback<std::vector<Message>> done) {
  exec_.Read<core::StatusOr<std::vector<Message>>>(
      [query](Connection& c) -> core::StatusOr<std::vector<Message>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(query.limit));
        MPIM_ASSIGN_OR_RETURN(auto min_token, c.QueryInt("SELECT @@innodb_ft_min_token_size"));
        int words = 0;
        std::string match =
            BooleanMatchExpression(query.text, static_cast<int>(min_token.value_or(3)), &words);
        if (words == 0) return absl::InvalidArgumentError("empty search query");
        if (query.scopes.size() > static_cast<size_t>(kMaxPageLimit)) {
          return absl::InvalidArgumentError("too many search scopes");
        }
        if (query.scopes.empty() || match.empty()) return std::vector<Message>();
        // The scopes travel as one JSON array (one cached statement whatever
        // their number). Conv ids are checked, so need no escaping.
        std::string scopes = "[";
        for (const SearchScope& s : query.scopes) {
          if (!ParseConvId(s.conv_id)) {
            return absl::InvalidArgumentError("malformed conv_id: " + s.conv_id);
          }
          if (scopes.size() > 1) scopes += ',';
          scopes += "{\"c\":\"" + s.conv_id + "\",\"lo\":" + std::to_string(s.min_seq) +
                    ",\"hi\":" + std::to_string(s.max_seq) + "}";
        }
        scopes += ']';
        MPIM_ASSIGN_OR_RETURN(
            Rows rows,
            c.Query("SELECT " + MessageColumns("m") +
                        ", MATCH (s.text) AGAINST (? IN BOOLEAN MODE) AS score"
                        " FROM message_search s JOIN messages m ON m.msg_id = s.msg_id"
                        " WHERE MATCH (s.text) AGAINST (? IN BOOLEAN MODE) AND m.recalled = 0"
                        " AND EXISTS (SELECT 1 FROM JSON_TABLE(?, '$[*]' COLUMNS ("
                        "   c VARCHAR(64) CHARACTER SET ascii COLLATE ascii_nopad_bin PATH '$.c',"
                        "   lo BIGINT PATH '$.lo',"
                        "   hi BIGINT PATH '$.hi')) sc"
                        "  WHERE sc.c = m.conv_id AND m.seq BETWEEN sc.lo AND sc.hi)"
                        " ORDER BY score DESC, m.msg_id DESC LIMIT ?",
                    match, match, scopes, query.limit));
        return CollectRows<Message>(rows, [](const Rows& row) { return ReadMessage(row); });
      },
      std::move(done));
}

}  // namespace mpim::store::mysql
