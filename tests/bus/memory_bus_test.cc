// The bus contract on the memory engine, and opening engines by name.
#include <gtest/gtest.h>

#include "bus/bus_contract.h"
#include "bus/memory_bus.h"
#include "bus/registry.h"
#include "core/config.h"

namespace mpim::bus::testing {
namespace {

INSTANTIATE_TEST_SUITE_P(Memory, BusContract,
                         ::testing::Values(BusFactory{"memory", [] {
                                                        MemoryBusOptions o;
                                                        o.stream_max_len = kContractMaxLen;
                                                        return std::make_unique<MemoryBus>(o);
                                                      }}),
                         [](const auto& info) { return info.param.name; });

TEST(MemoryBus, KeepsExactlyMaxLen) {
  MemoryBusOptions o;
  o.stream_max_len = 10;
  MemoryBus bus(o);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(AppendNow(bus, "s", std::to_string(i)).ok());
  EntryLog log;
  ConsumerOptions c;
  c.group = "g";
  c.consumer = "c";
  auto h = bus.Consume("s", c, log.Handler(&bus, "s", "g"));
  ASSERT_TRUE(WaitUntil([&] { return log.HasPayload("99"); }));
  EXPECT_EQ(log.size(), 10u);
  EXPECT_EQ(log.Got().front().payload, "90");
}

TEST(MemoryBus, HandlesMayOutliveTheBus) {
  Inbox inbox;
  auto bus = std::make_unique<MemoryBus>();
  auto sub = bus->Subscribe("t", inbox.Handler(), nullptr);
  auto con = bus->Consume("s", ConsumerOptions{"g", "c"}, [](std::vector<Entry>) {});
  bus.reset();
  sub.reset();
  con.reset();
}

TEST(OpenBus, OpensEachEngineByName) {
  EXPECT_EQ(BusEngines(), (std::vector<std::string>{"memory", "redis-pubsub", "redis-streams"}));
  core::Config config;
  config.bus.engine = "memory";
  auto memory = OpenBus(config);
  ASSERT_TRUE(memory.ok()) << memory.status();
  EXPECT_TRUE(PublishNow(**memory, "t", "x").ok());

  config.bus.engine = "kafka";
  EXPECT_EQ(OpenBus(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.bus.engine = "redis-streams";
  config.bus.redis_url = "";
  EXPECT_EQ(OpenBus(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.bus.redis_url = "http://nope";
  EXPECT_EQ(OpenBus(config).status().code(), absl::StatusCode::kInvalidArgument);
  config.bus.engine = "redis-pubsub";
  config.bus.redis_url = "redis://127.0.0.1:1";  // nothing there: opens, calls fail
  auto down = OpenBus(config);
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(PublishNow(**down, "t", "x").code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mpim::bus::testing
