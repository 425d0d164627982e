// What the HTTP/1.1 push providers' tests (webhook, FCM) share: the io
// thread a provider runs on, a Send waited for with a deadline, and pushes.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "service/push/provider.h"

namespace mpim::service::push {

inline constexpr std::chrono::seconds kProviderWait{10};

// A provider's io thread (as the push registry runs one); the provider, in
// `provider`, is destroyed first, from the test's thread.
class HttpProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    provider.reset();
    work_.reset();
    thread_.join();
  }

  // Starts a Send; the future has its results.
  std::future<std::vector<Result>> Start(std::vector<Push> pushes) {
    auto promise = std::make_shared<std::promise<std::vector<Result>>>();
    auto future = promise->get_future();
    provider->Send(std::move(pushes), [promise](std::vector<Result> results) {
      promise->set_value(std::move(results));
    });
    return future;
  }

  // One Send, waited for; kDeadlineExceeded if `done` did not come.
  core::StatusOr<std::vector<Result>> SendAll(std::vector<Push> pushes) {
    auto future = Start(std::move(pushes));
    if (future.wait_for(kProviderWait) != std::future_status::ready) {
      return absl::DeadlineExceededError("done did not run");
    }
    return future.get();
  }

  // One push, waited for.
  Result SendOne(Push push) {
    auto results = SendAll({std::move(push)});
    if (!results.ok() || results->size() != 1) {
      ADD_FAILURE() << "no result: " << results.status();
      return Result{.detail = "no result"};
    }
    return (*results)[0];
  }

  // Destroys the provider while `inflight`'s Send waits: its `done` must
  // have run before the destructor returned, with `n` retries saying
  // `detail`.
  void DestroyAndExpectRetries(std::future<std::vector<Result>>& inflight, size_t n,
                               const std::string& detail) {
    provider.reset();
    ASSERT_EQ(inflight.wait_for(std::chrono::seconds(0)), std::future_status::ready);
    auto results = inflight.get();
    ASSERT_EQ(results.size(), n);
    for (const Result& result : results) {
      EXPECT_EQ(result.outcome, Outcome::kRetry);
      EXPECT_EQ(result.detail, detail);
    }
  }

  boost::asio::io_context io_{1};
  std::unique_ptr<Provider> provider;

 private:
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_{
      io_.get_executor()};
  std::thread thread_;
};

// A push to device 7 of user 1001 with `token`, message 555 of conversation
// p:1001:1002 from 1002, with a preview unless told otherwise.
inline Push TestPush(std::string delivery_id, std::string token, std::string platform,
                     std::optional<std::string> preview = "hello there") {
  return Push{.delivery_id = std::move(delivery_id),
              .device = {.device_id = 7,
                         .user_id = 1001,
                         .platform = std::move(platform),
                         .token = std::move(token)},
              .notification = {.conv_id = "p:1001:1002",
                               .seq = 42,
                               .msg_id = 555,
                               .from = 1002,
                               .preview = std::move(preview),
                               .badge = 3}};
}

}  // namespace mpim::service::push
