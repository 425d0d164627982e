// The search indexer on a real SQLite store behind a FaultStore: it indexes
// on start what the index lacks (entries a crash lost), and a batch the
// store refuses as unavailable is written again later, not dropped.
#include "service/search/indexer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "support/fault_store.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::service {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

class IndexerTest : public testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    a_ = MakeUser("a");
    b_ = MakeUser("b");
    conv_ = store::PrivateConvId(a_, b_);
  }

  store::Message Append(const std::string& type, const std::string& body) {
    store::AppendRequest r;
    r.msg_id = next_id_++;
    r.conv_id = conv_;
    r.sender = a_;
    r.recipient = b_;
    r.type = type;
    r.body = body;
    r.ts = 1;
    r.client_msg_id = "c" + std::to_string(r.msg_id);
    auto appended = store::Call(store_->messages(), &store::MessageStore::Append, r);
    EXPECT_TRUE(appended.ok()) << appended.status();
    return appended.ok() ? appended->message : store::Message{};
  }

  // The msg_ids a search for `word` finds.
  std::vector<int64_t> Found(const std::string& word) {
    auto hits = store::Call(store_->search(), &store::SearchStore::Search,
                            store::SearchQuery{word, {{conv_, 1, INT64_MAX}}, 100});
    EXPECT_TRUE(hits.ok()) << hits.status();
    std::vector<int64_t> ids;
    if (hits.ok()) {
      for (const store::Message& m : *hits) ids.push_back(m.msg_id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // Polls until a search for `word` finds exactly `want` (sorted).
  bool FoundEventually(const std::string& word, const std::vector<int64_t>& want,
                       milliseconds deadline = milliseconds(10000)) {
    const auto until = steady_clock::now() + deadline;
    while (steady_clock::now() < until) {
      if (Found(word) == want) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return Found(word) == want;
  }

  int64_t a_ = 0, b_ = 0;
  std::string conv_;
  int64_t next_id_ = 1'000'000;
};

TEST_F(IndexerTest, OnStartItIndexesTheTextMessagesTheIndexLacks) {
  store::Message m1 = Append("text", R"({"text":"orphan one"})");
  store::Message m2 = Append("text", R"({"text":"orphan two"})");
  store::Message m3 = Append("text", R"({"text":"orphan three"})");
  Append("custom", R"({"text":"orphan custom"})");
  // Only the second was indexed before the "crash".
  ASSERT_TRUE(store::Call(store_->search(), &store::SearchStore::Index,
                          std::vector<store::SearchDocument>{{m2.msg_id, "orphan two"}})
                  .ok());
  ASSERT_EQ(Found("orphan"), (std::vector<int64_t>{m2.msg_id}));

  Indexer indexer(*store_);
  indexer.Start();
  EXPECT_TRUE(FoundEventually("orphan", {m1.msg_id, m2.msg_id, m3.msg_id}));
  indexer.Stop();
  auto left = store::Call(store_->search(), &store::SearchStore::Unindexed, int64_t{0}, 10);
  ASSERT_TRUE(left.ok());
  EXPECT_TRUE(left->empty());
}

TEST_F(IndexerTest, ABatchTheStoreRefusesIsWrittenAgain) {
  testing::FaultStore faults(*store_);
  Indexer indexer(faults);
  indexer.Start();
  // Once the catch-up has looked, the store refuses two index writes.
  ASSERT_TRUE(faults.WaitCalls("search.Unindexed", 1, milliseconds(5000)));
  faults.FailNext("search.Index", 2);
  store::Message m = Append("text", R"({"text":"stubborn words"})");
  indexer.Add(m);
  EXPECT_TRUE(FoundEventually("stubborn", {m.msg_id}));
  EXPECT_GE(faults.Calls("search.Index"), 3);
  indexer.Stop();
  faults.Drain();
}

TEST_F(IndexerTest, DocumentOfTakesTheTextOfTextMessagesOnly) {
  store::Message m;
  m.msg_id = 7;
  m.type = "text";
  m.body = R"({"text":"hello"})";
  auto doc = Indexer::DocumentOf(m);
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->msg_id, 7);
  EXPECT_EQ(doc->text, "hello");
  m.body = R"({"text":""})";
  EXPECT_FALSE(Indexer::DocumentOf(m).has_value());
  m.body = "not json";
  EXPECT_FALSE(Indexer::DocumentOf(m).has_value());
  m.body = R"({"text":"x"})";
  m.type = "custom";
  EXPECT_FALSE(Indexer::DocumentOf(m).has_value());
}

}  // namespace
}  // namespace mpim::service
