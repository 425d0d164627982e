#include "service/remote/remote_services.h"

#include <atomic>
#include <functional>
#include <utility>

#include "rpc/status.h"
#include "service/remote/convert.h"
#include "store/conv_id.h"

namespace mpim::service::remote {
namespace {

// Full method names of proto/mpim/logic.proto.
std::string Method(const char* service, const char* method) {
  return std::string("/mpim.logic.") + service + "/" + method;
}

rpc::CallOptions Once() { return {}; }
rpc::CallOptions Retryable() { return {.retryable = true}; }
rpc::CallOptions Keyed(std::string key, bool retryable) {
  return {.key = std::move(key), .retryable = retryable};
}

// The balancing key of a user's delivered cursors (ack, hello, start seq).
std::string UserKey(const Principal& who) { return "u:" + std::to_string(who.user_id); }

// What a client may read of a failed call: the services' own errors as
// they are; a transport failure (gRPC's text names internal addresses) or a
// logic node's shedding as one plain sentence.
core::Status ForClients(core::Status s) {
  if (s.code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError("service unavailable, try again");
  }
  if (s.code() == absl::StatusCode::kDeadlineExceeded) {
    return absl::DeadlineExceededError("the service did not answer in time");
  }
  return s;
}

template <typename Request, typename Response>
struct Exchange {
  Request request;
  Response response;
};

// Calls `method` with `request`; a reply goes through `convert` into `done`.
template <typename Response, typename T, typename Request, typename Convert>
void Invoke(rpc::Client& client, const std::string& method, Request request,
            rpc::CallOptions options, core::Callback<T> done, Convert convert) {
  auto x = std::make_shared<Exchange<Request, Response>>();
  x->request = std::move(request);
  auto cb = std::make_shared<core::Callback<T>>(std::move(done));
  client.Call(method, x->request, &x->response, std::move(options),
              [x, cb, convert = std::move(convert)](core::Status s) {
                if (!s.ok()) return std::move(*cb)(ForClients(std::move(s)));
                std::move (*cb)(convert(x->response));
              });
}

// For methods that answer Empty.
template <typename Request>
void InvokeDone(rpc::Client& client, const std::string& method, Request request,
                rpc::CallOptions options, core::DoneCallback done) {
  auto x = std::make_shared<Exchange<Request, pb::Empty>>();
  x->request = std::move(request);
  auto cb = std::make_shared<core::DoneCallback>(std::move(done));
  client.Call(method, x->request, &x->response, std::move(options),
              [x, cb](core::Status s) { std::move (*cb)(ForClients(std::move(s))); });
}

int64_t Int64Of(const pb::Int64Value& v) { return v.value(); }

// Items per coalesced call (CallBatcher), per method.
core::Histogram& BatchItems(core::MetricsRegistry& metrics, const char* method) {
  return metrics
      .Histogram("mpim_rpc_batch_items",
                 "Items per coalesced call from a gateway (SendMany, AckMany)", {"method"},
                 {1, 2, 4, 8, 16, 32, 64, 128, 256})
      .With({method});
}

// Answers of a coalesced call, one per item.
template <typename Result>
using ItemResults = std::vector<core::StatusOr<Result>>;

// A coalesced call: `items` go as `Batch`'s repeated `items`; `convert`
// turns the reply into one answer per item. A logic node that does not
// know the method yet (a rolling upgrade) answers unimplemented: then
// `one` sends each item in a call of its own and the answers are joined.
template <typename Batch, typename BatchResult, typename Item, typename Result, typename Convert>
void CallBatch(rpc::Client& client, const std::string& method, const std::string& key,
               std::vector<Item> items, core::Callback<ItemResults<Result>> done, Convert convert,
               std::function<void(Item, core::Callback<Result>)> one) {
  auto x = std::make_shared<Exchange<Batch, BatchResult>>();
  for (auto& item : items) *x->request.add_items() = std::move(item);
  auto cb = std::make_shared<core::Callback<ItemResults<Result>>>(std::move(done));
  client.Call(method, x->request, &x->response, Keyed(key, true),
              [x, cb, convert, one = std::move(one)](core::Status s) mutable {
                if (s.code() == absl::StatusCode::kUnimplemented) {
                  struct Join {
                    ItemResults<Result> results;
                    std::atomic<size_t> left;
                    core::Callback<ItemResults<Result>> done;
                  };
                  auto join = std::make_shared<Join>();
                  const int n = x->request.items_size();
                  for (int i = 0; i < n; ++i)
                    join->results.emplace_back(absl::UnknownError("unanswered"));
                  join->left = static_cast<size_t>(n);
                  join->done = std::move(*cb);
                  for (int i = 0; i < n; ++i) {
                    one(std::move(*x->request.mutable_items(i)),
                        [join, i](core::StatusOr<Result> r) {
                          join->results[static_cast<size_t>(i)] = std::move(r);
                          if (join->left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                            std::move(join->done)(std::move(join->results));
                          }
                        });
                  }
                  return;
                }
                if (!s.ok()) return std::move(*cb)(ForClients(std::move(s)));
                std::move (*cb)(convert(x->response));
              });
}

pb::FriendPairRequest Pair(int64_t user_id, int64_t other) {
  pb::FriendPairRequest r;
  r.set_user_id(user_id);
  r.set_other(other);
  return r;
}

pb::FriendListRequest FriendList(int64_t user_id, int64_t after, int limit) {
  pb::FriendListRequest r;
  r.set_user_id(user_id);
  r.set_after(after);
  r.set_limit(limit);
  return r;
}

pb::GroupRequest GroupOf(Principal who, int64_t group_id) {
  pb::GroupRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  return r;
}

pb::ConvRequest ConvOf(Principal who, const std::string& conv_id) {
  pb::ConvRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(conv_id);
  return r;
}

// The conversation a send goes to (its balancing key).
std::string SendConvId(int64_t from, bool to_group, int64_t to_id) {
  return to_group ? store::GroupConvId(to_id) : store::PrivateConvId(from, to_id);
}

}  // namespace

// ---- Auth ----

RemoteAuthService::RemoteAuthService(rpc::Client& client, const core::AuthConfig& config,
                                     const auth::TokenKeys& keys, core::Clock& clock)
    : client_(client), verifier_(config, keys, clock) {}

core::Status RemoteAuthService::LoadRevocations() {
  pb::RevokedRequest request;
  request.set_since_ms(verifier_.RelevantSinceMs());
  for (;;) {
    pb::RevokedPage page;
    core::Status s = client_.CallAndWait(Method("Auth", "Revoked"), request, &page, Retryable());
    if (!s.ok()) return s;
    for (const pb::RevokedSession& r : page.sessions()) verifier_.NoteRevoked(r.session_id());
    if (!page.has_more() || page.sessions().empty()) break;
    request.set_since_ms(page.sessions().rbegin()->revoked_at());
    request.set_after_session(page.sessions().rbegin()->session_id());
  }
  return absl::OkStatus();
}

void RemoteAuthService::Register(RegisterRequest request, core::Callback<int64_t> done) {
  pb::RegisterRequest r;
  r.set_username(std::move(request.username));
  r.set_password(std::move(request.password));
  r.set_display_name(std::move(request.display_name));
  r.set_client_address(std::move(request.client_address));
  Invoke<pb::Int64Value>(client_, Method("Auth", "Register"), std::move(r), Once(), std::move(done),
                         Int64Of);
}

void RemoteAuthService::Login(LoginRequest request, core::Callback<LoginResult> done) {
  pb::LoginRequest r;
  r.set_username(std::move(request.username));
  r.set_password(std::move(request.password));
  r.set_device(std::move(request.device));
  r.set_client_address(std::move(request.client_address));
  Invoke<pb::LoginResult>(client_, Method("Auth", "Login"), std::move(r), Once(), std::move(done),
                          [](const pb::LoginResult& x) {
                            return LoginResult{x.user_id(), x.session_id(), FromProto(x.tokens())};
                          });
}

void RemoteAuthService::Refresh(std::string refresh_token, core::Callback<TokenPair> done) {
  pb::RefreshRequest r;
  r.set_refresh_token(std::move(refresh_token));
  // A reused refresh token revokes its session on the logic node: refused
  // here at once too, not only once the bus brings the revocation back.
  Invoke<pb::TokenPair>(client_, Method("Auth", "Refresh"), std::move(r), Once(),
                        core::Callback<TokenPair>([this, done = std::move(done)](
                                                      core::StatusOr<TokenPair> tokens) mutable {
                          if (!tokens.ok()) {
                            if (auto revoked = core::RevokedSession(tokens.status())) {
                              verifier_.NoteRevoked(*revoked);
                            }
                          }
                          std::move(done)(std::move(tokens));
                        }),
                        [](const pb::TokenPair& x) { return FromProto(x); });
}

void RemoteAuthService::Logout(Principal principal, core::DoneCallback done) {
  pb::Principal r;
  ToProto(principal, &r);
  // Refused here at once, not only once the bus brings the revocation back.
  InvokeDone(client_, Method("Auth", "Logout"), std::move(r), Retryable(),
             [this, principal, done = std::move(done)](core::Status s) mutable {
               if (s.ok()) verifier_.NoteRevoked(principal.session_id);
               std::move(done)(std::move(s));
             });
}

core::StatusOr<Principal> RemoteAuthService::Authenticate(std::string_view access_token) const {
  return verifier_.Authenticate(access_token);
}

// ---- Users ----

route::Presence::LastSeenSink RemoteLastSeen(rpc::Client& client) {
  return [&client](int64_t user, int64_t ts_ms) {
    pb::LastSeen r;
    r.set_user_id(user);
    r.set_ts_ms(ts_ms);
    InvokeDone(client, Method("Users", "TouchLastSeen"), std::move(r), Retryable(),
               [](core::Status) {});
  };
}

// ---- Devices ----

DeviceInfo FromProto(const pb::DeviceInfo& x) {
  return {.device_id = x.device_id(), .platform = x.platform(), .created_at = x.created_at()};
}

void RemoteDeviceService::Register(Principal who, std::string platform, std::string token,
                                   core::Callback<DeviceInfo> done) {
  pb::DeviceRegisterRequest r;
  ToProto(who, r.mutable_who());
  r.set_platform(std::move(platform));
  r.set_token(std::move(token));
  // A retry registers again, replacing what the first attempt may have set.
  Invoke<pb::DeviceInfo>(client_, Method("Devices", "Register"), std::move(r), Retryable(),
                         std::move(done), [](const pb::DeviceInfo& x) { return FromProto(x); });
}

void RemoteDeviceService::List(Principal who, core::Callback<std::vector<DeviceInfo>> done) {
  pb::Principal r;
  ToProto(who, &r);
  Invoke<pb::DeviceList>(client_, Method("Devices", "List"), std::move(r), Retryable(),
                         std::move(done), [](const pb::DeviceList& x) {
                           std::vector<DeviceInfo> out;
                           for (const pb::DeviceInfo& d : x.devices()) out.push_back(FromProto(d));
                           return out;
                         });
}

void RemoteDeviceService::Delete(Principal who, int64_t device_id, core::DoneCallback done) {
  pb::DeviceDeleteRequest r;
  ToProto(who, r.mutable_who());
  r.set_device_id(device_id);
  InvokeDone(client_, Method("Devices", "Delete"), std::move(r), Once(), std::move(done));
}

// ---- Admin ----

store::Job FromProto(const pb::JobInfo& x) {
  return {.job_id = x.job_id(),
          .kind = x.kind(),
          .payload = x.payload(),
          .state = static_cast<store::JobState>(x.state()),
          .attempts = x.attempts(),
          .max_attempts = x.max_attempts(),
          .run_at = x.run_at(),
          .last_error = x.last_error(),
          .created_at = x.created_at()};
}

pb::JobIdRequest JobIdOf(int64_t job_id) {
  pb::JobIdRequest r;
  r.set_job_id(job_id);
  return r;
}

void RemoteAdminService::ListJobs(const store::JobFilter& filter,
                                  core::Callback<store::Page<store::Job>> done) {
  pb::JobListRequest r;
  if (filter.state) r.set_state(static_cast<int32_t>(*filter.state));
  r.set_kind(filter.kind);
  r.set_after_job(filter.after_job);
  r.set_limit(filter.limit);
  Invoke<pb::JobPage>(client_, Method("Admin", "ListJobs"), std::move(r), Retryable(),
                      std::move(done), [](const pb::JobPage& x) {
                        store::Page<store::Job> page;
                        for (const pb::JobInfo& j : x.jobs()) page.items.push_back(FromProto(j));
                        page.has_more = x.has_more();
                        return page;
                      });
}

void RemoteAdminService::GetJob(int64_t job_id, core::Callback<store::Job> done) {
  Invoke<pb::JobInfo>(client_, Method("Admin", "GetJob"), JobIdOf(job_id), Retryable(),
                      std::move(done), [](const pb::JobInfo& x) { return FromProto(x); });
}

void RemoteAdminService::RetryJob(int64_t job_id, core::DoneCallback done) {
  InvokeDone(client_, Method("Admin", "RetryJob"), JobIdOf(job_id), Once(), std::move(done));
}

void RemoteAdminService::DeleteJob(int64_t job_id, core::DoneCallback done) {
  InvokeDone(client_, Method("Admin", "DeleteJob"), JobIdOf(job_id), Once(), std::move(done));
}

void RemoteAdminService::Stats(core::Callback<AdminStats> done) {
  Invoke<pb::AdminStats>(client_, Method("Admin", "Stats"), pb::Empty(), Retryable(),
                         std::move(done), [](const pb::AdminStats& x) {
                           return AdminStats{.ready = x.ready(),
                                             .leased = x.leased(),
                                             .dead = x.dead(),
                                             .sessions = x.sessions(),
                                             .users = x.users()};
                         });
}

// ---- Users ----

void RemoteUserService::Get(int64_t user_id, core::Callback<UserProfile> done) {
  pb::UserGetRequest r;
  r.set_user_id(user_id);
  Invoke<pb::UserProfile>(client_, Method("Users", "Get"), std::move(r), Retryable(),
                          std::move(done), [](const pb::UserProfile& x) { return FromProto(x); });
}

void RemoteUserService::Update(int64_t user_id, ProfileUpdate update,
                               core::Callback<UserProfile> done) {
  pb::UserUpdateRequest r;
  r.set_user_id(user_id);
  if (update.display_name) r.set_display_name(std::move(*update.display_name));
  if (update.avatar_url) r.set_avatar_url(std::move(*update.avatar_url));
  Invoke<pb::UserProfile>(client_, Method("Users", "Update"), std::move(r), Retryable(),
                          std::move(done), [](const pb::UserProfile& x) { return FromProto(x); });
}

void RemoteUserService::Search(std::string prefix, std::string after_username, int limit,
                               core::Callback<UserPage> done) {
  pb::UserSearchRequest r;
  r.set_prefix(std::move(prefix));
  r.set_after_username(std::move(after_username));
  r.set_limit(limit);
  Invoke<pb::UserPage>(client_, Method("Users", "Search"), std::move(r), Retryable(),
                       std::move(done), [](const pb::UserPage& x) {
                         UserPage page;
                         page.users.reserve(static_cast<size_t>(x.users_size()));
                         for (const pb::UserProfile& u : x.users()) {
                           page.users.push_back(FromProto(u));
                         }
                         page.has_more = x.has_more();
                         return page;
                       });
}

// ---- Friends ----

namespace {
FriendPage PageOf(const pb::FriendPage& x) { return FromProto(x); }
}  // namespace

void RemoteFriendService::List(int64_t user_id, int64_t after, int limit,
                               core::Callback<FriendPage> done) {
  Invoke<pb::FriendPage>(client_, Method("Friends", "List"), FriendList(user_id, after, limit),
                         Retryable(), std::move(done), PageOf);
}

void RemoteFriendService::Request(int64_t from, int64_t to, core::Callback<FriendOutcome> done) {
  Invoke<pb::FriendOutcome>(client_, Method("Friends", "Request"), Pair(from, to), Once(),
                            std::move(done), [](const pb::FriendOutcome& x) {
                              return x.outcome() == 1 ? FriendOutcome::kFriends
                                                      : FriendOutcome::kRequested;
                            });
}

void RemoteFriendService::Remove(int64_t user_id, int64_t other, core::DoneCallback done) {
  InvokeDone(client_, Method("Friends", "Remove"), Pair(user_id, other), Once(), std::move(done));
}

void RemoteFriendService::Requests(int64_t user_id, int limit,
                                   core::Callback<FriendRequests> done) {
  pb::FriendRequestsRequest r;
  r.set_user_id(user_id);
  r.set_limit(limit);
  Invoke<pb::FriendRequests>(client_, Method("Friends", "Requests"), std::move(r), Retryable(),
                             std::move(done), [](const pb::FriendRequests& x) {
                               FriendRequests out;
                               for (const pb::FriendEntry& e : x.incoming()) {
                                 out.incoming.push_back(FromProto(e));
                               }
                               for (const pb::FriendEntry& e : x.outgoing()) {
                                 out.outgoing.push_back(FromProto(e));
                               }
                               return out;
                             });
}

void RemoteFriendService::Block(int64_t blocker, int64_t blocked, core::DoneCallback done) {
  InvokeDone(client_, Method("Friends", "Block"), Pair(blocker, blocked), Retryable(),
             std::move(done));
}

void RemoteFriendService::Unblock(int64_t blocker, int64_t blocked, core::DoneCallback done) {
  InvokeDone(client_, Method("Friends", "Unblock"), Pair(blocker, blocked), Retryable(),
             std::move(done));
}

void RemoteFriendService::ListBlocked(int64_t blocker, int64_t after, int limit,
                                      core::Callback<FriendPage> done) {
  Invoke<pb::FriendPage>(client_, Method("Friends", "ListBlocked"),
                         FriendList(blocker, after, limit), Retryable(), std::move(done), PageOf);
}

// ---- Groups ----

namespace {
GroupView ViewOf(const pb::GroupView& x) { return FromProto(x); }
}  // namespace

void RemoteGroupService::Create(Principal who, NewGroupRequest request,
                                core::Callback<store::Group> done) {
  pb::GroupCreateRequest r;
  ToProto(who, r.mutable_who());
  r.set_name(std::move(request.name));
  r.mutable_members()->Add(request.members.begin(), request.members.end());
  r.set_is_public(request.is_public);
  Invoke<pb::Group>(client_, Method("Groups", "Create"), std::move(r), Once(), std::move(done),
                    [](const pb::Group& x) { return FromProto(x); });
}

void RemoteGroupService::Get(Principal who, int64_t group_id, core::Callback<GroupView> done) {
  Invoke<pb::GroupView>(client_, Method("Groups", "Get"), GroupOf(who, group_id), Retryable(),
                        std::move(done), ViewOf);
}

void RemoteGroupService::Update(Principal who, int64_t group_id, std::optional<std::string> name,
                                std::optional<bool> is_public, core::Callback<GroupView> done) {
  pb::GroupUpdateRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  if (name) r.set_name(std::move(*name));
  if (is_public) r.set_is_public(*is_public);
  // Not retried: a rename posts a system message.
  Invoke<pb::GroupView>(client_, Method("Groups", "Update"), std::move(r), Once(), std::move(done),
                        ViewOf);
}

void RemoteGroupService::Delete(Principal who, int64_t group_id, core::DoneCallback done) {
  InvokeDone(client_, Method("Groups", "Delete"), GroupOf(who, group_id), Once(), std::move(done));
}

void RemoteGroupService::ListMembers(Principal who, int64_t group_id, int64_t after, int limit,
                                     core::Callback<MemberPage> done) {
  pb::GroupMembersRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  r.set_after(after);
  r.set_limit(limit);
  Invoke<pb::MemberPage>(client_, Method("Groups", "ListMembers"), std::move(r), Retryable(),
                         std::move(done), [](const pb::MemberPage& x) {
                           MemberPage page;
                           page.members.reserve(static_cast<size_t>(x.members_size()));
                           for (const pb::MemberView& m : x.members()) {
                             page.members.push_back(FromProto(m));
                           }
                           page.has_more = x.has_more();
                           return page;
                         });
}

void RemoteGroupService::AddMembers(Principal who, int64_t group_id, std::vector<int64_t> user_ids,
                                    core::Callback<std::vector<int64_t>> done) {
  pb::GroupAddRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  r.mutable_user_ids()->Add(user_ids.begin(), user_ids.end());
  Invoke<pb::UserIds>(client_, Method("Groups", "AddMembers"), std::move(r), Once(),
                      std::move(done), [](const pb::UserIds& x) {
                        return std::vector<int64_t>(x.user_ids().begin(), x.user_ids().end());
                      });
}

void RemoteGroupService::RemoveMember(Principal who, int64_t group_id, int64_t user_id,
                                      core::DoneCallback done) {
  pb::GroupMemberRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  r.set_user_id(user_id);
  InvokeDone(client_, Method("Groups", "RemoveMember"), std::move(r), Once(), std::move(done));
}

void RemoteGroupService::SetRole(Principal who, int64_t group_id, int64_t user_id,
                                 store::GroupRole role, core::Callback<store::GroupMember> done) {
  pb::GroupMemberRequest r;
  ToProto(who, r.mutable_who());
  r.set_group_id(group_id);
  r.set_user_id(user_id);
  r.set_role(static_cast<int32_t>(role));
  Invoke<pb::GroupMember>(client_, Method("Groups", "SetRole"), std::move(r), Once(),
                          std::move(done), [](const pb::GroupMember& x) { return FromProto(x); });
}

void RemoteGroupService::ListMine(Principal who, core::Callback<std::vector<GroupView>> done) {
  pb::Principal r;
  ToProto(who, &r);
  Invoke<pb::GroupViews>(client_, Method("Groups", "ListMine"), std::move(r), Retryable(),
                         std::move(done), [](const pb::GroupViews& x) {
                           std::vector<GroupView> out;
                           out.reserve(static_cast<size_t>(x.groups_size()));
                           for (const pb::GroupView& g : x.groups()) out.push_back(FromProto(g));
                           return out;
                         });
}

// ---- Conversations ----

namespace {
MessagePage MessagePageOf(const pb::MessagePage& x) { return FromProto(x); }
}  // namespace

void RemoteConversationService::List(Principal who, int limit,
                                     core::Callback<std::vector<ConversationView>> done) {
  pb::ConvListRequest r;
  ToProto(who, r.mutable_who());
  r.set_limit(limit);
  Invoke<pb::ConversationViews>(client_, Method("Conversations", "List"), std::move(r), Retryable(),
                                std::move(done), [](const pb::ConversationViews& x) {
                                  std::vector<ConversationView> out;
                                  out.reserve(static_cast<size_t>(x.conversations_size()));
                                  for (const pb::ConversationView& c : x.conversations()) {
                                    out.push_back(FromProto(c));
                                  }
                                  return out;
                                });
}

void RemoteConversationService::History(Principal who, std::string conv_id,
                                        std::optional<int64_t> before_seq,
                                        std::optional<int64_t> after_seq, int limit,
                                        core::Callback<MessagePage> done) {
  pb::HistoryRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(std::move(conv_id));
  if (before_seq) r.set_before_seq(*before_seq);
  if (after_seq) r.set_after_seq(*after_seq);
  r.set_limit(limit);
  Invoke<pb::MessagePage>(client_, Method("Conversations", "History"), std::move(r), Retryable(),
                          std::move(done), MessagePageOf);
}

void RemoteConversationService::Sync(Principal who, std::string conv_id, int64_t after_seq,
                                     int limit, core::Callback<MessagePage> done) {
  pb::SyncRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(std::move(conv_id));
  r.set_after_seq(after_seq);
  r.set_limit(limit);
  Invoke<pb::MessagePage>(client_, Method("Conversations", "Sync"), std::move(r), Retryable(),
                          std::move(done), MessagePageOf);
}

void RemoteConversationService::Read(Principal who, std::string conv_id, int64_t seq,
                                     route::ConnId origin_conn, core::Callback<int64_t> done) {
  pb::CursorRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(conv_id);
  r.set_seq(seq);
  ToProto(origin_conn, r.mutable_origin_conn());
  Invoke<pb::Int64Value>(client_, Method("Conversations", "Read"), std::move(r),
                         Keyed(std::move(conv_id), true), std::move(done), Int64Of);
}

RemoteConversationService::RemoteConversationService(rpc::Client& client, Coalescing coalescing,
                                                     core::MetricsRegistry& metrics)
    : client_(client),
      coalesce_(coalescing.max_items > 0),
      acks_(
          {.max_in_flight = coalescing.max_in_flight,
           .max_items = coalescing.max_items,
           .batch_items = &BatchItems(metrics, "AckMany"),
           .linger = coalescing.ack_linger},
          [&client](const std::string& key) { return client.Owner(key); },
          [&client](const std::string& key, std::vector<pb::CursorRequest> items,
                    core::Callback<ItemResults<bool>> done) {
            CallBatch<pb::AckBatch, pb::AckBatchResult, pb::CursorRequest, bool>(
                client, Method("Conversations", "AckMany"), key, std::move(items), std::move(done),
                [](const pb::AckBatchResult& out) {
                  ItemResults<bool> results;
                  for (const auto& item : out.items()) {
                    core::Status st = rpc::FromProto(item);
                    if (st.ok()) {
                      results.emplace_back(true);
                    } else {
                      results.emplace_back(ForClients(std::move(st)));
                    }
                  }
                  return results;
                },
                [&client](pb::CursorRequest one, core::Callback<bool> cb) {
                  std::string k = UserKey(FromProto(one.who()));
                  InvokeDone(client, Method("Conversations", "Ack"), std::move(one),
                             Keyed(std::move(k), true),
                             [cb = std::move(cb)](core::Status st) mutable {
                               if (!st.ok()) return std::move(cb)(std::move(st));
                               std::move(cb)(true);
                             });
                });
          }) {}

void RemoteConversationService::Ack(Principal who, std::string conv_id, int64_t seq,
                                    core::DoneCallback done) {
  pb::CursorRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(conv_id);
  r.set_seq(seq);
  if (!coalesce_) {
    return InvokeDone(client_, Method("Conversations", "Ack"), std::move(r),
                      Keyed(UserKey(who), true), std::move(done));
  }
  acks_.Add(UserKey(who), std::move(r), [done = std::move(done)](core::StatusOr<bool> ok) mutable {
    std::move(done)(ok.status());
  });
}

void RemoteConversationService::SendPendingAcks(Principal who) { acks_.Hurry(UserKey(who)); }

void RemoteConversationService::Typing(Principal who, std::string conv_id,
                                       core::DoneCallback done) {
  InvokeDone(client_, Method("Conversations", "Typing"), ConvOf(who, conv_id), Once(),
             std::move(done));
}

void RemoteConversationService::Update(Principal who, std::string conv_id,
                                       std::optional<bool> muted, std::optional<bool> pinned,
                                       core::DoneCallback done) {
  pb::ConvUpdateRequest r;
  ToProto(who, r.mutable_who());
  r.set_conv_id(std::move(conv_id));
  if (muted) r.set_muted(*muted);
  if (pinned) r.set_pinned(*pinned);
  InvokeDone(client_, Method("Conversations", "Update"), std::move(r), Retryable(),
             std::move(done));
}

void RemoteConversationService::Search(Principal who, std::string query,
                                       std::optional<std::string> conv_id, int limit,
                                       core::Callback<std::vector<store::Message>> done) {
  pb::SearchRequest r;
  ToProto(who, r.mutable_who());
  r.set_query(std::move(query));
  if (conv_id) r.set_conv_id(std::move(*conv_id));
  r.set_limit(limit);
  Invoke<pb::MessageList>(client_, Method("Conversations", "Search"), std::move(r), Retryable(),
                          std::move(done), [](const pb::MessageList& x) {
                            std::vector<store::Message> out;
                            out.reserve(static_cast<size_t>(x.messages_size()));
                            for (const pb::Message& m : x.messages()) out.push_back(FromProto(m));
                            return out;
                          });
}

void RemoteConversationService::Pending(
    Principal who, core::Callback<std::vector<store::PendingConversation>> done) {
  pb::Principal r;
  ToProto(who, &r);
  Invoke<pb::PendingList>(client_, Method("Conversations", "Pending"), std::move(r),
                          Keyed(UserKey(who), true), std::move(done), [](const pb::PendingList& x) {
                            std::vector<store::PendingConversation> out;
                            out.reserve(static_cast<size_t>(x.conversations_size()));
                            for (const pb::PendingConversation& c : x.conversations()) {
                              out.push_back(FromProto(c));
                            }
                            return out;
                          });
}

void RemoteConversationService::StartSeq(Principal who, std::string conv_id,
                                         core::Callback<int64_t> done) {
  pb::ConvRequest r = ConvOf(who, conv_id);
  Invoke<pb::Int64Value>(client_, Method("Conversations", "StartSeq"), std::move(r),
                         Keyed(UserKey(who), true), std::move(done), Int64Of);
}

// ---- Messages ----

RemoteMessageService::RemoteMessageService(rpc::Client& client, Coalescing coalescing,
                                           core::MetricsRegistry& metrics)
    : client_(client),
      coalesce_(coalescing.max_items > 0),
      sends_(
          {.max_in_flight = coalescing.max_in_flight,
           .max_items = coalescing.max_items,
           .batch_items = &BatchItems(metrics, "SendMany")},
          [&client](const std::string& key) { return client.Owner(key); },
          [&client](const std::string& key, std::vector<pb::SendRequest> items,
                    core::Callback<ItemResults<SendResult>> done) {
            CallBatch<pb::SendBatch, pb::SendBatchResult, pb::SendRequest, SendResult>(
                client, Method("Messages", "SendMany"), key, std::move(items), std::move(done),
                [](const pb::SendBatchResult& out) {
                  ItemResults<SendResult> results;
                  for (const auto& item : out.items()) {
                    core::Status st = rpc::FromProto(item.status());
                    if (st.ok()) {
                      results.emplace_back(FromProto(item.result()));
                    } else {
                      results.emplace_back(ForClients(std::move(st)));
                    }
                  }
                  return results;
                },
                [&client](pb::SendRequest one, core::Callback<SendResult> cb) {
                  std::string k = SendConvId(one.who().user_id(), one.to_group(), one.to_id());
                  Invoke<pb::SendResult>(client, Method("Messages", "Send"), std::move(one),
                                         Keyed(std::move(k), true), std::move(cb),
                                         [](const pb::SendResult& x) { return FromProto(x); });
                });
          }) {}

void RemoteMessageService::Send(Principal who, SendRequest request, core::Callback<SendResult> done,
                                OrderedCallback ordered) {
  std::string key = SendConvId(who.user_id, request.to_group, request.to_id);
  pb::SendRequest r;
  ToProto(who, r.mutable_who());
  r.set_to_group(request.to_group);
  r.set_to_id(request.to_id);
  r.set_client_msg_id(std::move(request.client_msg_id));
  r.set_type(std::move(request.type));
  r.set_body(std::move(request.body));
  r.set_qos1(request.qos1);
  r.set_priority(static_cast<int32_t>(request.priority));
  ToProto(request.origin_conn, r.mutable_origin_conn());
  // Traced: the hop to the logic node is a span of its own (batching and
  // queueing included), its context in the item.
  auto span = core::trace::Span::Start(
      "rpc Messages/Send", request.trace.valid() ? request.trace : core::trace::Current(),
      core::trace::SpanKind::kClient);
  if (span.recording()) {
    span.Set("rpc.system", "grpc");
    span.Set("rpc.coalesced", coalesce_);
    r.set_traceparent(span.context().Traceparent());
  }
  // Sends are idempotent by client_msg_id: a retry returns the first result.
  core::Callback<SendResult> answer =
      [ordered = std::move(ordered), done = std::move(done),
       span = std::move(span)](core::StatusOr<SendResult> result) mutable {
        if (!result.ok()) span.SetError(std::string(result.status().message()));
        span.End();
        if (result.ok() && ordered) std::move(ordered)();
        std::move(done)(std::move(result));
      };
  if (!coalesce_) {
    return Invoke<pb::SendResult>(client_, Method("Messages", "Send"), std::move(r),
                                  Keyed(std::move(key), true), std::move(answer),
                                  [](const pb::SendResult& x) { return FromProto(x); });
  }
  sends_.Add(std::move(key), std::move(r), std::move(answer));
}

void RemoteMessageService::PostSystem(int64_t group_id, int64_t by, std::string body_json,
                                      core::Callback<store::Message> done) {
  pb::PostSystemRequest r;
  r.set_group_id(group_id);
  r.set_by(by);
  r.set_body_json(std::move(body_json));
  Invoke<pb::Message>(client_, Method("Messages", "PostSystem"), std::move(r), Once(),
                      std::move(done), [](const pb::Message& x) { return FromProto(x); });
}

void RemoteMessageService::Recall(Principal who, int64_t msg_id,
                                  core::Callback<store::Message> done) {
  pb::RecallRequest r;
  ToProto(who, r.mutable_who());
  r.set_msg_id(msg_id);
  Invoke<pb::Message>(client_, Method("Messages", "Recall"), std::move(r), Once(), std::move(done),
                      [](const pb::Message& x) { return FromProto(x); });
}

}  // namespace mpim::service::remote
