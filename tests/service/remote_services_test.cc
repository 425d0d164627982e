// The services across gRPC (service/remote/): a gateway's Remote* services
// call a real rpc::Server serving LogicServer, which calls the real
// services on a SQLite store. What a client gets through the network is
// what it gets from the services directly: values field for field, and
// errors code for code.
#include "service/remote/remote_services.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "core/metrics.h"
#include "core/worker_pool.h"
#include "route/memory_route_table.h"
#include "rpc/server.h"
#include "service/auth/auth_service_impl.h"
#include "service/push/device_service_impl.h"
#include "service/remote/convert.h"
#include "service/remote/logic_server.h"
#include "service/task/admin_service_impl.h"
#include "service/user/user_service_impl.h"
#include "store/conv_id.h"
#include "support/await.h"
#include "support/fakes/fake_discovery.h"
#include "support/service_fixture.h"

namespace mpim {
namespace {

using service::Principal;
using testing::Await;
using testing::AwaitStatus;

core::AuthConfig FastAuth() {
  core::AuthConfig c;
  c.argon2_opslimit = 1;
  c.argon2_memlimit_kib = 8;
  return c;
}

service::auth::TokenKeys Keys() {
  return {service::auth::TokenKey{"k1", std::string(32, 'k')}, std::nullopt};
}

// Parameter: rpc.batch_max_items (0: one call per send or ack); coalesced,
// acks linger as the gateway's default lets them (rpc.ack_linger_ms).
class RemoteServicesTest : public testing::ThreeUsersTest,
                           public ::testing::WithParamInterface<size_t> {
 protected:
  service::remote::Coalescing Coalesced() const {
    return {.max_items = GetParam(),
            .ack_linger = std::chrono::milliseconds(GetParam() > 0 ? 20 : 0)};
  }
  void SetUp() override {
    ThreeUsersTest::SetUp();
    users_ = std::make_unique<service::UserServiceImpl>(*faults_, 200, nullptr);
    ids_ = std::move(core::SnowflakeGenerator::Create(7, clock_)).value();
    auth_ = std::make_unique<service::auth::AuthServiceImpl>(FastAuth(), Keys(), *faults_, pool_,
                                                             *ids_, clock_);
    auto server = rpc::Server::Create({}, core::SystemClock(), metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    handlers_ = std::make_unique<service::remote::LogicServer>(*server_);
    ASSERT_TRUE(server_->Start().ok());
    devices_ = std::make_unique<service::DeviceServiceImpl>(*faults_, *ids_);
    admin_ = std::make_unique<service::AdminServiceImpl>(*faults_, routes_);
    handlers_->SetServices({.auth = auth_.get(),
                            .users = users_.get(),
                            .devices = devices_.get(),
                            .admin = admin_.get(),
                            .friends = &services().friends(),
                            .groups = &services().groups(),
                            .conversations = &services().conversations(),
                            .messages = &services().messages(),
                            .store = faults_.get()});
    discovery_.Set({{.name = "logic-1", .role = "logic", .address = server_->address()}});
    rpc::ClientConfig config;
    config.role = "logic";
    auto client = rpc::Client::Create(config, discovery_, core::SystemClock(), metrics_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
    remote_auth_ =
        std::make_unique<service::remote::RemoteAuthService>(*client_, FastAuth(), Keys(), clock_);
    remote_users_ = std::make_unique<service::remote::RemoteUserService>(*client_);
    remote_friends_ = std::make_unique<service::remote::RemoteFriendService>(*client_);
    remote_groups_ = std::make_unique<service::remote::RemoteGroupService>(*client_);
    remote_convs_ = std::make_unique<service::remote::RemoteConversationService>(
        *client_, Coalesced(), metrics_);
    remote_messages_ =
        std::make_unique<service::remote::RemoteMessageService>(*client_, Coalesced(), metrics_);
    remote_devices_ = std::make_unique<service::remote::RemoteDeviceService>(*client_);
    remote_admin_ = std::make_unique<service::remote::RemoteAdminService>(*client_);
  }

  void TearDown() override {
    client_.reset();
    server_->Shutdown();
    pool_.Shutdown();
    ThreeUsersTest::TearDown();
  }

  core::StatusOr<service::SendResult> RemoteSend(Principal who, service::SendRequest request) {
    bool ordered = false;
    auto sent = Await<service::SendResult>([&](auto cb) {
      remote_messages_->Send(who, std::move(request), std::move(cb), [&] { ordered = true; });
    });
    // Unary: `ordered` runs with a successful reply, never without one.
    EXPECT_EQ(ordered, sent.ok());
    return sent;
  }

  core::MetricsRegistry metrics_;
  core::WorkerPool pool_{"hash", 1};
  std::unique_ptr<core::SnowflakeGenerator> ids_;
  std::unique_ptr<service::UserServiceImpl> users_;
  std::unique_ptr<service::auth::AuthServiceImpl> auth_;
  std::unique_ptr<rpc::Server> server_;
  std::unique_ptr<service::remote::LogicServer> handlers_;
  testing::FakeDiscovery discovery_;
  std::unique_ptr<rpc::Client> client_;
  std::unique_ptr<service::remote::RemoteAuthService> remote_auth_;
  std::unique_ptr<service::remote::RemoteUserService> remote_users_;
  std::unique_ptr<service::remote::RemoteFriendService> remote_friends_;
  std::unique_ptr<service::remote::RemoteGroupService> remote_groups_;
  std::unique_ptr<service::remote::RemoteConversationService> remote_convs_;
  std::unique_ptr<service::remote::RemoteMessageService> remote_messages_;
  route::MemoryRouteTable routes_;
  std::unique_ptr<service::DeviceServiceImpl> devices_;
  std::unique_ptr<service::AdminServiceImpl> admin_;
  std::unique_ptr<service::remote::RemoteDeviceService> remote_devices_;
  std::unique_ptr<service::remote::RemoteAdminService> remote_admin_;
};

TEST_P(RemoteServicesTest, AccountsRoundTripAndTokensAreCheckedOnTheCallersSide) {
  auto id = Await<int64_t>([&](auto cb) {
    remote_auth_->Register({"dave", "correct horse battery", "Dave \xf0\x9f\x98\x80", "127.0.0.1"},
                           std::move(cb));
  });
  ASSERT_TRUE(id.ok()) << id.status();
  auto again = Await<int64_t>([&](auto cb) {
    remote_auth_->Register({"dave", "correct horse battery", "", "127.0.0.1"}, std::move(cb));
  });
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);

  auto bad = Await<service::LoginResult>([&](auto cb) {
    remote_auth_->Login({"dave", "wrong password!!", "phone", "127.0.0.1"}, std::move(cb));
  });
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  auto login = Await<service::LoginResult>([&](auto cb) {
    remote_auth_->Login({"dave", "correct horse battery", "phone", "127.0.0.1"}, std::move(cb));
  });
  ASSERT_TRUE(login.ok()) << login.status();
  EXPECT_EQ(login->user_id, *id);
  // The token the logic node signed passes the gateway's own check.
  auto principal = remote_auth_->Authenticate(login->tokens.access_token);
  ASSERT_TRUE(principal.ok()) << principal.status();
  EXPECT_EQ(principal->user_id, *id);
  EXPECT_EQ(principal->session_id, login->session_id);

  auto refreshed = Await<service::TokenPair>(
      [&](auto cb) { remote_auth_->Refresh(login->tokens.refresh_token, std::move(cb)); });
  ASSERT_TRUE(refreshed.ok()) << refreshed.status();
  EXPECT_NE(refreshed->refresh_token, login->tokens.refresh_token);

  // Logout: refused here at once, and a gateway starting later learns it
  // from the logic node.
  ASSERT_TRUE(AwaitStatus([&](auto cb) { remote_auth_->Logout(*principal, std::move(cb)); }).ok());
  EXPECT_EQ(remote_auth_->Authenticate(refreshed->access_token).status().code(),
            absl::StatusCode::kUnauthenticated);
  service::remote::RemoteAuthService fresh(*client_, FastAuth(), Keys(), clock_);
  EXPECT_TRUE(fresh.Authenticate(refreshed->access_token).ok());
  ASSERT_TRUE(fresh.LoadRevocations().ok());
  EXPECT_EQ(fresh.Authenticate(refreshed->access_token).status().message(), "session revoked");
}

TEST_P(RemoteServicesTest, MessagesAndConversationsMatchTheLocalServices) {
  const std::string conv = store::PrivateConvId(alice_, bob_);
  auto first = RemoteSend(a_, Text(bob_, "c1", "hello \xf0\x9f\x98\x80"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->conv_id, conv);
  EXPECT_EQ(first->seq, 1);
  // A retried send (same client_msg_id) answers the first result.
  auto dup = RemoteSend(a_, Text(bob_, "c1", "hello \xf0\x9f\x98\x80"));
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(dup->msg_id, first->msg_id);
  ASSERT_TRUE(RemoteSend(b_, Text(alice_, "c2", "back")).ok());

  auto remote = Await<service::MessagePage>([&](auto cb) {
    remote_convs_->History(b_, conv, std::nullopt, std::nullopt, 50, std::move(cb));
  });
  auto local = Await<service::MessagePage>([&](auto cb) {
    services().conversations().History(b_, conv, std::nullopt, std::nullopt, 50, std::move(cb));
  });
  ASSERT_TRUE(remote.ok() && local.ok());
  ASSERT_EQ(remote->messages.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const store::Message& r = remote->messages[i];
    const store::Message& l = local->messages[i];
    EXPECT_EQ(std::tie(r.msg_id, r.conv_id, r.seq, r.sender, r.recipient, r.type, r.body, r.ts,
                       r.client_msg_id, r.recalled),
              std::tie(l.msg_id, l.conv_id, l.seq, l.sender, l.recipient, l.type, l.body, l.ts,
                       l.client_msg_id, l.recalled));
  }
  EXPECT_EQ(remote->has_more, local->has_more);

  auto synced = Await<service::MessagePage>(
      [&](auto cb) { remote_convs_->Sync(b_, conv, 1, 50, std::move(cb)); });
  ASSERT_TRUE(synced.ok());
  ASSERT_EQ(synced->messages.size(), 1u);
  EXPECT_EQ(synced->messages[0].seq, 2);

  auto read = Await<int64_t>([&](auto cb) {
    remote_convs_->Read(b_, conv, 2, route::ConnId{3, 44}, std::move(cb));
  });
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, 2);
  ASSERT_TRUE(AwaitStatus([&](auto cb) { remote_convs_->Ack(b_, conv, 2, std::move(cb)); }).ok());
  auto start = Await<int64_t>([&](auto cb) { remote_convs_->StartSeq(b_, conv, std::move(cb)); });
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(*start, 2);
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                remote_convs_->Update(b_, conv, true, std::nullopt, std::move(cb));
              }).ok());
  auto list = Await<std::vector<service::ConversationView>>(
      [&](auto cb) { remote_convs_->List(b_, 20, std::move(cb)); });
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  const service::ConversationView& view = list->front();
  EXPECT_EQ(view.conv.conversation.conv_id, conv);
  EXPECT_EQ(view.conv.conversation.last_seq, 2);
  EXPECT_EQ(view.conv.read_seq, 2);
  EXPECT_TRUE(view.conv.muted);
  ASSERT_TRUE(view.conv.last_message.has_value());
  EXPECT_EQ(view.conv.last_message->body, R"({"text":"back"})");
  ASSERT_TRUE(view.peer.has_value());
  EXPECT_EQ(view.peer->user_id, alice_);
  EXPECT_FALSE(view.group.has_value());

