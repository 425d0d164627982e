// What the MySQL engine promises beyond the contract suite, on a real
// mariadbd: several nodes (stores) writing one database at once, migrations
// racing on an empty database, 4-byte UTF-8, and the server going away
// (killed, paused) and coming back.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "store/mysql/mysql_store.h"
#include "store/mysql/schema.h"
#include "store/mysql/search_store.h"
#include "support/await.h"
#include "support/mariadb_server.h"

namespace mpim::store::mysql {
namespace {

using ::absl::StatusCode;
using ::mpim::testing::MariaDbServer;

std::string FreshDatabase(MariaDbServer& server) {
  static std::atomic<int> n{0};
  return server.CreateDatabase("engine_" + std::to_string(n.fetch_add(1)));
}

std::unique_ptr<Store> OpenOn(const std::string& url, int timeout_ms = 5000) {
  auto options = ParseMysqlUrl(url);
  EXPECT_TRUE(options.ok()) << options.status();
  options->pool_size = 2;
  options->timeout_ms = timeout_ms;
  auto store = Open(*options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? std::move(*store) : nullptr;
}

int64_t MakeUser(Store& store, const std::string& name) {
  auto user = Call(store.users(), &UserStore::Create, NewUser{name, "h", name, ""});
  EXPECT_TRUE(user.ok()) << user.status();
  return user.ok() ? user->user_id : 0;
}

AppendRequest Text(int64_t msg_id, const std::string& conv, int64_t sender,
                   const std::string& body, const std::string& key) {
  AppendRequest r;
  r.msg_id = msg_id;
  r.conv_id = conv;
  r.sender = sender;
  r.body = body;
  r.ts = 1'700'000'000'000;
  r.client_msg_id = key;
  return r;
}

TEST(MysqlUrlTest, ParsesEveryPartAndNamesWhatIsWrong) {
  auto o = ParseMysqlUrl("mysql://app:s%40cret@db.example:3307/chat");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->user, "app");
  EXPECT_EQ(o->password, "s@cret");
  EXPECT_EQ(o->host, "db.example");
  EXPECT_EQ(o->port, 3307);
  EXPECT_EQ(o->database, "chat");
  EXPECT_EQ(ParseMysqlUrl("mysql://app@127.0.0.1/chat")->port, 3306);
  for (const char* bad : {"", "http://a@h/db", "mysql://h:1/db", "mysql://a@h:1/", "mysql://a@h:1/x/y",
                          "mysql://a@/db"}) {
    auto r = ParseMysqlUrl(bad);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("store.mysql_url"), std::string::npos);
    }
  }
}

// Two nodes append to the same conversations at once: every seq of each
// conversation is handed out exactly once, with no gap, and the database's
// rows agree with the acknowledgements.
TEST(MysqlEngineTest, TwoNodesAppendingToOneConversationNeverShareOrSkipASeq) {
  const std::string url = FreshDatabase(::mpim::testing::SharedMariaDb());
  auto node1 = OpenOn(url), node2 = OpenOn(url);
  ASSERT_TRUE(node1 && node2);
  int64_t a = MakeUser(*node1, "a"), b = MakeUser(*node1, "b"), c = MakeUser(*node1, "c");
  const std::vector<std::string> convs = {PrivateConvId(a, b), PrivateConvId(a, c),
                                          PrivateConvId(b, c)};
  constexpr int kPerNode = 600;
  std::mutex mu;
  std::map<std::string, std::vector<int64_t>> seqs;
  std::vector<core::Status> errors;
  std::atomic<int> completed{0};
  auto run = [&](Store& node, int64_t first_id) {
    for (int i = 0; i < kPerNode; ++i) {
      const std::string& conv = convs[static_cast<size_t>(i) % convs.size()];
      auto ref = ParseConvId(conv);
      node.messages().Append(
          Text(first_id + i, conv, ref->a, "{}", "k" + std::to_string(first_id + i)),
          [&](core::StatusOr<AppendResult> r) {
            std::lock_guard lock(mu);
            if (r.ok()) {
              seqs[r->message.conv_id].push_back(r->message.seq);
            } else {
              errors.push_back(r.status());
            }
            ++completed;
          });
    }
  };
  std::thread t1([&] { run(*node1, 1'000'000); });
  std::thread t2([&] { run(*node2, 2'000'000); });
  t1.join();
  t2.join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (completed < 2 * kPerNode && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(completed, 2 * kPerNode);
  ASSERT_TRUE(errors.empty()) << errors.front();
  for (const std::string& conv : convs) {
    std::vector<int64_t>& got = seqs[conv];
    std::sort(got.begin(), got.end());
    ASSERT_EQ(got.size(), static_cast<size_t>(2 * kPerNode / 3));
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<int64_t>(i + 1)) << conv;
    auto head = Call(node2->conversations(), &ConversationStore::Get, conv);
    ASSERT_TRUE(head.ok());
    EXPECT_EQ(head->last_seq, static_cast<int64_t>(got.size()));
    auto page = Call(node1->messages(), &MessageStore::Read, conv,
                     RangeQuery{0, std::nullopt, kMaxPageLimit});
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->items.size(), got.size());
    for (size_t i = 0; i < page->items.size(); ++i) EXPECT_EQ(page->items[i].seq, int64_t(i + 1));
  }
}

