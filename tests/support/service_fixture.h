// The message, group and conversation services wired as app/all_in_one.cc
// wires them (with the fan-out, the block and member caches, the friend
// service, presence, the search indexer and the delivered cursors they use),
// over a store and a Deliverer the test gives. The one place tests build
// services: a constructor change is made here, not in every suite.
//
// ServiceTest is the fixture for service unit tests: a fresh SQLite store in
// a temp dir behind a FaultStore (arm `faults()` to fail or delay calls), a
// FakeDeliverer recording what the services hand out, a ManualClock, and
// blocking helpers with deadlines.
//
// Not started: the task worker (fan-out jobs stay queued, for the test to
// inspect) and the delivered cursors' flusher (call cursors().Flush()).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/config.h"
#include "service/auth_service.h"
#include "service/conversation/delivered_cursors.h"
#include "service/conversation_service.h"
#include "service/fanout.h"
#include "service/friend_service.h"
#include "service/group/member_cache.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "store/store.h"
#include "support/await.h"
#include "support/fakes/fake_deliverer.h"
#include "support/fault_store.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::testing {

// The configuration the services read.
struct ServiceOptions {
  core::LimitsConfig limits;
  core::MessagesConfig messages;
  core::GroupsConfig groups;
};

class Services {
 public:
  Services(store::Store& store, service::Deliverer& deliverer, core::Clock& clock,
           const ServiceOptions& options = {});
  // Stops the indexer and writes the pending cursors (through the store).
  ~Services();
  Services(const Services&) = delete;
  Services& operator=(const Services&) = delete;

  service::MessageService& messages();
  service::GroupService& groups();
  service::ConversationService& conversations();
  service::FriendService& friends();
  service::Fanout& fanout();
  service::MemberCache& member_cache();
  service::DeliveredCursors& cursors();
  // How many fan-out jobs the fan-out reported durable (its on-job hook).
  int jobs_woken() const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

class ServiceTest : public SqliteStoreTest {
 protected:
  static constexpr int64_t kStartMs = 1'750'000'000'000;

  void SetUp() override;
  void TearDown() override;
  // Override to change the configuration (read once, in SetUp).
  virtual ServiceOptions Options() const { return {}; }

  FaultStore& faults() { return *faults_; }
  Services& services() { return *services_; }

  // A user logged in on a session of their own.
  service::Principal Login(int64_t user_id);
  // A new user, logged in.
  service::Principal SignUp(const std::string& name) { return Login(MakeUser(name)); }
  // A group of `owner` and `members`; its id (0 and a test failure if not).
  int64_t MakeGroup(int64_t owner, const std::vector<int64_t>& members, bool is_public = false);
  // A text message request to a user (or a group).
  static service::SendRequest Text(int64_t to, const std::string& client_msg_id,
                                   const std::string& text = "hi", bool to_group = false);
  // MessageService::Send, waited for (with a deadline).
  core::StatusOr<service::SendResult> Send(service::Principal who, service::SendRequest request);
  // The store's messages of a conversation after `after_seq`, read directly.
  std::vector<store::Message> Stored(const std::string& conv_id, int64_t after_seq = 0);
  // User ids in ascending order (recipient lists come in no set order).
  static std::vector<int64_t> Sorted(std::vector<int64_t> ids);

  std::unique_ptr<FaultStore> faults_;
  FakeDeliverer deliverer_;
  core::ManualClock clock_{kStartMs, 0};
  std::unique_ptr<Services> services_;

 private:
  int64_t next_session_ = 1;
};

// ServiceTest with three users signed up: alice, bob and carol.
class ThreeUsersTest : public ServiceTest {
 protected:
  void SetUp() override;

  service::Principal a_, b_, c_;
  int64_t alice_ = 0, bob_ = 0, carol_ = 0;
};

}  // namespace mpim::testing
