#include "support/fault_store.h"

#include <gtest/gtest.h>
#include <pthread.h>

#include <algorithm>
#include <set>

namespace mpim::testing {
namespace {

using store::Callback;
using store::DoneCallback;
using store::Page;

// Every "<sub-store>.<Method>" a decorator forwards (filled at static
// initialization by the decorators below), to catch misspelt names in Arm.
std::set<std::string, std::less<>>& KnownMethods() {
  static std::set<std::string, std::less<>> known;
  return known;
}

struct KnownMethod {
  KnownMethod(std::string_view sub, std::string_view method) {
    KnownMethods().insert(std::string(sub) + "." + std::string(method));
  }
};

// The common part of the sub-store decorators.
template <typename Iface>
class Decorator : public Iface {
 public:
  Decorator(FaultStore& faults, Iface& base) : faults_(faults), base_(base) {}

 protected:
  FaultStore& faults_;
  Iface& base_;
};

// Overrides `Method`, whose parameter list `Params` ends with the callback
// `done`, by an intercepted call of the real sub-store's `Method` with the
// other parameters (`...`), and registers its name.
#define MPIM_FAULT_FORWARD(Method, Params, ...)                             \
  static inline const KnownMethod known_##Method{kName, #Method};           \
  void Method Params override {                                             \
    this->faults_.Intercept(kName, #Method, std::move(done), [&](auto cb) { \
      this->base_.Method(__VA_ARGS__ __VA_OPT__(, ) std::move(cb));         \
    });                                                                     \
  }

class FaultUsers final : public Decorator<store::UserStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "users";
  MPIM_FAULT_FORWARD(Create, (const store::NewUser& user, Callback<store::User> done), user)
  MPIM_FAULT_FORWARD(Get, (int64_t user_id, Callback<store::User> done), user_id)
  MPIM_FAULT_FORWARD(GetByUsername, (const std::string& username, Callback<store::User> done),
                     username)
  MPIM_FAULT_FORWARD(GetMany,
                     (const std::vector<int64_t>& user_ids,
                      Callback<std::vector<store::User>> done),
                     user_ids)
  MPIM_FAULT_FORWARD(Update,
                     (int64_t user_id, const store::UserUpdate& update, Callback<store::User> done),
                     user_id, update)
  MPIM_FAULT_FORWARD(TouchLastSeen, (int64_t user_id, int64_t ts_ms, DoneCallback done), user_id,
                     ts_ms)
  MPIM_FAULT_FORWARD(Count, (Callback<int64_t> done), )
  MPIM_FAULT_FORWARD(SearchByPrefix,
                     (const std::string& prefix, const std::string& after_username, int limit,
                      Callback<Page<store::User>> done),
                     prefix, after_username, limit)
};

class FaultSessions final : public Decorator<store::SessionStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "sessions";
  MPIM_FAULT_FORWARD(Create, (const store::NewSession& session, Callback<store::Session> done),
                     session)
  MPIM_FAULT_FORWARD(Get, (int64_t session_id, Callback<store::Session> done), session_id)
  MPIM_FAULT_FORWARD(RotateRefreshToken,
                     (int64_t session_id, const std::string& presented_hash,
                      const std::string& new_hash, int64_t new_expires_at, int64_t now_ms,
                      Callback<store::RefreshResult> done),
                     session_id, presented_hash, new_hash, new_expires_at, now_ms)
  MPIM_FAULT_FORWARD(Revoke, (int64_t session_id, DoneCallback done), session_id)
  MPIM_FAULT_FORWARD(RevokeAllForUser, (int64_t user_id, Callback<int64_t> done), user_id)
  MPIM_FAULT_FORWARD(ListForUser, (int64_t user_id, Callback<std::vector<store::Session>> done),
                     user_id)
  MPIM_FAULT_FORWARD(ListRevoked,
                     (int64_t since_ms, int64_t after_session_id, int limit,
                      Callback<Page<store::Session>> done),
                     since_ms, after_session_id, limit)
  MPIM_FAULT_FORWARD(SetDevice, (const store::Device& device, Callback<store::Device> done), device)
  MPIM_FAULT_FORWARD(ListDevices, (int64_t user_id, Callback<std::vector<store::Device>> done),
                     user_id)
  MPIM_FAULT_FORWARD(DeleteDevice, (int64_t user_id, int64_t device_id, DoneCallback done), user_id,
                     device_id)
  MPIM_FAULT_FORWARD(DevicesOf,
                     (const std::vector<int64_t>& users, Callback<std::vector<store::Device>> done),
                     users)
  MPIM_FAULT_FORWARD(GetDevices,
                     (const std::vector<int64_t>& device_ids,
                      Callback<std::vector<store::Device>> done),
                     device_ids)
};

