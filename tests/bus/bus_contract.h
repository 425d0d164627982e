// The bus's contract (bus/bus.h), as a suite every engine instantiates:
// INSTANTIATE_TEST_SUITE_P(Name, BusContract, testing::Values(BusFactory{"name", make})).
// `make` returns a fresh bus whose streams keep kContractMaxLen entries and
// whose names no other test sees (a Redis engine: a key prefix per test).
// Everything is awaited with deadlines, never with sleeps as assertions.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bus/bus.h"
#include "core/status.h"

namespace mpim::bus::testing {

inline constexpr int64_t kContractMaxLen = 200;

struct BusFactory {
  std::string name;
  std::function<std::unique_ptr<Bus>()> make;
};
inline void PrintTo(const BusFactory& f, std::ostream* os) { *os << f.name; }

// Polls `done` until it holds or `deadline` passes; whether it held.
bool WaitUntil(const std::function<bool()>& done,
               std::chrono::milliseconds deadline = std::chrono::seconds(10));

// Calls and waits (10 s at most) for their callbacks.
core::Status PublishNow(Bus& bus, const std::string& topic, const std::string& payload);
core::StatusOr<std::string> AppendNow(Bus& bus, const std::string& stream,
                                      const std::string& payload);
core::Status AckNow(Bus& bus, const std::string& stream, const std::string& group,
                    std::vector<std::string> ids);

// What a topic handler received, thread-safe.
class Inbox {
 public:
  Bus::TopicHandler Handler();
  std::vector<std::string> Got() const;
  size_t size() const;
  bool Has(std::string_view payload) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> got_;
};

// What a stream handler received, thread-safe; acks each batch if `ack`.
class EntryLog {
 public:
  // Acks through `bus` (stream, group) after recording, if given.
  Bus::StreamHandler Handler(Bus* ack_bus = nullptr, std::string stream = "",
                             std::string group = "");
  std::vector<Entry> Got() const;
  size_t size() const;
  bool HasPayload(std::string_view payload) const;
  uint32_t MaxDeliveries(std::string_view payload) const;

 private:
  mutable std::mutex mu_;
  std::vector<Entry> got_;
};

class BusContract : public ::testing::TestWithParam<BusFactory> {
 protected:
  void SetUp() override {
    bus_ = GetParam().make();
    ASSERT_NE(bus_, nullptr);
  }
  void TearDown() override { bus_.reset(); }

  std::unique_ptr<Bus> bus_;
};

}  // namespace mpim::bus::testing