  auto recalled = Await<store::Message>(
      [&](auto cb) { remote_messages_->Recall(a_, first->msg_id, std::move(cb)); });
  ASSERT_TRUE(recalled.ok()) << recalled.status();
  EXPECT_TRUE(recalled->recalled);
}

// Many sends and acks at once from many "sessions": they leave in
// SendMany/AckMany calls of several items (mpim_rpc_batch_items), and each
// item gets its own answer: results, seqs in order per conversation,
// errors with their codes and messages, acks kept as cursors.
TEST_P(RemoteServicesTest, ConcurrentSendsAndAcksCoalesceAndEachGetsItsOwnAnswer) {
  constexpr int kSends = 80;  // within the sender's burst allowance
  struct Answer {
    std::mutex mu;
    std::condition_variable cv;
    int left = 0;
    std::vector<core::StatusOr<service::SendResult>> results;
  } answer;
  answer.left = kSends;
  answer.results.resize(kSends, absl::UnknownError("unanswered"));
  for (int i = 0; i < kSends; ++i) {
    // Every tenth goes to nobody: not_found, in the middle of a batch.
    int64_t to = i % 10 == 9 ? 999999 : (i % 2 ? bob_ : carol_);
    remote_messages_->Send(
        a_, Text(to, "many-" + std::to_string(i)),
        [&answer, i](core::StatusOr<service::SendResult> r) {
          std::lock_guard lock(answer.mu);
          answer.results[static_cast<size_t>(i)] = std::move(r);
          if (--answer.left == 0) answer.cv.notify_all();
        },
        nullptr);
  }
  {
    std::unique_lock lock(answer.mu);
    ASSERT_TRUE(
        answer.cv.wait_for(lock, std::chrono::seconds(30), [&] { return answer.left == 0; }));
  }
  std::map<std::string, std::vector<int64_t>> seqs;
  int limited = 0;
  for (int i = 0; i < kSends; ++i) {
    const auto& r = answer.results[static_cast<size_t>(i)];
    if (!r.ok() && r.status().code() == absl::StatusCode::kResourceExhausted) {
      // The sender's rate limit, with its payload, as a single call gets it.
      EXPECT_TRUE(core::RetryAfterMs(r.status()).has_value()) << i;
      ++limited;
      continue;
    }
    if (i % 10 == 9) {
      EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound) << i;
      continue;
    }
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    seqs[r->conv_id].push_back(r->seq);
  }
  EXPECT_EQ(limited, 0);
  ASSERT_EQ(seqs.size(), 2u);
  for (auto& [conv, list] : seqs) {
    std::sort(list.begin(), list.end());
    for (size_t k = 0; k < list.size(); ++k) {
      ASSERT_EQ(list[k], static_cast<int64_t>(k) + 1) << conv << ": one seq per send, no gap";
    }
  }
  auto batches =
      metrics_.Histogram("mpim_rpc_batch_items", "", {"method"}, {1, 2, 4, 8, 16, 32, 64, 128, 256})
          .With({"SendMany"})
          .Collect();
  if (GetParam() > 0) {
    EXPECT_GT(batches.sum, 0);
    EXPECT_LT(batches.count, static_cast<uint64_t>(kSends)) << "fewer calls than sends";
  } else {
    EXPECT_EQ(batches.count, 0u) << "no coalescing: one call each";
  }

  // Acks: concurrent, cumulative; one of them malformed (its own error).
  const std::string conv = store::PrivateConvId(alice_, bob_);
  std::atomic<int> acks_left{50};
  std::atomic<int> acks_failed{0};
  for (int seq = 1; seq <= 50; ++seq) {
    remote_convs_->Ack(b_, seq == 25 ? "not a conv" : conv, seq, [&](core::Status st) {
      if (!st.ok()) {
        EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
        ++acks_failed;
      }
      --acks_left;
    });
  }
  for (int i = 0; i < 3000 && acks_left > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(acks_left, 0);
  EXPECT_EQ(acks_failed, 1);
  auto ack_batches =
      metrics_.Histogram("mpim_rpc_batch_items", "", {"method"}, {1, 2, 4, 8, 16, 32, 64, 128, 256})
          .With({"AckMany"})
          .Collect();
  if (GetParam() > 0) {
    EXPECT_LE(ack_batches.count, 10u) << "acks linger and leave together";
    EXPECT_EQ(ack_batches.sum, 50);
  }
  auto start = Await<int64_t>([&](auto cb) { remote_convs_->StartSeq(b_, conv, std::move(cb)); });
  ASSERT_TRUE(start.ok());
  EXPECT_EQ(*start, 50) << "the highest ack is the cursor";
}