class FaultFriends final : public Decorator<store::FriendStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "friends";
  MPIM_FAULT_FORWARD(Request,
                     (int64_t from_user, int64_t to_user,
                      Callback<store::FriendRequestOutcome> done),
                     from_user, to_user)
  MPIM_FAULT_FORWARD(DeleteRequest, (int64_t from_user, int64_t to_user, DoneCallback done),
                     from_user, to_user)
  MPIM_FAULT_FORWARD(ListRequests,
                     (int64_t user_id, bool incoming, int64_t after_user, int limit,
                      Callback<Page<store::FriendRequest>> done),
                     user_id, incoming, after_user, limit)
  MPIM_FAULT_FORWARD(Remove, (int64_t user_a, int64_t user_b, DoneCallback done), user_a, user_b)
  MPIM_FAULT_FORWARD(AreFriends, (int64_t user_a, int64_t user_b, Callback<bool> done), user_a,
                     user_b)
  MPIM_FAULT_FORWARD(List,
                     (int64_t user_id, int64_t after_user, int limit,
                      Callback<Page<store::Friend>> done),
                     user_id, after_user, limit)
  MPIM_FAULT_FORWARD(Block, (int64_t blocker, int64_t blocked, DoneCallback done), blocker, blocked)
  MPIM_FAULT_FORWARD(Unblock, (int64_t blocker, int64_t blocked, DoneCallback done), blocker,
                     blocked)
  MPIM_FAULT_FORWARD(IsBlocked, (int64_t blocker, int64_t blocked, Callback<bool> done), blocker,
                     blocked)
  MPIM_FAULT_FORWARD(ListBlocked,
                     (int64_t blocker, int64_t after_user, int limit,
                      Callback<Page<store::BlockEntry>> done),
                     blocker, after_user, limit)
};

class FaultGroups final : public Decorator<store::GroupStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "groups";
  MPIM_FAULT_FORWARD(Create, (const store::NewGroup& group, Callback<store::Group> done), group)
  MPIM_FAULT_FORWARD(Get, (int64_t group_id, Callback<store::Group> done), group_id)
  MPIM_FAULT_FORWARD(Update,
                     (int64_t group_id, const store::GroupUpdate& update,
                      Callback<store::Group> done),
                     group_id, update)
  MPIM_FAULT_FORWARD(Delete, (int64_t group_id, DoneCallback done), group_id)
  MPIM_FAULT_FORWARD(AddMembers,
                     (int64_t group_id, const std::vector<int64_t>& user_ids,
                      Callback<store::AddMembersResult> done),
                     group_id, user_ids)
  MPIM_FAULT_FORWARD(RemoveMember,
                     (int64_t group_id, int64_t user_id, Callback<store::MembershipSpan> done),
                     group_id, user_id)
  MPIM_FAULT_FORWARD(SetRole,
                     (int64_t group_id, int64_t user_id, store::GroupRole role,
                      Callback<store::GroupMember> done),
                     group_id, user_id, role)
  MPIM_FAULT_FORWARD(GetMember,
                     (int64_t group_id, int64_t user_id, Callback<store::GroupMember> done),
                     group_id, user_id)
  MPIM_FAULT_FORWARD(ListMembers,
                     (int64_t group_id, int64_t after_user, int limit,
                      Callback<Page<store::GroupMember>> done),
                     group_id, after_user, limit)
  MPIM_FAULT_FORWARD(ListPastSpans,
                     (int64_t group_id, int64_t user_id,
                      Callback<std::vector<store::MembershipSpan>> done),
                     group_id, user_id)
  MPIM_FAULT_FORWARD(ListForUser,
                     (int64_t user_id, int64_t after_group, int limit,
                      Callback<Page<store::Group>> done),
                     user_id, after_group, limit)
  MPIM_FAULT_FORWARD(ListActive, (int limit, Callback<std::vector<int64_t>> done), limit)
};

