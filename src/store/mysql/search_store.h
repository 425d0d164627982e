// SearchStore on MySQL/MariaDB: InnoDB FULLTEXT in boolean mode over the
// message_search table (utf8mb4_unicode_ci: case and accents folded).
//
// Differences from SQLite's FTS5 that the engine imposes: words shorter than
// the server's innodb_ft_min_token_size (default 3; set it to 1 for SQLite's
// behaviour) are not indexed, so they are left out of a query (a query of
// only such words finds nothing); CJK text without spaces is one word to
// InnoDB's parser (MariaDB has no n-gram parser), so it is found by whole
// runs or their prefixes, not by any word inside them.
#pragma once

#include <string>

#include "store/mysql/executor.h"
#include "store/search_store.h"

namespace mpim::store::mysql {

class MysqlSearchStore final : public SearchStore {
 public:
  explicit MysqlSearchStore(Executor& exec) : exec_(exec) {}

  void Index(const std::vector<SearchDocument>& docs, Callback<int64_t> done) override;
  void LastIndexed(Callback<int64_t> done) override;
  void Unindexed(int64_t after_msg_id, int limit, Callback<std::vector<Message>> done) override;
  void Search(const SearchQuery& query, Callback<std::vector<Message>> done) override;

 private:
  Executor& exec_;
};

// The boolean-mode AGAINST expression for a user's query: every word
// required (+word), a word ending in '*' as a prefix (+word*). A word is a
// run of letters, digits, '_' and non-ASCII bytes: everything else
// (including the boolean operators) separates words, so no syntax is
// special. Words shorter than `min_token` bytes are dropped. `words` gets
// how many words the query had before dropping (0: wordless).
std::string BooleanMatchExpression(const std::string& text, int min_token, int* words);

}  // namespace mpim::store::mysql
