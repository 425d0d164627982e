#include "support/service_fixture.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>

#include "core/snowflake.h"
#include "route/local_presence.h"
#include "route/registry.h"
#include "service/conversation/conversation_service_impl.h"
#include "service/friend/block_cache.h"
#include "service/friend/friend_service_impl.h"
#include "service/group/group_service_impl.h"
#include "service/message/message_service_impl.h"
#include "service/search/indexer.h"
#include "store/blocking.h"
#include "store/conv_id.h"

namespace mpim::testing {

// Built in the order of app/parts.cc (OpenLogic); destroyed in reverse.
struct Services::Parts {
  Parts(store::Store& store, service::Deliverer& deliverer, core::Clock& clock,
        const ServiceOptions& options)
      : options(options),
        ids(std::move(core::SnowflakeGenerator::Create(1, clock)).value()),
        presence(route::LastSeenInStore(store.users()),
                 [](const std::vector<route::ConnId>&, int64_t, bool, int64_t) {}),
        blocks(store.friends()),
        friends(store, page_max(), &presence, &blocks),
        member_cache(store, options.groups.fanout_threshold),
        fanout(store, deliverer, member_cache),
        indexer(store),
        messages(options.limits, options.messages, store, blocks, fanout, &indexer, *ids, clock),
        cursors(store.conversations(), std::chrono::milliseconds(200)),
        conversations(options.limits, store, deliverer, presence, fanout, cursors),
        groups(options.limits, store, messages, deliverer, member_cache, &presence) {
    fanout.SetOnJob([this] { ++jobs_woken; });
    indexer.Start();
  }
  ~Parts() {
    indexer.Stop();
    cursors.Stop();
  }
  int page_max() const { return static_cast<int>(options.limits.page_max); }

  const ServiceOptions options;
  std::unique_ptr<core::SnowflakeGenerator> ids;
  route::LocalPresence presence;
  service::BlockCache blocks;
  service::FriendServiceImpl friends;
  service::MemberCache member_cache;
  service::Fanout fanout;
  service::Indexer indexer;
  service::MessageServiceImpl messages;
  service::DeliveredCursors cursors;
  service::ConversationServiceImpl conversations;
  service::GroupServiceImpl groups;
  std::atomic<int> jobs_woken{0};
};

Services::Services(store::Store& store, service::Deliverer& deliverer, core::Clock& clock,
                   const ServiceOptions& options)
    : parts_(std::make_unique<Parts>(store, deliverer, clock, options)) {}

Services::~Services() = default;

service::MessageService& Services::messages() { return parts_->messages; }
service::GroupService& Services::groups() { return parts_->groups; }
service::ConversationService& Services::conversations() { return parts_->conversations; }
service::FriendService& Services::friends() { return parts_->friends; }
service::Fanout& Services::fanout() { return parts_->fanout; }
service::MemberCache& Services::member_cache() { return parts_->member_cache; }
service::DeliveredCursors& Services::cursors() { return parts_->cursors; }
int Services::jobs_woken() const { return parts_->jobs_woken.load(); }

void ServiceTest::SetUp() {
  SqliteStoreTest::SetUp();
  if (HasFatalFailure()) return;
  faults_ = std::make_unique<FaultStore>(*store_);
  services_ = std::make_unique<Services>(*faults_, deliverer_, clock_, Options());
}

void ServiceTest::TearDown() {
  // Every result still held or delayed is delivered, then the store runs
  // what is queued to completion (the services are still there to take the
  // callbacks), then the services go.
  if (faults_) faults_->Close();
  services_.reset();
  faults_.reset();
  SqliteStoreTest::TearDown();
}

service::Principal ServiceTest::Login(int64_t user_id) {
  store::NewSession session{user_id * 1000 + next_session_++, user_id, "test", "refresh-hash",
                            kStartMs + 3'600'000};
  auto created = store::Call(store_->sessions(), &store::SessionStore::Create, session);
  EXPECT_TRUE(created.ok()) << created.status();
  return service::Principal{user_id, session.session_id};
}

int64_t ServiceTest::MakeGroup(int64_t owner, const std::vector<int64_t>& members, bool is_public) {
  auto g = store::Call(store_->groups(), &store::GroupStore::Create,
                       store::NewGroup{"group", "", owner, is_public, members});
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? g->group_id : 0;
}

service::SendRequest ServiceTest::Text(int64_t to, const std::string& client_msg_id,
                                       const std::string& text, bool to_group) {
  service::SendRequest r;
  r.to_group = to_group;
  r.to_id = to;
  r.client_msg_id = client_msg_id;
  r.body = "{\"text\":\"" + text + "\"}";
  return r;
}

core::StatusOr<service::SendResult> ServiceTest::Send(service::Principal who,
                                                      service::SendRequest request) {
  return Await<service::SendResult>([&](auto cb) {
    services_->messages().Send(who, std::move(request), std::move(cb), nullptr);
  });
}

std::vector<store::Message> ServiceTest::Stored(const std::string& conv_id, int64_t after_seq) {
  auto page = store::Call(store_->messages(), &store::MessageStore::Read, conv_id,
                          store::RangeQuery{after_seq, std::nullopt, store::kMaxPageLimit});
  EXPECT_TRUE(page.ok()) << page.status();
  return page.ok() ? page->items : std::vector<store::Message>{};
}

std::vector<int64_t> ServiceTest::Sorted(std::vector<int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

void ThreeUsersTest::SetUp() {
  ServiceTest::SetUp();
  if (HasFatalFailure()) return;
  a_ = SignUp("alice");
  b_ = SignUp("bob");
  c_ = SignUp("carol");
  alice_ = a_.user_id;
  bob_ = b_.user_id;
  carol_ = c_.user_id;
}

}  // namespace mpim::testing
