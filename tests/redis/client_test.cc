// The Redis client (redis/client.h) against a real redis-server:
// URLs, replies, pipelining, AUTH and SELECT, pub/sub, and what happens when
// Redis is killed, restarted or stops answering (SIGSTOP).
#include "redis/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "redis/test_util.h"

namespace mpim::redis {
namespace {

TEST(RedisUrlTest, Parses) {
  auto u = ParseUrl("redis://127.0.0.1:6380");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, 6380);
  EXPECT_EQ(u->password, "");
  EXPECT_EQ(u->db, 0);
  u = ParseUrl("redis://:s3cr:et@cache.local:7000/4");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "cache.local");
  EXPECT_EQ(u->password, "s3cr:et");
  EXPECT_EQ(u->db, 4);
  u = ParseUrl("redis://default:pw@[::1]:7001/");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->password, "pw");
  EXPECT_EQ(ParseUrl("redis://host").value().port, 6379);
  for (const char* bad : {"http://h:1", "redis://:1", "redis://h:0", "redis://h:99999",
                          "redis://h:1/x", "redis://h:x"}) {
    EXPECT_EQ(ParseUrl(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(Client::Start({.url = "nope"}).ok());
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()) << server_.error(); }
  RedisServer server_;
};

TEST_F(RedisClientTest, RepliesOfEveryType) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  const std::string k = TestPrefix();
  const std::string binary("a\0b\r\n", 5);
  auto set = Call(*client, {"SET", k + "s", binary});
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->type, Reply::Type::kStatus);
  EXPECT_EQ(set->str, "OK");
  auto get = Call(*client, {"GET", k + "s"});
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get->type, Reply::Type::kString);
  EXPECT_EQ(get->str, binary) << "binary-safe both ways";
  EXPECT_TRUE(Call(*client, {"GET", k + "none"})->nil());
  EXPECT_EQ(Call(*client, {"INCRBY", k + "n", "5"})->integer, 5);
  auto many = Call(*client, {"MGET", k + "s", k + "none"});
  ASSERT_TRUE(many.ok());
  ASSERT_EQ(many->elements.size(), 2u);
  EXPECT_EQ(many->elements[0].str, binary);
  EXPECT_TRUE(many->elements[1].nil());
  auto wrong = Call(*client, {"INCR", k + "s"});
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(wrong.status().message().find("ERR"), std::string_view::npos) << wrong.status();
  EXPECT_TRUE(client->connected()) << "an error reply keeps the connection";
}

TEST_F(RedisClientTest, PipelinedCommandsAnswerInOrder) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  constexpr int kN = 2000;
  std::mutex mu;
  std::vector<int64_t> got;
  std::atomic<int> done{0};
  for (int i = 0; i < kN; ++i) {
    client->Command({"INCR", TestPrefix()}, [&](core::StatusOr<Reply> r) {
      std::lock_guard lock(mu);
      got.push_back(r.ok() ? r->integer : -1);
      ++done;
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return done == kN; }));
  for (int i = 0; i < kN; ++i) ASSERT_EQ(got[i], i + 1) << "reply " << i;
  EXPECT_EQ(client->connects(), 1u);
}

TEST_F(RedisClientTest, AuthAndSelectOnConnect) {
  ASSERT_EQ(server_.Command({"CONFIG", "SET", "requirepass", "pw"}), "OK");
  auto client = Connect(server_, std::chrono::milliseconds(300),
                        "redis://:pw@127.0.0.1:" + std::to_string(server_.port()) + "/3");
  ASSERT_TRUE(client);
  ASSERT_TRUE(Call(*client, {"SET", "in-db-3", "x"}).ok());
  // The fixture's own connection is not authenticated.
  EXPECT_EQ(server_.Command({"AUTH", "pw"}), "OK");

  ClientOptions wrong{.url = "redis://:nope@127.0.0.1:" + std::to_string(server_.port()),
                           .timeout = std::chrono::milliseconds(300)};
  auto refused = Client::Start(wrong);
  ASSERT_TRUE(refused.ok());
  auto r = Call(**refused, {"PING"});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_FALSE((*refused)->connected());
}