class FaultConversations final : public Decorator<store::ConversationStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "conversations";
  MPIM_FAULT_FORWARD(EnsurePrivate,
                     (int64_t user_a, int64_t user_b, Callback<store::Conversation> done), user_a,
                     user_b)
  MPIM_FAULT_FORWARD(Get, (const std::string& conv_id, Callback<store::Conversation> done), conv_id)
  MPIM_FAULT_FORWARD(GetForUser,
                     (int64_t user_id, const std::string& conv_id,
                      Callback<store::UserConversation> done),
                     user_id, conv_id)
  MPIM_FAULT_FORWARD(ListForUser,
                     (int64_t user_id, const std::optional<store::ConversationCursor>& after,
                      int limit, Callback<store::ConversationPage> done),
                     user_id, after, limit)
  MPIM_FAULT_FORWARD(MarkRead,
                     (int64_t user_id, const std::string& conv_id, int64_t seq,
                      Callback<int64_t> done),
                     user_id, conv_id, seq)
  MPIM_FAULT_FORWARD(MarkDelivered,
                     (int64_t session_id, const std::string& conv_id, int64_t seq,
                      Callback<int64_t> done),
                     session_id, conv_id, seq)
  MPIM_FAULT_FORWARD(MarkDeliveredMany,
                     (std::vector<store::DeliveredCursor> cursors, DoneCallback done),
                     std::move(cursors))
  MPIM_FAULT_FORWARD(ListPending,
                     (int64_t user_id, int64_t session_id,
                      Callback<std::vector<store::PendingConversation>> done),
                     user_id, session_id)
  MPIM_FAULT_FORWARD(StartSeq,
                     (int64_t user_id, int64_t session_id, const std::string& conv_id,
                      Callback<int64_t> done),
                     user_id, session_id, conv_id)
  MPIM_FAULT_FORWARD(SetMuted,
                     (int64_t user_id, const std::string& conv_id, bool muted, DoneCallback done),
                     user_id, conv_id, muted)
  MPIM_FAULT_FORWARD(SetPinned,
                     (int64_t user_id, const std::string& conv_id, bool pinned, DoneCallback done),
                     user_id, conv_id, pinned)
  MPIM_FAULT_FORWARD(MutedAmong,
                     (const std::string& conv_id, const std::vector<int64_t>& users,
                      Callback<std::vector<int64_t>> done),
                     conv_id, users)
  MPIM_FAULT_FORWARD(TotalUnread,
                     (const std::vector<int64_t>& users,
                      Callback<std::vector<std::pair<int64_t, int64_t>>> done),
                     users)
};

class FaultMessages final : public Decorator<store::MessageStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "messages";
  MPIM_FAULT_FORWARD(Append,
                     (const store::AppendRequest& request, Callback<store::AppendResult> done),
                     request)
  MPIM_FAULT_FORWARD(Read,
                     (const std::string& conv_id, const store::RangeQuery& query,
                      Callback<Page<store::Message>> done),
                     conv_id, query)
  MPIM_FAULT_FORWARD(Get, (int64_t msg_id, Callback<store::Message> done), msg_id)
  MPIM_FAULT_FORWARD(GetByClientMsgId,
                     (int64_t sender, const std::string& client_msg_id,
                      Callback<store::Message> done),
                     sender, client_msg_id)
  MPIM_FAULT_FORWARD(Recall,
                     (int64_t msg_id, const std::string& tombstone_body,
                      Callback<store::Message> done),
                     msg_id, tombstone_body)
};

