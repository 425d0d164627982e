#include "store/sqlite/search_store.h"

#include <string>

#include "store/conv_id.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {

std::string FtsMatchExpression(const std::string& text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    std::string_view word(text.data() + start, i - start);
    bool prefix = false;
    while (!word.empty() && word.back() == '*') {
      word.remove_suffix(1);
      prefix = true;
    }
    if (word.empty()) continue;
    if (!out.empty()) out += ' ';
    out += '"';
    for (char ch : word) {
      if (ch == '"') out += '"';
      out += ch;
    }
    out += '"';
    if (prefix) out += " *";
  }
  return out;
}

void SqliteSearchStore::Index(const std::vector<SearchDocument>& docs, Callback<int64_t> done) {
  exec_.Write<core::StatusOr<int64_t>>(
      [docs](Connection& c) -> core::StatusOr<int64_t> {
        int64_t indexed = 0;
        for (const SearchDocument& doc : docs) {
          MPIM_RETURN_IF_ERROR(c.Exec("DELETE FROM message_fts WHERE rowid = ?", doc.msg_id));
          MPIM_RETURN_IF_ERROR(
              c.Exec("INSERT INTO message_fts (rowid, text) SELECT msg_id, ?2 FROM messages"
                     " WHERE msg_id = ?1 AND recalled = 0",
                     doc.msg_id, doc.text));
          indexed += c.Changes();
        }
        return indexed;
      },
      std::move(done));
}

void SqliteSearchStore::LastIndexed(Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [](Connection& c) -> core::StatusOr<int64_t> {
        // FTS5 walks its rowids in either order; max(rowid) would scan them.
        MPIM_ASSIGN_OR_RETURN(
            auto last, c.QueryInt("SELECT rowid FROM message_fts ORDER BY rowid DESC LIMIT 1"));
        return last.value_or(0);
      },
      std::move(done));
}

void SqliteSearchStore::Unindexed(int64_t after_msg_id, int limit,
                                  Callback<std::vector<Message>> done) {
  exec_.Read<core::StatusOr<std::vector<Message>>>(
      [after_msg_id, limit](Connection& c) -> core::StatusOr<std::vector<Message>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(limit));
        MPIM_ASSIGN_OR_RETURN(Stmt st,
                              c.Query("SELECT " + MessageColumns("m") +
                                          " FROM messages m WHERE m.msg_id > ? AND m.type = 'text'"
                                          " AND m.recalled = 0 AND NOT EXISTS ("
                                          "   SELECT 1 FROM message_fts f WHERE f.rowid = m.msg_id)"
                                          " ORDER BY m.msg_id LIMIT ?",
                                      after_msg_id, limit));
        return CollectRows<Message>(st, [](const Stmt& row) { return ReadMessage(row); });
      },
      std::move(done));
}

void SqliteSearchStore::Search(const SearchQuery& query, Callback<std::vector<Message>> done) {
  exec_.Read<core::StatusOr<std::vector<Message>>>(
      [query](Connection& c) -> core::StatusOr<std::vector<Message>> {
        MPIM_RETURN_IF_ERROR(CheckLimit(query.limit));
        std::string match = FtsMatchExpression(query.text);
        if (match.empty()) return absl::InvalidArgumentError("empty search query");
        if (query.scopes.size() > static_cast<size_t>(kMaxPageLimit)) {
          return absl::InvalidArgumentError("too many search scopes");
        }
        if (query.scopes.empty()) return std::vector<Message>();
        // The scopes travel as one JSON array, so the statement is cached
        // whatever their number. Conv ids are checked, so need no escaping.
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
            Stmt st,
            c.Query("WITH scopes (conv_id, lo, hi) AS MATERIALIZED ("
                    "   SELECT value ->> 'c', value ->> 'lo', value ->> 'hi' FROM json_each(?2)),"
                    " hits AS MATERIALIZED ("
                    "   SELECT rowid AS msg_id, rank FROM message_fts WHERE message_fts MATCH ?1)"
                    " SELECT " +
                        MessageColumns("m") +
                        " FROM hits h JOIN messages m ON m.msg_id = h.msg_id"
                        " WHERE m.recalled = 0 AND EXISTS (SELECT 1 FROM scopes s"
                        "   WHERE s.conv_id = m.conv_id AND m.seq BETWEEN s.lo AND s.hi)"
                        " ORDER BY h.rank, m.msg_id DESC LIMIT ?3",
                    match, scopes, query.limit));
        return CollectRows<Message>(st, [](const Stmt& row) { return ReadMessage(row); });
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
