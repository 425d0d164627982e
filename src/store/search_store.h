// Full-text search over message text. The index is fed asynchronously (the
// task role calls Index after messages were appended; never the append path)
// and is queried only within a set of conversations the caller chose (the
// ones the searching user belongs to, optionally narrowed to seq spans).
//
// Text is tokenized on Unicode word boundaries, case- and diacritic-
// insensitively; a query matches messages holding every query word, a word
// ending in '*' matches as a prefix. Query syntax characters are not special.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "store/common.h"
#include "store/message_store.h"

namespace mpim::store {

struct SearchDocument {
  int64_t msg_id = 0;
  std::string text;  // the searchable text the service extracted from the body
};

// Messages of `conv_id` with min_seq <= seq <= max_seq.
struct SearchScope {
  std::string conv_id;
  int64_t min_seq = 1;
  int64_t max_seq = INT64_MAX;
};

struct SearchQuery {
  std::string text;
  std::vector<SearchScope> scopes;  // at most kMaxPageLimit; empty: no results
  int limit = 20;                   // [1, kMaxPageLimit]
};

class SearchStore {
 public:
  virtual ~SearchStore() = default;

  // Indexes (or re-indexes) messages; returns how many were indexed. Unknown
  // and recalled messages are skipped, so a late index job cannot bring back
  // a recalled message's text.
  virtual void Index(const std::vector<SearchDocument>& docs, Callback<int64_t> done) = 0;

  // The highest msg_id in the index; 0 when it is empty.
  virtual void LastIndexed(Callback<int64_t> done) = 0;

  // Up to `limit` (1..kMaxPageLimit) text messages with msg_id > after_msg_id
  // that are not recalled and not in the index, ascending by msg_id: what
  // an indexer that stopped without flushing (a crash) left behind.
  virtual void Unindexed(int64_t after_msg_id, int limit, Callback<std::vector<Message>> done) = 0;

  // Matching messages within the scopes, best match first (ties: newest
  // first). An empty or wordless query is kInvalidArgument.
  virtual void Search(const SearchQuery& query, Callback<std::vector<Message>> done) = 0;
};

}  // namespace mpim::store
