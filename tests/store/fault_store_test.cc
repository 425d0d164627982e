// testing::FaultStore (tests/support/fault_store.h) over a real SQLite
// store: unarmed calls pass through; armed ones fail without reaching the
// store, or answer late (after a delay, or when released) from another
// thread; Drain and Close deliver whatever is held.
#include "support/fault_store.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <future>
#include <thread>

#include "support/await.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::testing {
namespace {

using std::chrono::milliseconds;
using store::Call;

class FaultStoreTest : public SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    if (HasFatalFailure()) return;
    faults_ = std::make_unique<FaultStore>(*store_);
  }
  void TearDown() override {
    faults_.reset();
    SqliteStoreTest::TearDown();
  }

  core::StatusOr<store::User> CreateUser(const std::string& name) {
    return Await<store::User>([&](auto cb) {
      faults_->users().Create(store::NewUser{name, "h", name, ""}, std::move(cb));
    });
  }
  // Whether the real store holds the user.
  bool Exists(const std::string& name) {
    return Call(store_->users(), &store::UserStore::GetByUsername, name).ok();
  }

  // A probe: the status `call(callback)` answers with.
  template <typename T, typename Call>
  static std::function<core::Status()> StatusOf(Call call) {
    return
        [call] { return Await<T>([&](store::Callback<T> cb) { call(std::move(cb)); }).status(); };
  }

  std::unique_ptr<FaultStore> faults_;
};

TEST_F(FaultStoreTest, UnarmedCallsReachTheStoreAndAreCounted) {
  auto u = CreateUser("alice");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_TRUE(Exists("alice"));
  auto read = Await<store::User>([&](auto cb) { faults_->users().Get(u->user_id, std::move(cb)); });
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->username, "alice");
  EXPECT_EQ(faults_->Calls("users.Create"), 1);
  EXPECT_EQ(faults_->Calls("users.Get"), 1);
  EXPECT_EQ(faults_->Calls("users.GetMany"), 0);
}

TEST_F(FaultStoreTest, FailNextFailsThatManyCallsFromAnotherThreadWithoutWriting) {
  faults_->FailNext("users.Create", 2);
  const std::thread::id caller = std::this_thread::get_id();
  for (const char* name : {"a", "b"}) {
    std::promise<std::thread::id> where;
    auto r = Await<store::User>([&](auto cb) {
      faults_->users().Create(store::NewUser{name, "h", name, ""},
                              [&where, cb = std::move(cb)](core::StatusOr<store::User> u) mutable {
                                where.set_value(std::this_thread::get_id());
                                std::move(cb)(std::move(u));
                              });
    });
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << name;
    EXPECT_NE(where.get_future().get(), caller) << "an injected failure must not complete inline";
    EXPECT_FALSE(Exists(name)) << "a failed call must not reach the store";
  }
  ASSERT_TRUE(CreateUser("c").ok()) << "only the next two calls fail";
  EXPECT_TRUE(Exists("c"));
  EXPECT_EQ(faults_->Calls("users.Create"), 3);
}

TEST_F(FaultStoreTest, FailAlwaysUsesTheChosenStatusUntilDisarmed) {
  faults_->FailAlways("messages.Get", absl::InternalError("boom"));
  for (int i = 0; i < 3; ++i) {
    auto m = Await<store::Message>([&](auto cb) { faults_->messages().Get(42, std::move(cb)); });
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInternal);
    EXPECT_EQ(m.status().message(), "boom");
  }
  faults_->Disarm("messages.Get");
  auto m = Await<store::Message>([&](auto cb) { faults_->messages().Get(42, std::move(cb)); });
  EXPECT_EQ(m.status().code(), absl::StatusCode::kNotFound) << "the real store's answer";
}

TEST_F(FaultStoreTest, AHeldCallIsMadeAtOnceAndAnsweredOnRelease) {
  faults_->HoldNext("users.Create");
  auto pending = store::Begin<store::User>([&](auto cb) {
    faults_->users().Create(store::NewUser{"held", "h", "held", ""}, std::move(cb));
  });
  ASSERT_TRUE(faults_->WaitHeld("users.Create", 1, milliseconds(5000)));
  EXPECT_TRUE(Exists("held")) << "the call reached the store before the answer";
  EXPECT_EQ(pending.wait_for(milliseconds(50)), std::future_status::timeout);
  EXPECT_EQ(faults_->Release("users.Create"), 1);
  ASSERT_EQ(pending.wait_for(milliseconds(kAwaitTimeout)), std::future_status::ready);
  auto u = pending.get();
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->username, "held");
  EXPECT_EQ(faults_->Release("users.Create"), 0);
}

