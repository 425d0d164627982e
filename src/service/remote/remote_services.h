// The service interfaces a gateway holds, as clients of the logic role
// (proto/mpim/logic.proto) over rpc::Client: the gateway's code is the same
// in role `all` (local services) and `gateway` (these). Same contract as
// the local services; every call is a network round trip and may also fail
// with `unavailable` (no logic node answered: the client has already
// retried what is safe to retry on another node) or `deadline_exceeded`.
//
// Which calls are retried on `unavailable` (rpc::CallOptions::retryable):
// reads, and the writes that are idempotent: sends (deduplicated by
// client_msg_id), cursors (read, ack: they only move forward), settings
// that set a value (profile, mute/pin), block/unblock, logout. Never
// register, login, refresh (a repeated refresh would look like a stolen
// token), friend requests, group changes or recalls: a retry after a lost
// reply would answer `already_exists` or `not_found` for a change that
// happened.
//
// Keys (rpc::CallOptions::key): a conversation's sends (and reads) go to
// one logic node by a hash of the conversation id, so that its send
// pipeline runs in one place; a user's acks, hello (Pending) and start
// seqs go to one logic node by a hash of the user id, so that the delivered
// cursors an ack leaves in that node's memory until the next flush are the
// ones hello and StartSeq read. Correctness never depends on it (seqs are
// assigned in the store; a cursor read on another node is at most one flush
// interval behind, and clients dedup by seq).
//
// Deadlines: each call gets rpc.deadline_ms from now (the gateway's client
// requests carry no deadline of their own); the logic node receives it
// and refuses work whose caller has already given up.
//
// Thread-safe; callbacks run once on a gRPC thread (or the calling thread
// when the call fails before it is sent).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/clock.h"
#include "core/config.h"
#include "route/presence.h"
#include "rpc/client.h"
#include "service/admin_service.h"
#include "service/auth/token_keys.h"
#include "service/auth/token_verifier.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/device_service.h"
#include "service/friend_service.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "service/remote/call_batcher.h"
#include "service/remote/convert.h"
#include "service/user_service.h"

namespace mpim::service::remote {

// Authenticate is local (the signing keys, and the revoked sessions this
// gateway knows of); the rest goes to a logic node.
class RemoteAuthService final : public AuthService {
 public:
  RemoteAuthService(rpc::Client& client, const core::AuthConfig& config,
                    const auth::TokenKeys& keys, core::Clock& clock);

  // Loads the sessions revoked within an access token's lifetime from a
  // logic node. Blocks (start-up only); unavailable when none answers.
  core::Status LoadRevocations();
  // A revocation learned from the bus.
  void NoteRevoked(int64_t session_id) { verifier_.NoteRevoked(session_id); }

  void Register(RegisterRequest request, core::Callback<int64_t> done) override;
  void Login(LoginRequest request, core::Callback<LoginResult> done) override;
  void Refresh(std::string refresh_token, core::Callback<TokenPair> done) override;
  void Logout(Principal principal, core::DoneCallback done) override;
  core::StatusOr<Principal> Authenticate(std::string_view access_token) const override;

 private:
  rpc::Client& client_;
  auth::TokenVerifier verifier_;
};

// last_seen of a gateway's users, kept by a logic node (best effort).
route::Presence::LastSeenSink RemoteLastSeen(rpc::Client& client);

class RemoteUserService final : public UserService {
 public:
  explicit RemoteUserService(rpc::Client& client) : client_(client) {}
  void Get(int64_t user_id, core::Callback<UserProfile> done) override;
  void Update(int64_t user_id, ProfileUpdate update, core::Callback<UserProfile> done) override;
  void Search(std::string prefix, std::string after_username, int limit,
              core::Callback<UserPage> done) override;

 private:
  rpc::Client& client_;
};

class RemoteDeviceService final : public DeviceService {
 public:
  explicit RemoteDeviceService(rpc::Client& client) : client_(client) {}
  void Register(Principal who, std::string platform, std::string token,
                core::Callback<DeviceInfo> done) override;
  void List(Principal who, core::Callback<std::vector<DeviceInfo>> done) override;
  void Delete(Principal who, int64_t device_id, core::DoneCallback done) override;

 private:
  rpc::Client& client_;
};

class RemoteAdminService final : public AdminService {
 public:
  explicit RemoteAdminService(rpc::Client& client) : client_(client) {}
  void ListJobs(const store::JobFilter& filter,
                core::Callback<store::Page<store::Job>> done) override;
  void GetJob(int64_t job_id, core::Callback<store::Job> done) override;
  void RetryJob(int64_t job_id, core::DoneCallback done) override;
  void DeleteJob(int64_t job_id, core::DoneCallback done) override;
  void Stats(core::Callback<AdminStats> done) override;