TEST_P(RemoteServicesTest, ErrorsKeepTheirCodes) {
  // Not a member: permission_denied, through the network as from the service.
  auto denied = Await<service::MessagePage>([&](auto cb) {
    remote_convs_->Sync(c_, store::PrivateConvId(alice_, bob_), 0, 10, std::move(cb));
  });
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kPermissionDenied);
  // A malformed conversation id: the code the service gives, and its text.
  auto malformed = Await<service::MessagePage>(
      [&](auto cb) { remote_convs_->Sync(a_, "not a conv", 0, 10, std::move(cb)); });
  auto malformed_local = Await<service::MessagePage>(
      [&](auto cb) { services().conversations().Sync(a_, "not a conv", 0, 10, std::move(cb)); });
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(malformed.status(), malformed_local.status());
  auto nobody =
      Await<service::UserProfile>([&](auto cb) { remote_users_->Get(999999, std::move(cb)); });
  EXPECT_EQ(nobody.status().code(), absl::StatusCode::kNotFound);
  auto to_nobody = RemoteSend(a_, Text(999999, "x1"));
  EXPECT_EQ(to_nobody.status().code(), absl::StatusCode::kNotFound);
  // A role out of range on the wire is refused, never read as another role.
  int64_t group = MakeGroup(alice_, {bob_});
  auto bad_role = Await<store::GroupMember>([&](auto cb) {
    remote_groups_->SetRole(a_, group, bob_, static_cast<store::GroupRole>(7), std::move(cb));
  });
  EXPECT_EQ(bad_role.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(RemoteServicesTest, GroupsFriendsAndUsers) {
  auto created = Await<store::Group>([&](auto cb) {
    remote_groups_->Create(a_, {"team \xe2\x9c\x93", {bob_}, false}, std::move(cb));
  });
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->name, "team \xe2\x9c\x93");
  EXPECT_EQ(created->conv_id, store::GroupConvId(created->group_id));
  auto added = Await<std::vector<int64_t>>(
      [&](auto cb) { remote_groups_->AddMembers(a_, created->group_id, {carol_}, std::move(cb)); });
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_EQ(*added, std::vector<int64_t>{carol_});
  auto promoted = Await<store::GroupMember>([&](auto cb) {
    remote_groups_->SetRole(a_, created->group_id, bob_, store::GroupRole::kAdmin, std::move(cb));
  });
  ASSERT_TRUE(promoted.ok()) << promoted.status();
  EXPECT_EQ(promoted->role, store::GroupRole::kAdmin);
  auto view = Await<service::GroupView>(
      [&](auto cb) { remote_groups_->Get(b_, created->group_id, std::move(cb)); });
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->group.member_count, 3);
  ASSERT_TRUE(view->role.has_value());
  EXPECT_EQ(*view->role, store::GroupRole::kAdmin);
  auto members = Await<service::MemberPage>(
      [&](auto cb) { remote_groups_->ListMembers(a_, created->group_id, 0, 10, std::move(cb)); });
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(members->members.size(), 3u);
  ASSERT_TRUE(AwaitStatus([&](auto cb) {
                remote_groups_->RemoveMember(a_, created->group_id, carol_, std::move(cb));
              }).ok());
  auto mine = Await<std::vector<service::GroupView>>(
      [&](auto cb) { remote_groups_->ListMine(c_, std::move(cb)); });
  ASSERT_TRUE(mine.ok());
  EXPECT_TRUE(mine->empty());

  auto asked = Await<service::FriendOutcome>(
      [&](auto cb) { remote_friends_->Request(alice_, bob_, std::move(cb)); });
  ASSERT_TRUE(asked.ok());
  EXPECT_EQ(*asked, service::FriendOutcome::kRequested);
  auto requests = Await<service::FriendRequests>(
      [&](auto cb) { remote_friends_->Requests(bob_, 10, std::move(cb)); });
  ASSERT_TRUE(requests.ok());
  ASSERT_EQ(requests->incoming.size(), 1u);
  EXPECT_EQ(requests->incoming[0].user.user_id, alice_);
  auto accepted = Await<service::FriendOutcome>(
      [&](auto cb) { remote_friends_->Request(bob_, alice_, std::move(cb)); });
  ASSERT_TRUE(accepted.ok());
  EXPECT_EQ(*accepted, service::FriendOutcome::kFriends);
  auto friends = Await<service::FriendPage>(
      [&](auto cb) { remote_friends_->List(alice_, 0, 10, std::move(cb)); });
  ASSERT_TRUE(friends.ok());
  ASSERT_EQ(friends->entries.size(), 1u);
  EXPECT_EQ(friends->entries[0].user.username, "bob");
  ASSERT_TRUE(
      AwaitStatus([&](auto cb) { remote_friends_->Block(carol_, alice_, std::move(cb)); }).ok());
  auto blocked = Await<service::FriendPage>(
      [&](auto cb) { remote_friends_->ListBlocked(carol_, 0, 10, std::move(cb)); });
  ASSERT_TRUE(blocked.ok());
  ASSERT_EQ(blocked->entries.size(), 1u);
  EXPECT_EQ(RemoteSend(a_, Text(carol_, "blk")).status().code(),
            absl::StatusCode::kPermissionDenied);

  auto updated = Await<service::UserProfile>([&](auto cb) {
    remote_users_->Update(alice_, {std::string("Alice \xf0\x9f\x98\x80"), std::nullopt},
                          std::move(cb));
  });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->display_name, "Alice \xf0\x9f\x98\x80");
  auto found =
      Await<service::UserPage>([&](auto cb) { remote_users_->Search("b", "", 10, std::move(cb)); });
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->users.size(), 1u);
  EXPECT_EQ(found->users[0].username, "bob");
}

