// The bus contract on both Redis engines (redis-pubsub, redis-streams), each
// on a redis-server of its own, and what the engines guarantee beyond it:
// what a subscriber misses while its connection is down, on_gap, outages
// of Redis, the keys in Redis (dead letters, pending lists, trimming).
#include <gtest/gtest.h>

#include <atomic>
#include <sstream>

#include "bus/bus_contract.h"
#include "bus/redis_bus.h"
#include "support/redis_server.h"

namespace mpim::bus::testing {
namespace {

using namespace std::chrono_literals;
using mpim::testing::RedisServer;
using Topics = RedisBusOptions::Topics;

// "t:<suite>.<test>:" (the parameter included): no two tests share a key.
std::string TestPrefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string("t:") + info->test_suite_name() + "." + info->name() + ":";
  for (char& c : name) {
    if (c == '/') c = '.';
  }
  return name;
}

std::unique_ptr<RedisBus> MakeBus(const RedisServer& server, Topics topics,
                                  std::chrono::milliseconds reconnect_min = 10ms) {
  RedisBusOptions o;
  o.topics = topics;
  o.url = server.Url();
  o.prefix = TestPrefix();
  o.timeout = 1000ms;
  o.stream_max_len = kContractMaxLen;
  o.reconnect_min = reconnect_min;
  o.reconnect_max = std::max<std::chrono::milliseconds>(reconnect_min, 200ms);
  auto bus = RedisBus::Open(o);
  if (!bus.ok()) {
    ADD_FAILURE() << bus.status();
    return nullptr;
  }
  return std::move(*bus);
}

// One server per engine for the contract suite, started on first use.
RedisServer& ContractServer(Topics topics) {
  static RedisServer pubsub, streams;
  RedisServer& server = topics == Topics::kPubSub ? pubsub : streams;
  if (!server.running() && !server.Start()) ADD_FAILURE() << server.error();
  return server;
}

INSTANTIATE_TEST_SUITE_P(
    Redis, BusContract,
    ::testing::Values(
        BusFactory{"pubsub",
                   [] { return MakeBus(ContractServer(Topics::kPubSub), Topics::kPubSub); }},
        BusFactory{"streams",
                   [] { return MakeBus(ContractServer(Topics::kStreams), Topics::kStreams); }}),
    [](const auto& info) { return info.param.name; });

// Lines of a RedisServer::Command reply.
std::vector<std::string> Lines(const std::string& reply) {
  std::vector<std::string> out;
  std::istringstream in(reply);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// A test with a redis-server of its own (it is stopped and restarted).
class RedisBusTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.Start()) << server_.error(); }

  int64_t PendingCount(const std::string& key, const std::string& group) {
    auto lines = Lines(server_.Command({"XPENDING", key, group}));
    return lines.empty() ? -1 : std::stoll(lines[0]);
  }

  RedisServer server_;
};

TEST_F(RedisBusTest, PubSubLosesWhatIsPublishedWhileTheSubscriberIsDownThenCallsOnGap) {
  // A slow resubscribe (150-300 ms) leaves room to publish while it is down.
  auto bus = MakeBus(server_, Topics::kPubSub, 300ms);
  Inbox inbox;
  std::atomic<int> gaps{0};
  auto h = bus->Subscribe("t", inbox.Handler(), [&] { ++gaps; });
  ASSERT_TRUE(PublishNow(*bus, "t", "before").ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.Has("before"); }));
  EXPECT_EQ(gaps, 0) << "no gap on the first subscribe";

  EXPECT_EQ(server_.Command({"CLIENT", "KILL", "TYPE", "pubsub"}), "1");
  EXPECT_EQ(server_.Command({"PUBLISH", TestPrefix() + "t", "lost"}), "0")
      << "nobody subscribed while the subscriber is down";
  ASSERT_TRUE(WaitUntil([&] { return gaps == 1; })) << "on_gap after resubscribing";
  ASSERT_TRUE(PublishNow(*bus, "t", "after").ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.Has("after"); }));
  EXPECT_FALSE(inbox.Has("lost"));
  EXPECT_EQ(inbox.Got(), (std::vector<std::string>{"before", "after"}));
  EXPECT_EQ(gaps, 1);
}