class FaultSearch final : public Decorator<store::SearchStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "search";
  MPIM_FAULT_FORWARD(Index,
                     (const std::vector<store::SearchDocument>& docs, Callback<int64_t> done), docs)
  MPIM_FAULT_FORWARD(LastIndexed, (Callback<int64_t> done))
  MPIM_FAULT_FORWARD(Unindexed,
                     (int64_t after_msg_id, int limit, Callback<std::vector<store::Message>> done),
                     after_msg_id, limit)
  MPIM_FAULT_FORWARD(Search,
                     (const store::SearchQuery& query, Callback<std::vector<store::Message>> done),
                     query)
};

class FaultJobs final : public Decorator<store::JobStore> {
 public:
  using Decorator::Decorator;
  static constexpr char kName[] = "jobs";
  MPIM_FAULT_FORWARD(Enqueue, (const store::NewJob& job, Callback<int64_t> done), job)
  MPIM_FAULT_FORWARD(Lease,
                     (const std::string& worker, int max_jobs, int64_t lease_ms,
                      Callback<std::vector<store::Job>> done),
                     worker, max_jobs, lease_ms)
  MPIM_FAULT_FORWARD(Ack, (int64_t job_id, int attempt, DoneCallback done), job_id, attempt)
  MPIM_FAULT_FORWARD(EnqueueMany,
                     (const std::vector<store::NewJob>& jobs, Callback<std::vector<int64_t>> done),
                     jobs)
  MPIM_FAULT_FORWARD(Fail,
                     (int64_t job_id, int attempt, const store::JobFailure& failure,
                      Callback<store::Job> done),
                     job_id, attempt, failure)
  MPIM_FAULT_FORWARD(List, (const store::JobFilter& filter, Callback<Page<store::Job>> done),
                     filter)
  MPIM_FAULT_FORWARD(Get, (int64_t job_id, Callback<store::Job> done), job_id)
  MPIM_FAULT_FORWARD(Delete, (int64_t job_id, DoneCallback done), job_id)
  MPIM_FAULT_FORWARD(Count, (Callback<std::vector<store::JobCount>> done), )
  MPIM_FAULT_FORWARD(Requeue, (int64_t job_id, DoneCallback done), job_id)
};

#undef MPIM_FAULT_FORWARD

// Store::Ping, as "store.Ping".
constexpr char kStoreName[] = "store";
const KnownMethod known_ping{kStoreName, "Ping"};

}  // namespace

struct FaultStore::Subs {
  Subs(FaultStore& f, store::Store& b)
      : users(f, b.users()),
        sessions(f, b.sessions()),
        friends(f, b.friends()),
        groups(f, b.groups()),
        conversations(f, b.conversations()),
        messages(f, b.messages()),
        search(f, b.search()),
        jobs(f, b.jobs()) {}
  FaultUsers users;
  FaultSessions sessions;
  FaultFriends friends;
  FaultGroups groups;
  FaultConversations conversations;
  FaultMessages messages;
  FaultSearch search;
  FaultJobs jobs;
};

FaultStore::FaultStore(store::Store& base)
    : base_(base), subs_(std::make_unique<Subs>(*this, base)), thread_([this] {
        pthread_setname_np(pthread_self(), "fault-store");
        Run();
      }) {}