TEST_P(RemoteServicesTest, ANodeStillStartingAnswersUnavailable) {
  auto server = rpc::Server::Create({}, core::SystemClock(), metrics_);
  ASSERT_TRUE(server.ok());
  service::remote::LogicServer handlers(**server);  // no SetServices
  ASSERT_TRUE((*server)->Start().ok());
  testing::FakeDiscovery discovery;
  discovery.Set({{.name = "logic-2", .role = "logic", .address = (*server)->address()}});
  rpc::ClientConfig config;
  config.role = "logic";
  config.max_attempts = 1;
  auto client = rpc::Client::Create(config, discovery, core::SystemClock(), metrics_);
  ASSERT_TRUE(client.ok());
  service::remote::RemoteUserService users(**client);
  auto got = Await<service::UserProfile>([&](auto cb) { users.Get(alice_, std::move(cb)); });
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  // What the client reads: one plain sentence, no internal detail.
  EXPECT_EQ(got.status().message(), "service unavailable, try again");
  client->reset();
  (*server)->Shutdown();
}

TEST_P(RemoteServicesTest, DevicesAndTheAdminApiAcrossTheHop) {
  store::NewSession session{.session_id = 77,
                            .user_id = alice_,
                            .refresh_token_hash = "h",
                            .expires_at = clock_.NowMs() + 3600000};
  ASSERT_TRUE(Await<store::Session>([&](auto cb) {
                faults_->sessions().Create(session, std::move(cb));
              }).ok());
  const Principal who{alice_, 77};
  auto device = Await<service::DeviceInfo>(
      [&](auto cb) { remote_devices_->Register(who, "fcm", "token-1", std::move(cb)); });
  ASSERT_TRUE(device.ok()) << device.status();
  EXPECT_EQ(device->platform, "fcm");
  EXPECT_GT(device->created_at, 0);
  EXPECT_EQ(Await<service::DeviceInfo>(
                [&](auto cb) { remote_devices_->Register(who, "sms", "t", std::move(cb)); })
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Await<service::DeviceInfo>([&](auto cb) {
              remote_devices_->Register({alice_, 78}, "fcm", "t", std::move(cb));
            })
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated)
      << "an unknown (or revoked) session";
  auto listed = Await<std::vector<service::DeviceInfo>>(
      [&](auto cb) { remote_devices_->List(who, std::move(cb)); });
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].device_id, device->device_id);
  EXPECT_EQ(AwaitStatus([&](auto cb) {
              remote_devices_->Delete(b_, device->device_id, std::move(cb));
            }).code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(AwaitStatus([&](auto cb) {
                remote_devices_->Delete(who, device->device_id, std::move(cb));
              }).ok());

  store::NewJob job{.kind = "push", .payload = R"({"x":1})", .max_attempts = 2};
  auto id = Await<int64_t>([&](auto cb) { faults_->jobs().Enqueue(job, std::move(cb)); });
  ASSERT_TRUE(id.ok());
  auto page = Await<store::Page<store::Job>>([&](auto cb) {
    remote_admin_->ListJobs({.state = store::JobState::kReady, .kind = "push"}, std::move(cb));
  });
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].job_id, *id);
  EXPECT_EQ(page->items[0].max_attempts, 2);
  auto one = Await<store::Job>([&](auto cb) { remote_admin_->GetJob(*id, std::move(cb)); });
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(one->payload, R"({"x":1})");
  EXPECT_EQ(AwaitStatus([&](auto cb) { remote_admin_->RetryJob(*id, std::move(cb)); }).code(),
            absl::StatusCode::kNotFound)
      << "only a dead letter is retried";
  EXPECT_EQ(Await<store::Page<store::Job>>(
                [&](auto cb) { remote_admin_->ListJobs({.limit = 0}, std::move(cb)); })
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  auto stats = Await<service::AdminStats>([&](auto cb) { remote_admin_->Stats(std::move(cb)); });
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->ready, 1);
  EXPECT_EQ(stats->users, 3);
  EXPECT_EQ(stats->sessions, 0);
  EXPECT_TRUE(AwaitStatus([&](auto cb) { remote_admin_->DeleteJob(*id, std::move(cb)); }).ok());
  EXPECT_EQ(Await<store::Job>([&](auto cb) { remote_admin_->GetJob(*id, std::move(cb)); })
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Coalescing, RemoteServicesTest, ::testing::Values(size_t{256}, size_t{0}),
                         [](const ::testing::TestParamInfo<size_t>& info) {
                           return info.param > 0 ? std::string("Coalesced")
                                                 : std::string("OneCallEach");
                         });