TEST_F(RedisClientTest, SelectsTheDatabase) {
  auto client = Connect(server_, std::chrono::milliseconds(300), server_.Url(5));
  ASSERT_TRUE(client);
  ASSERT_TRUE(Call(*client, {"SET", TestPrefix(), "five"}).ok());
  EXPECT_EQ(server_.Command({"GET", TestPrefix()}, 5), "five");
  EXPECT_EQ(server_.Command({"GET", TestPrefix()}), "(nil)");
}

struct Inbox {
  std::mutex mu;
  std::vector<std::string> messages;
  std::atomic<int> subscribed{0};
  size_t size() {
    std::lock_guard lock(mu);
    return messages.size();
  }
};

void Listen(Client& client, const std::string& channel, Inbox& inbox) {
  client.Subscribe(
      channel,
      [&inbox](std::string_view, std::string_view m) {
        std::lock_guard lock(inbox.mu);
        inbox.messages.emplace_back(m);
      },
      [&inbox] { ++inbox.subscribed; });
}

TEST_F(RedisClientTest, SubscribersGetMessages) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  Inbox a, b;
  Listen(*client, TestPrefix(), a);
  Listen(*client, TestPrefix(), b);
  ASSERT_TRUE(WaitUntil([&] { return a.subscribed == 1 && b.subscribed == 1; }));
  auto published = Call(*client, {"PUBLISH", TestPrefix(), "hello"});
  ASSERT_TRUE(published.ok());
  EXPECT_EQ(published->integer, 1) << "one subscriber connection";
  ASSERT_TRUE(WaitUntil([&] { return a.size() == 1 && b.size() == 1; }));
  EXPECT_EQ(a.messages[0], "hello");
}

TEST_F(RedisClientTest, KilledThenRestartedRedisIsUsedAgain) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  Inbox inbox;
  Listen(*client, TestPrefix(), inbox);
  ASSERT_TRUE(WaitUntil([&] { return inbox.subscribed == 1; }));

  server_.Kill();
  ASSERT_TRUE(WaitUntil([&] { return !client->connected(); }));
  const auto start = std::chrono::steady_clock::now();
  auto down = Call(*client, {"PING"});
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2))
      << "fails within the timeout, not later";

  ASSERT_TRUE(server_.Restart()) << server_.error();
  ASSERT_TRUE(WaitUntil([&] { return client->connected(); })) << "reconnects by itself";
  EXPECT_TRUE(Call(*client, {"PING"}).ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.subscribed == 2; })) << "subscribes again";
  ASSERT_TRUE(Call(*client, {"PUBLISH", TestPrefix(), "back"}).ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.size() == 1; }));
}

TEST_F(RedisClientTest, StoppedRedisTimesOutAndTheClientReconnects) {
  auto client = Connect(server_, std::chrono::milliseconds(200));
  ASSERT_TRUE(client);
  const uint64_t connects = client->connects();
  server_.Pause();
  const auto start = std::chrono::steady_clock::now();
  auto r = Call(*client, {"SET", TestPrefix(), "1"});
  const auto took = std::chrono::steady_clock::now() - start;
  server_.Resume();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  EXPECT_GE(took, std::chrono::milliseconds(150)) << "failed by its deadline";
  EXPECT_LT(took, std::chrono::seconds(3));
  ASSERT_TRUE(WaitUntil([&] { return client->connects() > connects && client->connected(); }))
      << "the connection is dropped and made again";
  EXPECT_TRUE(Call(*client, {"PING"}).ok());
}

TEST_F(RedisClientTest, NoServerFailsFastAndNeverHangs) {
  const uint16_t port = server_.port();
  server_.Kill();
  auto client = Client::Start({.url = "redis://127.0.0.1:" + std::to_string(port),
                                    .timeout = std::chrono::milliseconds(300)});
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    auto r = Call(**client, {"PING"});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
  }
  EXPECT_FALSE((*client)->connected());
}

TEST_F(RedisClientTest, DestroyingTheClientAnswersWhatIsPending) {
  auto client = Connect(server_);
  ASSERT_TRUE(client);
  server_.Pause();
  std::atomic<int> answered{0};
  for (int i = 0; i < 10; ++i) {
    client->Command({"PING"}, [&](core::StatusOr<Reply> r) {
      EXPECT_FALSE(r.ok());
      ++answered;
    });
  }
  client.reset();
  server_.Resume();
  EXPECT_EQ(answered, 10);
}

}  // namespace
}  // namespace mpim::redis