 private:
  rpc::Client& client_;
};

class RemoteFriendService final : public FriendService {
 public:
  explicit RemoteFriendService(rpc::Client& client) : client_(client) {}
  void List(int64_t user_id, int64_t after, int limit, core::Callback<FriendPage> done) override;
  void Request(int64_t from, int64_t to, core::Callback<FriendOutcome> done) override;
  void Remove(int64_t user_id, int64_t other, core::DoneCallback done) override;
  void Requests(int64_t user_id, int limit, core::Callback<FriendRequests> done) override;
  void Block(int64_t blocker, int64_t blocked, core::DoneCallback done) override;
  void Unblock(int64_t blocker, int64_t blocked, core::DoneCallback done) override;
  void ListBlocked(int64_t blocker, int64_t after, int limit,
                   core::Callback<FriendPage> done) override;

 private:
  rpc::Client& client_;
};

class RemoteGroupService final : public GroupService {
 public:
  explicit RemoteGroupService(rpc::Client& client) : client_(client) {}
  void Create(Principal who, NewGroupRequest request, core::Callback<store::Group> done) override;
  void Get(Principal who, int64_t group_id, core::Callback<GroupView> done) override;
  void Update(Principal who, int64_t group_id, std::optional<std::string> name,
              std::optional<bool> is_public, core::Callback<GroupView> done) override;
  void Delete(Principal who, int64_t group_id, core::DoneCallback done) override;
  void ListMembers(Principal who, int64_t group_id, int64_t after, int limit,
                   core::Callback<MemberPage> done) override;
  void AddMembers(Principal who, int64_t group_id, std::vector<int64_t> user_ids,
                  core::Callback<std::vector<int64_t>> done) override;
  void RemoveMember(Principal who, int64_t group_id, int64_t user_id,
                    core::DoneCallback done) override;
  void SetRole(Principal who, int64_t group_id, int64_t user_id, store::GroupRole role,
               core::Callback<store::GroupMember> done) override;
  void ListMine(Principal who, core::Callback<std::vector<GroupView>> done) override;

 private:
  rpc::Client& client_;
};

// How a gateway coalesces sends and acks (call_batcher.h; rpc.batch_*).
struct Coalescing {
  size_t max_items = 256;    // per call; 0: no coalescing (one call per send or ack)
  size_t max_in_flight = 2;  // batch calls per logic node at a time
  // How long an ack may wait for others (CallBatcher's linger); sends never wait.
  std::chrono::milliseconds ack_linger{0};
};

// Acks go through a CallBatcher (call_batcher.h): one AckMany call carries
// the acks of many sessions to a logic node.
class RemoteConversationService final : public ConversationService {
 public:
  explicit RemoteConversationService(rpc::Client& client, Coalescing coalescing = {},
                                     core::MetricsRegistry& metrics = core::DefaultRegistry());
  void List(Principal who, int limit, core::Callback<std::vector<ConversationView>> done) override;
  void History(Principal who, std::string conv_id, std::optional<int64_t> before_seq,
               std::optional<int64_t> after_seq, int limit,
               core::Callback<MessagePage> done) override;
  void Sync(Principal who, std::string conv_id, int64_t after_seq, int limit,
            core::Callback<MessagePage> done) override;
  void Read(Principal who, std::string conv_id, int64_t seq, route::ConnId origin_conn,
            core::Callback<int64_t> done) override;
  void Ack(Principal who, std::string conv_id, int64_t seq, core::DoneCallback done) override;
  void SendPendingAcks(Principal who) override;
  void Typing(Principal who, std::string conv_id, core::DoneCallback done) override;
  void Update(Principal who, std::string conv_id, std::optional<bool> muted,
              std::optional<bool> pinned, core::DoneCallback done) override;
  void Search(Principal who, std::string query, std::optional<std::string> conv_id, int limit,
              core::Callback<std::vector<store::Message>> done) override;
  void Pending(Principal who,
               core::Callback<std::vector<store::PendingConversation>> done) override;
  void StartSeq(Principal who, std::string conv_id, core::Callback<int64_t> done) override;

 private:
  rpc::Client& client_;
  const bool coalesce_;
  CallBatcher<pb::CursorRequest, bool> acks_;  // by user, to the node hello asks
};

// `ordered` runs just before `done` (no earlier moment is known across
// the hop): always correct, and a session's next send waits for the
// previous one's reply. Sends go through a CallBatcher (call_batcher.h):
// one SendMany call carries the sends of many sessions to a logic node.
class RemoteMessageService final : public MessageService {
 public:
  explicit RemoteMessageService(rpc::Client& client, Coalescing coalescing = {},
                                core::MetricsRegistry& metrics = core::DefaultRegistry());
  void Send(Principal who, SendRequest request, core::Callback<SendResult> done,
            OrderedCallback ordered) override;
  void PostSystem(int64_t group_id, int64_t by, std::string body_json,
                  core::Callback<store::Message> done) override;
  void Recall(Principal who, int64_t msg_id, core::Callback<store::Message> done) override;

 private:
  rpc::Client& client_;
  const bool coalesce_;
  CallBatcher<pb::SendRequest, SendResult> sends_;
};

}  // namespace mpim::service::remote