// A logic node of the previous version (no SendMany/AckMany: a rolling
// upgrade) answers unimplemented; the gateway then sends each item in a
// call of its own, and every item still gets its own answer.
TEST(RemoteFallbackTest, ALogicNodeWithoutTheBatchMethodsGetsOneCallPerItem) {
  namespace pb = ::mpim::logic;
  core::MetricsRegistry metrics;
  auto server = rpc::Server::Create({}, core::SystemClock(), metrics);
  ASSERT_TRUE(server.ok()) << server.status();
  std::atomic<int> single_acks{0}, single_sends{0};
  (*server)->Handle<pb::CursorRequest, pb::Empty>(
      "/mpim.logic.Conversations/Ack",
      [&](const rpc::CallContext&, const pb::CursorRequest& r, pb::Empty*, rpc::Server::Done done) {
        ++single_acks;
        done(r.seq() < 0 ? absl::InvalidArgumentError("seq: must be >= 0") : absl::OkStatus());
      });
  (*server)->Handle<pb::SendRequest, pb::SendResult>(
      "/mpim.logic.Messages/Send", [&](const rpc::CallContext&, const pb::SendRequest& r,
                                       pb::SendResult* out, rpc::Server::Done done) {
        ++single_sends;
        out->set_seq(r.to_id());
        done(absl::OkStatus());
      });
  ASSERT_TRUE((*server)->Start().ok());
  testing::FakeDiscovery discovery;
  discovery.Set({{.name = "logic-old", .role = "logic", .address = (*server)->address()}});
  rpc::ClientConfig config;
  config.role = "logic";
  auto client = rpc::Client::Create(config, discovery, core::SystemClock(), metrics);
  ASSERT_TRUE(client.ok()) << client.status();
  service::remote::RemoteMessageService messages(**client, {}, metrics);
  service::remote::RemoteConversationService convs(**client, {}, metrics);

  constexpr int kItems = 20;
  std::mutex mu;
  std::condition_variable cv;
  int left = 2 * kItems;
  std::map<int, int64_t> seqs;
  int ack_errors = 0;
  for (int i = 1; i <= kItems; ++i) {
    service::SendRequest request;
    request.to_id = 1000 + i;
    request.client_msg_id = "old-" + std::to_string(i);
    request.type = "text";
    request.body = R"({"text":"x"})";
    messages.Send(
        Principal{1, 1}, std::move(request),
        [&, i](core::StatusOr<service::SendResult> r) {
          std::lock_guard lock(mu);
          if (r.ok()) seqs[i] = r->seq;
          if (--left == 0) cv.notify_all();
        },
        nullptr);
    convs.Ack(Principal{1, 1}, "p:1:2", i == 7 ? -1 : i, [&](core::Status st) {
      std::lock_guard lock(mu);
      if (!st.ok()) {
        EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
        ++ack_errors;
      }
      if (--left == 0) cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return left == 0; }));
  }
  ASSERT_EQ(seqs.size(), static_cast<size_t>(kItems));
  for (int i = 1; i <= kItems; ++i) EXPECT_EQ(seqs[i], 1000 + i) << "each send its own answer";
  EXPECT_EQ(single_sends, kItems);
  EXPECT_EQ(single_acks, kItems);
  EXPECT_EQ(ack_errors, 1);
  client->reset();
  (*server)->Shutdown();
}

TEST(RemoteConvertTest, EnumsOutOfRangeAreRefusedOrDefaulted) {
  EXPECT_FALSE(service::remote::GroupRoleFromWire(3).ok());
  EXPECT_FALSE(service::remote::GroupRoleFromWire(-1).ok());
  EXPECT_EQ(*service::remote::GroupRoleFromWire(2), store::GroupRole::kOwner);
  EXPECT_EQ(service::remote::PriorityFromWire(9), service::Priority::kNormal);
  EXPECT_EQ(service::remote::PriorityFromWire(3), service::Priority::kUrgent);
  // A reply's role out of range reads as member: never more rights.
  logic::GroupMember m;
  m.set_role(42);
  EXPECT_EQ(service::remote::FromProto(m).role, store::GroupRole::kMember);
}

}  // namespace
}  // namespace mpim