FaultStore::~FaultStore() {
  Drain();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void FaultStore::Arm(const std::string& method, Fault fault) {
  if (!KnownMethods().contains(method)) {
    ADD_FAILURE() << "FaultStore: no store method is called \"" << method << "\"";
    return;
  }
  std::lock_guard lock(mu_);
  if (fault.times == 0) {
    armed_.erase(method);
  } else {
    armed_[method] = std::move(fault);
  }
}

void FaultStore::FailNext(const std::string& method, int times, absl::Status status) {
  Arm(method, Fault{std::move(status), times});
}

void FaultStore::FailAlways(const std::string& method, absl::Status status) {
  Arm(method, Fault{std::move(status), kEveryCall});
}

void FaultStore::DelayNext(const std::string& method, std::chrono::milliseconds delay, int times) {
  Arm(method, Fault{absl::OkStatus(), times, delay});
}

void FaultStore::HoldNext(const std::string& method, int times) {
  Arm(method, Fault{absl::OkStatus(), times, std::chrono::milliseconds(0), /*hold=*/true});
}

void FaultStore::Disarm(const std::string& method) {
  std::lock_guard lock(mu_);
  armed_.erase(method);
}

void FaultStore::DisarmAll() {
  std::lock_guard lock(mu_);
  armed_.clear();
}

int FaultStore::Release(const std::string& method, int max) {
  int released = 0;
  {
    std::lock_guard lock(mu_);
    auto it = held_.find(method);
    if (it == held_.end()) return 0;
    auto now = std::chrono::steady_clock::now();
    for (; released < max && !it->second.empty(); ++released) {
      due_.emplace(now, std::move(it->second.front()));
      it->second.pop_front();
    }
  }
  cv_.notify_all();
  return released;
}

bool FaultStore::WaitHeld(const std::string& method, int n, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = held_.find(method);
    return it != held_.end() && static_cast<int>(it->second.size()) >= n;
  });
}

int64_t FaultStore::Calls(const std::string& method) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(method);
  return it == calls_.end() ? 0 : it->second;
}

bool FaultStore::WaitCalls(const std::string& method, int64_t n,
                           std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    auto it = calls_.find(method);
    return it != calls_.end() && it->second >= n;
  });
}

void FaultStore::Drain() {
  std::unique_lock lock(mu_);
  armed_.clear();
  auto any_held = [this] {
    return std::any_of(held_.begin(), held_.end(),
                       [](const auto& entry) { return !entry.second.empty(); });
  };
  // Released completions may still end up held: those whose call was made
  // (and armed) before the faults were cleared.
  for (;;) {
    auto now = std::chrono::steady_clock::now();
    for (auto& [method, held] : held_) {
      for (Completion& c : held) due_.emplace(now, std::move(c));
      held.clear();
    }
    cv_.notify_all();
    cv_.wait(lock, [&] { return any_held() || (due_.empty() && running_ == 0); });
    if (!any_held()) return;
  }
}

FaultStore::Action FaultStore::Take(const std::string& method) {
  std::lock_guard lock(mu_);
  ++calls_[method];
  cv_.notify_all();
  auto it = armed_.find(method);
  if (it == armed_.end()) return Action{};
  Fault& fault = it->second;
  Action action{fault.status, fault.delay, fault.hold};
  if (fault.times != kEveryCall && --fault.times <= 0) armed_.erase(it);
  return action;
}

void FaultStore::Later(const std::string& method, const Action& action, Completion completion) {
  {
    std::lock_guard lock(mu_);
    if (action.hold) {
      held_[method].push_back(std::move(completion));
    } else {
      due_.emplace(std::chrono::steady_clock::now() + action.delay, std::move(completion));
    }
  }
  cv_.notify_all();
}

void FaultStore::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (due_.empty()) {
      if (stopping_) return;
      cv_.wait(lock);
      continue;
    }
    auto first = due_.begin();
    if (first->first > std::chrono::steady_clock::now()) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    Completion completion = std::move(first->second);
    due_.erase(first);
    ++running_;
    lock.unlock();
    std::move(completion)();
    lock.lock();
    --running_;
    cv_.notify_all();
  }
}

store::UserStore& FaultStore::users() { return subs_->users; }
store::SessionStore& FaultStore::sessions() { return subs_->sessions; }
store::FriendStore& FaultStore::friends() { return subs_->friends; }
store::GroupStore& FaultStore::groups() { return subs_->groups; }
store::ConversationStore& FaultStore::conversations() { return subs_->conversations; }
store::MessageStore& FaultStore::messages() { return subs_->messages; }
store::SearchStore& FaultStore::search() { return subs_->search; }
store::JobStore& FaultStore::jobs() { return subs_->jobs; }

void FaultStore::Ping(store::DoneCallback done) {
  Intercept(kStoreName, "Ping", std::move(done),
            [this](store::DoneCallback cb) { base_.Ping(std::move(cb)); });
}

void FaultStore::Close() {
  Drain();
  base_.Close();
}

}  // namespace mpim::testing
