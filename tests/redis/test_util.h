// What the Redis cache suites share: a client on a test server, waiting for
// a condition with a deadline, a key prefix per test.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "redis/client.h"
#include "support/await.h"
#include "support/redis_server.h"

namespace mpim::redis {

using mpim::testing::Await;
using mpim::testing::RedisServer;

// Polls `done` until it holds or `deadline` passes; whether it held.
inline bool WaitUntil(const std::function<bool()>& done,
                      std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll interval
  }
  return true;
}

// A client of `server` with short timeouts, connected (or a test failure).
inline std::unique_ptr<Client> Connect(
    const RedisServer& server, std::chrono::milliseconds timeout = std::chrono::milliseconds(1000),
    std::string url = "") {
  ClientOptions options;
  options.url = url.empty() ? server.Url() : url;
  options.timeout = timeout;
  options.reconnect_min = std::chrono::milliseconds(10);
  options.reconnect_max = std::chrono::milliseconds(200);
  options.ping_interval = std::chrono::milliseconds(100);
  auto client = Client::Start(options);
  if (!client.ok()) {
    ADD_FAILURE() << client.status();
    return nullptr;
  }
  EXPECT_TRUE(WaitUntil([&] { return (*client)->connected(); })) << "never connected";
  return std::move(*client);
}

// Runs one command and waits for its reply.
inline core::StatusOr<Reply> Call(Client& client, std::vector<std::string> args) {
  return Await<Reply>([&](auto cb) { client.Command(std::move(args), std::move(cb)); });
}

// A prefix of keys no other test uses: "t:<suite>.<test>:".
inline std::string TestPrefix() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string("t:") + info->test_suite_name() + "." + info->name() + ":";
}

}  // namespace mpim::redis
