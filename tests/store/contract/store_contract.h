// The store contract suite: every engine must pass it. An engine's test
// binary compiles the contract sources (tests/store/contract/*.cc) and
// defines AllStoreFactories(), returning factories that open a fresh, empty
// store of that engine (see sqlite_store_contract_test.cc); every contract
// test then runs once per factory.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "store/blocking.h"
#include "store/store.h"
#include "support/temp_dir.h"

namespace mpim::store::testing {

using ::mpim::testing::TempDir;

struct StoreFactory {
  std::string name;
  // Opens a fresh, empty store keeping its files (if any) under `dir`, with
  // `now` as its clock.
  std::function<core::StatusOr<std::unique_ptr<Store>>(const std::string& dir, NowMsFn now)> open;
};

inline void PrintTo(const StoreFactory& factory, std::ostream* os) { *os << factory.name; }

// Defined once per engine test binary.
std::vector<StoreFactory> AllStoreFactories();

inline std::string StoreFactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

class StoreContractTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  static constexpr int64_t kStartMs = 1'700'000'000'000;

  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    auto store = GetParam().open(dir_.path(), [this] { return now_ms_.load(); });
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override {
    if (store_) store_->Close();
  }

  void AdvanceMs(int64_t ms) { now_ms_ += ms; }
  int64_t NowMs() const { return now_ms_.load(); }

  Store& store() { return *store_; }

  // A new user named `name`; its id (0 and a test failure if that failed).
  int64_t MakeUser(const std::string& name) {
    auto user = Call(store_->users(), &UserStore::Create, NewUser{name, "hash-" + name, name, ""});
    EXPECT_TRUE(user.ok()) << user.status();
    return user.ok() ? user->user_id : 0;
  }

  // A text message request with a fresh msg_id.
  AppendRequest TextMessage(const std::string& conv_id, int64_t sender, int64_t recipient,
                            const std::string& text, const std::string& client_msg_id) {
    AppendRequest r;
    r.msg_id = NextMsgId();
    r.conv_id = conv_id;
    r.sender = sender;
    r.recipient = recipient;
    r.type = "text";
    r.body = "{\"text\":\"" + text + "\"}";
    r.ts = NowMs();
    r.client_msg_id = client_msg_id;
    return r;
  }

  core::StatusOr<AppendResult> Append(const AppendRequest& r) {
    return Call(store_->messages(), &MessageStore::Append, r);
  }

  // prefix + decimal i. (Not `"u" + std::to_string(i)`: g++ 12 warns on
  // that falsely, -Wrestrict.)
  static std::string Numbered(std::string prefix, int64_t i) {
    prefix.append(std::to_string(i));
    return prefix;
  }

  int64_t NextMsgId() { return next_msg_id_.fetch_add(1); }

  TempDir dir_;
  std::atomic<int64_t> now_ms_{kStartMs};
  std::atomic<int64_t> next_msg_id_{7'000'000'000'000'000'001};
  std::unique_ptr<Store> store_;
};

}  // namespace mpim::store::testing