TEST_F(FaultStoreTest, ADelayedCallIsAnsweredAfterTheDelay) {
  auto u = CreateUser("slow");
  ASSERT_TRUE(u.ok());
  faults_->DelayNext("users.Get", milliseconds(300));
  auto start = std::chrono::steady_clock::now();
  auto read = Await<store::User>([&](auto cb) { faults_->users().Get(u->user_id, std::move(cb)); });
  EXPECT_TRUE(read.ok()) << read.status();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(300));
}

TEST_F(FaultStoreTest, AFailureCanBeHeldToo) {
  faults_->Arm("groups.Get", FaultStore::Fault{absl::UnavailableError("down"), 1, milliseconds(0),
                                               /*hold=*/true});
  auto pending =
      store::Begin<store::Group>([&](auto cb) { faults_->groups().Get(1001, std::move(cb)); });
  ASSERT_TRUE(faults_->WaitHeld("groups.Get", 1, milliseconds(5000)));
  EXPECT_EQ(faults_->Release("groups.Get"), 1);
  ASSERT_EQ(pending.wait_for(milliseconds(kAwaitTimeout)), std::future_status::ready);
  EXPECT_EQ(pending.get().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(FaultStoreTest, CloseDeliversHeldResultsBeforeClosingTheStore) {
  faults_->HoldNext("users.Create", FaultStore::kEveryCall);
  std::atomic<int> answered{0};
  for (const char* name : {"x", "y"}) {
    faults_->users().Create(store::NewUser{name, "h", name, ""},
                            [&answered](core::StatusOr<store::User> u) {
                              if (u.ok()) ++answered;
                            });
  }
  ASSERT_TRUE(faults_->WaitHeld("users.Create", 2, milliseconds(5000)));
  EXPECT_EQ(answered.load(), 0);
  faults_->Close();
  EXPECT_EQ(answered.load(), 2);
  // Closed: later calls fail inline, as the real store's do.
  EXPECT_EQ(CreateUser("z").status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(FaultStoreTest, EverySubStoreAndPingIsInterceptedUnderItsName) {
  const std::vector<std::pair<std::string, std::function<core::Status()>>> probes = {
      {"users.Get",
       StatusOf<store::User>([&](auto cb) { faults_->users().Get(1, std::move(cb)); })},
      {"sessions.Get",
       StatusOf<store::Session>([&](auto cb) { faults_->sessions().Get(1, std::move(cb)); })},
      {"friends.IsBlocked",
       StatusOf<bool>([&](auto cb) { faults_->friends().IsBlocked(1, 2, std::move(cb)); })},
      {"groups.Get",
       StatusOf<store::Group>([&](auto cb) { faults_->groups().Get(1, std::move(cb)); })},
      {"conversations.Get", StatusOf<store::Conversation>([&](auto cb) {
         faults_->conversations().Get("p:1:2", std::move(cb));
       })},
      {"messages.Get",
       StatusOf<store::Message>([&](auto cb) { faults_->messages().Get(1, std::move(cb)); })},
      {"search.Index",
       StatusOf<int64_t>([&](auto cb) { faults_->search().Index({}, std::move(cb)); })},
      {"jobs.List", StatusOf<store::Page<store::Job>>(
                        [&](auto cb) { faults_->jobs().ListDead(0, 10, std::move(cb)); })},
      {"store.Ping", [&] { return AwaitStatus([&](auto cb) { faults_->Ping(std::move(cb)); }); }},
  };
  for (const auto& [name, probe] : probes) {
    faults_->FailNext(name, 1, absl::ResourceExhaustedError("injected"));
    EXPECT_EQ(probe().code(), absl::StatusCode::kResourceExhausted) << name;
    EXPECT_NE(probe().code(), absl::StatusCode::kResourceExhausted) << name << " (disarmed)";
    EXPECT_EQ(faults_->Calls(name), 2) << name;
  }
}

TEST_F(FaultStoreTest, ArmingAMisspeltMethodFailsTheTest) {
  EXPECT_NONFATAL_FAILURE(faults_->FailNext("messages.Apend"), "no store method");
  EXPECT_NONFATAL_FAILURE(faults_->HoldNext("Append"), "no store method");
}

}  // namespace
}  // namespace mpim::testing