TEST_F(RedisBusTest, StreamsTopicDeliversWhatWasPublishedWhileTheSubscriberReconnected) {
  auto bus = MakeBus(server_, Topics::kStreams, 300ms);
  Inbox inbox;
  std::atomic<int> gaps{0};
  auto h = bus->Subscribe("t", inbox.Handler(), [&] { ++gaps; });
  ASSERT_TRUE(PublishNow(*bus, "t", "a").ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.Has("a"); }));
  // The subscriber's own connection, blocked in XREAD.
  std::string id;
  ASSERT_TRUE(WaitUntil([&] {
    for (const std::string& line : Lines(server_.Command({"CLIENT", "LIST"}))) {
      if (line.find("cmd=xread") == std::string::npos) continue;
      id = line.substr(3, line.find(' ') - 3);  // "id=N ..."
      return true;
    }
    return false;
  }));
  EXPECT_EQ(server_.Command({"CLIENT", "KILL", "ID", id}), "1");
  ASSERT_TRUE(PublishNow(*bus, "t", "b").ok());
  ASSERT_TRUE(PublishNow(*bus, "t", "c").ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.size() >= 3; }));
  EXPECT_EQ(inbox.Got(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(gaps, 0) << "nothing was missed";
}

TEST_F(RedisBusTest, StreamsTopicCallsOnGapWhenRedisRestartsEmpty) {
  auto bus = MakeBus(server_, Topics::kStreams);
  Inbox inbox;
  std::atomic<int> gaps{0};
  auto h = bus->Subscribe("t", inbox.Handler(), [&] { ++gaps; });
  ASSERT_TRUE(PublishNow(*bus, "t", "a").ok());
  ASSERT_TRUE(WaitUntil([&] { return inbox.Has("a"); }));
  ASSERT_TRUE(server_.Restart()) << server_.error();
  ASSERT_TRUE(WaitUntil([&] { return gaps >= 1; })) << "on_gap after Redis lost the stream";
  ASSERT_TRUE(WaitUntil([&] { return PublishNow(*bus, "t", "after").ok(); }));
  ASSERT_TRUE(WaitUntil([&] { return inbox.Has("after"); })) << "reads the new stream";
  EXPECT_EQ(gaps, 1);
}

class RedisOutageTest : public RedisBusTest, public ::testing::WithParamInterface<Topics> {};

TEST_P(RedisOutageTest, PublishAndAppendFailUnavailableWhileRedisIsStoppedThenWorkAgain) {
  auto bus = MakeBus(server_, GetParam());
  Inbox inbox;
  std::atomic<int> gaps{0};
  auto sub = bus->Subscribe("t", inbox.Handler(), [&] { ++gaps; });
  EntryLog log;
  ConsumerOptions group{"g", "c"};
  auto con = bus->Consume("s", group, log.Handler(bus.get(), "s", "g"));
  ASSERT_TRUE(AppendNow(*bus, "s", "one").ok());
  ASSERT_TRUE(PublishNow(*bus, "t", "p1").ok());
  ASSERT_TRUE(WaitUntil([&] { return log.HasPayload("one") && inbox.Has("p1"); }));

  server_.Stop();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(PublishNow(*bus, "t", "down").code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(AppendNow(*bus, "s", "down").status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(AckNow(*bus, "s", "g", {"1-1"}).code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_FALSE(bus->connected());

  ASSERT_TRUE(server_.Start()) << server_.error();
  ASSERT_TRUE(WaitUntil([&] { return AppendNow(*bus, "s", "two").ok(); }));
  ASSERT_TRUE(WaitUntil([&] { return log.HasPayload("two"); })) << "the consumer reads again";
  // A subscriber may miss what is published before it is back (pubsub):
  // publish until one arrives.
  int n = 0;
  ASSERT_TRUE(WaitUntil([&] {
    const std::string p = "back" + std::to_string(++n);
    (void)PublishNow(*bus, "t", p);
    return WaitUntil([&] { return inbox.Has(p); }, 100ms);
  }));
  EXPECT_FALSE(inbox.Has("down"));
  EXPECT_FALSE(log.HasPayload("down"));
  EXPECT_EQ(gaps, 1) << "Redis restarted empty: on_gap once";
}

INSTANTIATE_TEST_SUITE_P(Engines, RedisOutageTest,
                         ::testing::Values(Topics::kPubSub, Topics::kStreams),
                         [](const auto& info) {
                           return info.param == Topics::kPubSub ? "pubsub" : "streams";
                         });

TEST_F(RedisBusTest, StreamKeysPendingListsAndDeadLetters) {
  auto bus = MakeBus(server_, Topics::kStreams);
  const std::string key = TestPrefix() + "s";
  // Pending until acked; one XACK for many ids.
  EntryLog log;
  auto c1 = bus->Consume("s", ConsumerOptions{"g", "c1"}, log.Handler());
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto id = AppendNow(*bus, "s", "e" + std::to_string(i));
    ASSERT_TRUE(id.ok()) << id.status();
    ids.push_back(*id);
  }
  ASSERT_TRUE(WaitUntil([&] { return log.size() >= 5; }));
  EXPECT_EQ(PendingCount(key, "g"), 5);
  ASSERT_TRUE(AckNow(*bus, "s", "g", {ids[0], ids[1], ids[2]}).ok());
  EXPECT_EQ(PendingCount(key, "g"), 2);
  ASSERT_TRUE(AckNow(*bus, "s", "g", {ids[3], ids[4]}).ok());
  EXPECT_EQ(PendingCount(key, "g"), 0);
  c1.reset();

  // Dead letters: payload and the original id, acked in the group.
  ConsumerOptions fragile{"g2", "c", 64, 200ms, 2};
  EntryLog never;
  auto c2 = bus->Consume("s", fragile, never.Handler());
  auto poison = AppendNow(*bus, "s", "poison");
  ASSERT_TRUE(poison.ok());
  // g2 reads from the start: e0-e4 die too, then poison.
  ASSERT_TRUE(WaitUntil([&] { return server_.Command({"XLEN", key + ".dead"}) == "6"; }, 15s));
  // Acked once it is in the dead letters (the ack follows the XADD: seen
  // still pending for a moment under ASan).
  EXPECT_TRUE(WaitUntil([&] { return PendingCount(key, "g2") == 0; }))
      << "what died is acked: " << PendingCount(key, "g2") << " still pending";
  auto dead = Lines(server_.Command({"XREVRANGE", key + ".dead", "+", "-", "COUNT", "1"}));
  ASSERT_EQ(dead.size(), 5u);  // id, payload, poison, id, <id>
  EXPECT_EQ(dead[1], "payload");
  EXPECT_EQ(dead[2], "poison");
  EXPECT_EQ(dead[3], "id");
  EXPECT_EQ(dead[4], *poison);
  EXPECT_EQ(never.MaxDeliveries("poison"), 2u);
  c2.reset();

  // Retention: MAXLEN ~ keeps about max_len.
  for (int i = 0; i < 1000; ++i) bus->Append("s", "x", nullptr);
  ASSERT_TRUE(AppendNow(*bus, "s", "last").ok());
  const int64_t len = std::stoll(server_.Command({"XLEN", key}));
  EXPECT_GE(len, kContractMaxLen);
  EXPECT_LE(len, kContractMaxLen + 200);
}

TEST_F(RedisBusTest, AnEntryTrimmedWhilePendingLeavesThePendingList) {
  auto bus = MakeBus(server_, Topics::kStreams);
  const std::string key = TestPrefix() + "s";
  EntryLog first;
  auto c1 = bus->Consume("s", ConsumerOptions{"g", "c1", 64, 200ms}, first.Handler());
  ASSERT_TRUE(AppendNow(*bus, "s", "old").ok());
  ASSERT_TRUE(WaitUntil([&] { return first.HasPayload("old"); }));
  c1.reset();  // gone without acking
  EXPECT_EQ(PendingCount(key, "g"), 1);
  for (int i = 0; i < 1000; ++i) bus->Append("s", "x", nullptr);  // trims "old"
  ASSERT_TRUE(AppendNow(*bus, "s", "last").ok());
  EntryLog second;
  auto c2 = bus->Consume("s", ConsumerOptions{"g", "c2", 256, 200ms}, second.Handler(bus.get(), "s", "g"));
  ASSERT_TRUE(WaitUntil([&] { return second.HasPayload("last"); }));
  ASSERT_TRUE(WaitUntil([&] { return PendingCount(key, "g") == 0; }))
      << "the claim finds it gone and it leaves the pending list";
  EXPECT_FALSE(second.HasPayload("old"));
}

}  // namespace
}  // namespace mpim::bus::testing
