// SearchStore on SQLite (FTS5).
#pragma once

#include "store/search_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

class SqliteSearchStore final : public SearchStore {
 public:
  explicit SqliteSearchStore(Executor& exec) : exec_(exec) {}

  void Index(const std::vector<SearchDocument>& docs, Callback<int64_t> done) override;
  void LastIndexed(Callback<int64_t> done) override;
  void Unindexed(int64_t after_msg_id, int limit, Callback<std::vector<Message>> done) override;
  void Search(const SearchQuery& query, Callback<std::vector<Message>> done) override;

 private:
  Executor& exec_;
};

// The FTS5 MATCH expression for a user's query: every whitespace-separated
// word quoted (so no syntax is special), a trailing '*' kept as a prefix
// query. Empty if the query has no words.
std::string FtsMatchExpression(const std::string& text);

}  // namespace mpim::store::sqlite