// One idempotency key sent through two nodes at once: stored once, and both
// answers name the one message.
TEST(MysqlEngineTest, DedupHoldsAcrossNodes) {
  const std::string url = FreshDatabase(::mpim::testing::SharedMariaDb());
  auto node1 = OpenOn(url), node2 = OpenOn(url);
  ASSERT_TRUE(node1 && node2);
  int64_t a = MakeUser(*node1, "a"), b = MakeUser(*node1, "b");
  const std::string conv = PrivateConvId(a, b);
  for (int round = 0; round < 20; ++round) {
    const std::string key = "same-" + std::to_string(round);
    core::StatusOr<AppendResult> r1, r2;
    std::thread t1([&] { r1 = Call(node1->messages(), &MessageStore::Append,
                                   Text(10'000 + round, conv, a, "{}", key)); });
    std::thread t2([&] { r2 = Call(node2->messages(), &MessageStore::Append,
                                   Text(20'000 + round, conv, a, "{}", key)); });
    t1.join();
    t2.join();
    ASSERT_TRUE(r1.ok()) << r1.status();
    ASSERT_TRUE(r2.ok()) << r2.status();
    EXPECT_EQ(r1->message.msg_id, r2->message.msg_id);
    EXPECT_EQ(r1->message.seq, r2->message.seq);
    EXPECT_NE(r1->duplicate, r2->duplicate);
  }
  EXPECT_EQ(Call(node1->conversations(), &ConversationStore::Get, conv)->last_seq, 20);
}

TEST(MysqlEngineTest, NodesStartingAtOnceOnAnEmptyDatabaseMigrateItOnce) {
  const std::string url = FreshDatabase(::mpim::testing::SharedMariaDb());
  auto options = ParseMysqlUrl(url);
  ASSERT_TRUE(options.ok());
  std::vector<core::StatusOr<int>> results(4, absl::UnknownError("not run"));
  std::vector<std::thread> nodes;
  for (size_t i = 0; i < results.size(); ++i) {
    nodes.emplace_back([&, i] { results[i] = Migrate(*options); });
  }
  for (auto& t : nodes) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, LatestSchemaVersion());
  }
  auto store = OpenOn(url);
  ASSERT_TRUE(store);
  EXPECT_GT(MakeUser(*store, "after"), 1000);
}

TEST(MysqlEngineTest, FourByteUtf8RoundTripsAndIsFound) {
  const std::string url = FreshDatabase(::mpim::testing::SharedMariaDb());
  auto store = OpenOn(url);
  ASSERT_TRUE(store);
  int64_t a = MakeUser(*store, "emoji😀user"), b = MakeUser(*store, "b");
  ASSERT_GT(a, 0);
  const std::string body = "{\"text\":\"party 🎉🎉 time 𝄞 \\u0000 end\"}";
  const std::string conv = PrivateConvId(a, b);
  auto sent = Call(store->messages(), &MessageStore::Append, Text(77, conv, a, body, "e"));
  ASSERT_TRUE(sent.ok()) << sent.status();
  auto got = Call(store->messages(), &MessageStore::Get, int64_t{77});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, body);
  EXPECT_EQ(Call(store->users(), &UserStore::Get, a)->username, "emoji😀user");
  ASSERT_EQ(*Call(store->search(), &SearchStore::Index,
                  std::vector<SearchDocument>{{77, "party 🎉🎉 time"}}),
            1);
  auto hits = Call(store->search(), &SearchStore::Search,
                   SearchQuery{"PARTY", {{conv, 1, INT64_MAX}}, 10});
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].body, body);
}

TEST(BooleanMatchExpressionTest, EveryWordRequiredNoSyntaxSpecial) {
  int words = 0;
  EXPECT_EQ(BooleanMatchExpression("hello World", 1, &words), "+hello +World");
  EXPECT_EQ(words, 2);
  EXPECT_EQ(BooleanMatchExpression("meet* -x +y \"q\" (a)", 1, &words), "+meet* +x +y +q +a");
  EXPECT_EQ(BooleanMatchExpression("café ok", 3, &words), "+café");
  EXPECT_EQ(words, 2);
  EXPECT_EQ(BooleanMatchExpression("  \"()  ", 1, &words), "");
  EXPECT_EQ(words, 0);
}

// The server killed while a node runs: calls fail with kUnavailable (never
// a false OK) and /readyz's Ping says so; once the server is back the node
// serves again by itself, and what it acknowledged before is still there.
TEST(MysqlFaultTest, ServerKilledCallsFailUnavailableThenRecoverByThemselves) {
  MariaDbServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  const std::string url = server.CreateDatabase("faults");
  auto store = OpenOn(url, /*timeout_ms=*/2000);
  ASSERT_TRUE(store);
  int64_t a = MakeUser(*store, "a"), b = MakeUser(*store, "b");
  const std::string conv = PrivateConvId(a, b);
  ASSERT_TRUE(Call(store->messages(), &MessageStore::Append, Text(1, conv, a, "{}", "1")).ok());

  server.Kill();
  auto during = Call(store->messages(), &MessageStore::Append, Text(2, conv, a, "{}", "2"));
  EXPECT_EQ(during.status().code(), StatusCode::kUnavailable) << during.status();
  auto read = Call(store->messages(), &MessageStore::Get, int64_t{1});
  EXPECT_EQ(read.status().code(), StatusCode::kUnavailable) << read.status();
  EXPECT_EQ(::mpim::testing::Await<bool>([&](auto cb) {
              store->Ping([cb = std::move(cb)](core::Status s) mutable {
                if (s.ok()) return std::move(cb)(true);
                std::move(cb)(s);
              });
            }).status().code(),
            StatusCode::kUnavailable);

  ASSERT_TRUE(server.Start()) << server.error();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  core::StatusOr<AppendResult> after = absl::UnknownError("not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    after = Call(store->messages(), &MessageStore::Append, Text(3, conv, a, "{}", "3"));
    if (after.ok()) break;
    EXPECT_EQ(after.status().code(), StatusCode::kUnavailable) << after.status();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->message.seq, 2);  // the failed append took no seq
  auto first = Call(store->messages(), &MessageStore::Get, int64_t{1});
  ASSERT_TRUE(first.ok()) << first.status();
  // Readers recover too (a pooled connection that died is replaced).
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(Call(store->messages(), &MessageStore::Get, int64_t{3}).ok());
  }
}

// A server that stops answering (paused) fails calls within the timeout
// instead of hanging them; it serves again once resumed.
TEST(MysqlFaultTest, ServerThatStopsAnsweringFailsCallsWithinTheTimeout) {
  MariaDbServer server;
  ASSERT_TRUE(server.Start()) << server.error();
  auto store = OpenOn(server.CreateDatabase("paused"), /*timeout_ms=*/1000);
  ASSERT_TRUE(store);
  int64_t a = MakeUser(*store, "a"), b = MakeUser(*store, "b");
  const std::string conv = PrivateConvId(a, b);
  server.Pause();
  const auto start = std::chrono::steady_clock::now();
  auto during = Call(store->messages(), &MessageStore::Append, Text(1, conv, a, "{}", "1"));
  const auto took = std::chrono::steady_clock::now() - start;
  server.Resume();
  EXPECT_EQ(during.status().code(), StatusCode::kUnavailable) << during.status();
  EXPECT_LT(took, std::chrono::seconds(20));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  core::StatusOr<AppendResult> after = absl::UnknownError("not tried");
  while (std::chrono::steady_clock::now() < deadline) {
    after = Call(store->messages(), &MessageStore::Append, Text(2, conv, a, "{}", "2"));
    if (after.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(after.ok()) << after.status();
}

}  // namespace
}  // namespace mpim::store::mysql
