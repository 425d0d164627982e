#include "service/remote/logic_server.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "rpc/status.h"
#include "service/remote/convert.h"

namespace mpim::service::remote {
namespace {

using Done = rpc::Server::Done;

// A service callback that fills the response with `fill(value)` and
// answers; an error answers as it is.
template <typename T, typename Fill>
core::Callback<T> Reply(Done done, Fill fill) {
  return [done = std::move(done), fill = std::move(fill)](core::StatusOr<T> result) mutable {
    if (!result.ok()) return done(result.status());
    fill(*result);
    done(absl::OkStatus());
  };
}

core::DoneCallback ReplyDone(Done done) {
  return [done = std::move(done)](core::Status s) { done(std::move(s)); };
}

// A batch's countdown: `done` answers the call once every item has.
struct Countdown {
  std::atomic<int> left;
  Done done;
  void One() {
    if (left.fetch_sub(1, std::memory_order_acq_rel) == 1) done(absl::OkStatus());
  }
};

// Runs `item(i, countdown)` for each of `n` items (each answers into its
// own slot of the response, made beforehand), then answers the call.
template <typename Item>
void ForEachItem(int n, Done done, Item item) {
  if (n == 0) return done(absl::OkStatus());
  auto countdown = std::make_shared<Countdown>();
  countdown->left = n;
  countdown->done = std::move(done);
  for (int i = 0; i < n; ++i) item(i, countdown);
}

template <typename Proto>
std::optional<std::string> OptionalBytes(bool has, const Proto& value) {
  return has ? std::optional<std::string>(value) : std::nullopt;
}

SendRequest SendRequestOf(const pb::SendRequest& r) {
  SendRequest request;
  request.to_group = r.to_group();
  request.to_id = r.to_id();
  request.client_msg_id = r.client_msg_id();
  request.type = r.type();
  request.body = r.body();
  request.qos1 = r.qos1();
  request.priority = PriorityFromWire(r.priority());
  request.origin_conn = FromProto(r.origin_conn());
  return request;
}

// A send served here, as a span of the trace its traceparent names (not
// recording when it names none); the request carries the span's context.
core::trace::Span ServeSpan(const pb::SendRequest& r, SendRequest& request) {
  if (r.traceparent().empty()) return {};
  auto parent = core::trace::SpanContext::Parse(r.traceparent());
  if (!parent) return {};
  auto span =
      core::trace::Span::Start("serve Messages/Send", *parent, core::trace::SpanKind::kServer);
  request.trace = span.context();
  return span;
}

// `done` that ends `span` first (with the outcome).
core::Callback<SendResult> EndingSpan(core::trace::Span span, core::Callback<SendResult> done) {
  if (!span.recording()) return done;
  return [span = std::move(span), done = std::move(done)](core::StatusOr<SendResult> r) mutable {
    if (r.ok()) {
      span.Set("mpim.conv_id", r->conv_id);
      span.Set("mpim.seq", r->seq);
    } else {
      span.SetError(std::string(r.status().message()));
    }
    span.End();
    std::move(done)(std::move(r));
  };
}

}  // namespace

template <typename Request, typename Response, typename Body>
void LogicServer::On(rpc::Server& server, const char* service, const char* method, Body body) {
  server.Handle<Request, Response>(
      std::string("/mpim.logic.") + service + "/" + method,
      [this, body = std::move(body), span_name = std::string("serve ") + service + "/" + method](
          const rpc::CallContext& context, const Request& request, Response* response, Done done) {
        const LogicServices* services = ready_.load(std::memory_order_acquire);
        if (!services) return done(absl::UnavailableError("logic node starting"));
        if (context.deadline && *context.deadline <= std::chrono::steady_clock::now()) {
          return done(absl::DeadlineExceededError("the caller's deadline has passed"));
        }
        // A traced caller: the call is a span here, current while the
        // service runs on this thread (what it calls joins the trace).
        auto span =
            core::trace::Span::Start(span_name, context.trace, core::trace::SpanKind::kServer);
        if (!span.recording()) return body(*services, request, response, std::move(done));
        core::trace::Scope scope(span.context());
        auto shared = std::make_shared<core::trace::Span>(std::move(span));
        body(*services, request, response, [shared, done = std::move(done)](core::Status s) {
          if (!s.ok()) shared->SetError(std::string(s.message()));
          shared->End();
          done(std::move(s));
        });
      });
}

void LogicServer::SetServices(const LogicServices& services) {
  services_ = std::make_unique<LogicServices>(services);
  ready_.store(services_.get(), std::memory_order_release);
}

LogicServer::LogicServer(rpc::Server& server) {
  using S = const LogicServices&;

  // ---- Auth ----
  On<pb::RegisterRequest, pb::Int64Value>(
      server, "Auth", "Register", [](S s, const auto& r, auto* out, Done done) {
        s.auth->Register(
            {r.username(), r.password(), r.display_name(), r.client_address()},
            Reply<int64_t>(std::move(done), [out](int64_t id) { out->set_value(id); }));
      });
  On<pb::LoginRequest, pb::LoginResult>(
      server, "Auth", "Login", [](S s, const auto& r, auto* out, Done done) {
        s.auth->Login({r.username(), r.password(), r.device(), r.client_address()},
                      Reply<LoginResult>(std::move(done), [out](const LoginResult& x) {
                        out->set_user_id(x.user_id);
                        out->set_session_id(x.session_id);
                        ToProto(x.tokens, out->mutable_tokens());
                      }));
      });
  On<pb::RefreshRequest, pb::TokenPair>(
      server, "Auth", "Refresh", [](S s, const auto& r, auto* out, Done done) {
        s.auth->Refresh(
            r.refresh_token(),
            Reply<TokenPair>(std::move(done), [out](const TokenPair& t) { ToProto(t, out); }));
      });
  On<pb::Principal, pb::Empty>(server, "Auth", "Logout", [](S s, const auto& r, auto*, Done done) {
    s.auth->Logout(FromProto(r), ReplyDone(std::move(done)));
  });
  On<pb::RevokedRequest, pb::RevokedPage>(
      server, "Auth", "Revoked", [](S s, const auto& r, auto* out, Done done) {
        s.store->sessions().ListRevoked(
            r.since_ms(), r.after_session(), store::kMaxPageLimit,
            Reply<store::Page<store::Session>>(std::move(done),
                                               [out](const store::Page<store::Session>& page) {
                                                 for (const store::Session& x : page.items) {
                                                   pb::RevokedSession* o = out->add_sessions();
                                                   o->set_session_id(x.session_id);
                                                   o->set_revoked_at(x.revoked_at);
                                                 }
                                                 out->set_has_more(page.has_more);
                                               }));
      });

  // ---- Admin ----
  auto fill_job = [](pb::JobInfo* out, const store::Job& j) {
    out->set_job_id(j.job_id);
    out->set_kind(j.kind);
    out->set_payload(j.payload);
    out->set_state(static_cast<int32_t>(j.state));
    out->set_attempts(j.attempts);
    out->set_max_attempts(j.max_attempts);
    out->set_run_at(j.run_at);
    out->set_last_error(j.last_error);
    out->set_created_at(j.created_at);
  };
  On<pb::JobListRequest, pb::JobPage>(
      server, "Admin", "ListJobs", [fill_job](S s, const auto& r, auto* out, Done done) {
        store::JobFilter filter{.kind = r.kind(), .after_job = r.after_job(), .limit = r.limit()};
        if (r.has_state()) {
          if (r.state() < 0 || r.state() > 2) {
            return done(absl::InvalidArgumentError("state: must be ready, leased or dead"));
          }
          filter.state = static_cast<store::JobState>(r.state());
        }
        s.admin->ListJobs(filter, Reply<store::Page<store::Job>>(
                                      std::move(done), [out, fill_job](const auto& page) {
                                        for (const store::Job& j : page.items) {
                                          fill_job(out->add_jobs(), j);
                                        }
                                        out->set_has_more(page.has_more);
                                      }));
      });
  On<pb::JobIdRequest, pb::JobInfo>(
      server, "Admin", "GetJob", [fill_job](S s, const auto& r, auto* out, Done done) {
        s.admin->GetJob(r.job_id(),
                        Reply<store::Job>(std::move(done), [out, fill_job](const store::Job& j) {
                          fill_job(out, j);
                        }));
      });
  On<pb::JobIdRequest, pb::Empty>(server, "Admin", "RetryJob",
                                  [](S s, const auto& r, auto*, Done done) {
                                    s.admin->RetryJob(r.job_id(), ReplyDone(std::move(done)));
                                  });
  On<pb::JobIdRequest, pb::Empty>(server, "Admin", "DeleteJob",
                                  [](S s, const auto& r, auto*, Done done) {
                                    s.admin->DeleteJob(r.job_id(), ReplyDone(std::move(done)));
                                  });
  On<pb::Empty, pb::AdminStats>(
      server, "Admin", "Stats", [](S s, const auto&, auto* out, Done done) {
        s.admin->Stats(Reply<AdminStats>(std::move(done), [out](const AdminStats& x) {
          out->set_ready(x.ready);
          out->set_leased(x.leased);
          out->set_dead(x.dead);
          out->set_sessions(x.sessions);
          out->set_users(x.users);
        }));
      });

  // ---- Devices ----
  auto fill_device = [](pb::DeviceInfo* out, const DeviceInfo& d) {
    out->set_device_id(d.device_id);
    out->set_platform(d.platform);
    out->set_created_at(d.created_at);
  };
  On<pb::DeviceRegisterRequest, pb::DeviceInfo>(
      server, "Devices", "Register", [fill_device](S s, const auto& r, auto* out, Done done) {
        s.devices->Register(
            FromProto(r.who()), r.platform(), r.token(),
            Reply<DeviceInfo>(std::move(done),
                              [out, fill_device](const DeviceInfo& d) { fill_device(out, d); }));
      });
  On<pb::Principal, pb::DeviceList>(
      server, "Devices", "List", [fill_device](S s, const auto& r, auto* out, Done done) {
        s.devices->List(FromProto(r), Reply<std::vector<DeviceInfo>>(
                                          std::move(done), [out, fill_device](const auto& list) {
                                            for (const DeviceInfo& d : list) {
                                              fill_device(out->add_devices(), d);
                                            }
                                          }));
      });
  On<pb::DeviceDeleteRequest, pb::Empty>(
      server, "Devices", "Delete", [](S s, const auto& r, auto*, Done done) {
        s.devices->Delete(FromProto(r.who()), r.device_id(), ReplyDone(std::move(done)));
      });

  // ---- Users ----
  auto fill_profile = [](pb::UserProfile* out) {
    return [out](const UserProfile& u) { ToProto(u, out); };
  };
  On<pb::UserGetRequest, pb::UserProfile>(
      server, "Users", "Get", [fill_profile](S s, const auto& r, auto* out, Done done) {
        s.users->Get(r.user_id(), Reply<UserProfile>(std::move(done), fill_profile(out)));
      });
  On<pb::LastSeen, pb::Empty>(
      server, "Users", "TouchLastSeen", [](S s, const auto& r, auto*, Done done) {
        s.store->users().TouchLastSeen(r.user_id(), r.ts_ms(), ReplyDone(std::move(done)));
      });
  On<pb::UserUpdateRequest, pb::UserProfile>(
      server, "Users", "Update", [fill_profile](S s, const auto& r, auto* out, Done done) {
        ProfileUpdate update{OptionalBytes(r.has_display_name(), r.display_name()),
                             OptionalBytes(r.has_avatar_url(), r.avatar_url())};
        s.users->Update(r.user_id(), std::move(update),
                        Reply<UserProfile>(std::move(done), fill_profile(out)));
      });
  On<pb::UserSearchRequest, pb::UserPage>(
      server, "Users", "Search", [](S s, const auto& r, auto* out, Done done) {
        s.users->Search(r.prefix(), r.after_username(), r.limit(),
                        Reply<UserPage>(std::move(done), [out](const UserPage& page) {
                          for (const UserProfile& u : page.users) ToProto(u, out->add_users());
                          out->set_has_more(page.has_more);
                        }));
      });

  // ---- Friends ----
  auto fill_friends = [](pb::FriendPage* out) {
    return [out](const FriendPage& page) { ToProto(page, out); };
  };
  On<pb::FriendListRequest, pb::FriendPage>(
      server, "Friends", "List", [fill_friends](S s, const auto& r, auto* out, Done done) {
        s.friends->List(r.user_id(), r.after(), r.limit(),
                        Reply<FriendPage>(std::move(done), fill_friends(out)));
      });
  On<pb::FriendPairRequest, pb::FriendOutcome>(
      server, "Friends", "Request", [](S s, const auto& r, auto* out, Done done) {
        s.friends->Request(r.user_id(), r.other(),
                           Reply<FriendOutcome>(std::move(done), [out](FriendOutcome o) {
                             out->set_outcome(o == FriendOutcome::kFriends ? 1 : 0);
                           }));
      });
  On<pb::FriendPairRequest, pb::Empty>(
      server, "Friends", "Remove", [](S s, const auto& r, auto*, Done done) {
        s.friends->Remove(r.user_id(), r.other(), ReplyDone(std::move(done)));
      });
  On<pb::FriendRequestsRequest, pb::FriendRequests>(
      server, "Friends", "Requests", [](S s, const auto& r, auto* out, Done done) {
        s.friends->Requests(r.user_id(), r.limit(),
                            Reply<FriendRequests>(std::move(done), [out](const FriendRequests& x) {
                              for (const FriendEntry& e : x.incoming)
                                ToProto(e, out->add_incoming());
                              for (const FriendEntry& e : x.outgoing)
                                ToProto(e, out->add_outgoing());
                            }));
      });
  On<pb::FriendPairRequest, pb::Empty>(
      server, "Friends", "Block", [](S s, const auto& r, auto*, Done done) {
        s.friends->Block(r.user_id(), r.other(), ReplyDone(std::move(done)));
      });
  On<pb::FriendPairRequest, pb::Empty>(
      server, "Friends", "Unblock", [](S s, const auto& r, auto*, Done done) {
        s.friends->Unblock(r.user_id(), r.other(), ReplyDone(std::move(done)));
      });
  On<pb::FriendListRequest, pb::FriendPage>(
      server, "Friends", "ListBlocked", [fill_friends](S s, const auto& r, auto* out, Done done) {
        s.friends->ListBlocked(r.user_id(), r.after(), r.limit(),
                               Reply<FriendPage>(std::move(done), fill_friends(out)));
      });

  // ---- Groups ----
  auto fill_view = [](pb::GroupView* out) {
    return [out](const GroupView& v) { ToProto(v, out); };
  };
  On<pb::GroupCreateRequest, pb::Group>(
      server, "Groups", "Create", [](S s, const auto& r, auto* out, Done done) {
        NewGroupRequest request{r.name(), {r.members().begin(), r.members().end()}, r.is_public()};
        s.groups->Create(FromProto(r.who()), std::move(request),
                         Reply<store::Group>(std::move(done),
                                             [out](const store::Group& g) { ToProto(g, out); }));
      });
  On<pb::GroupRequest, pb::GroupView>(
      server, "Groups", "Get", [fill_view](S s, const auto& r, auto* out, Done done) {
        s.groups->Get(FromProto(r.who()), r.group_id(),
                      Reply<GroupView>(std::move(done), fill_view(out)));
      });
  On<pb::GroupUpdateRequest, pb::GroupView>(
      server, "Groups", "Update", [fill_view](S s, const auto& r, auto* out, Done done) {
        s.groups->Update(FromProto(r.who()), r.group_id(), OptionalBytes(r.has_name(), r.name()),
                         r.has_is_public() ? std::optional<bool>(r.is_public()) : std::nullopt,
                         Reply<GroupView>(std::move(done), fill_view(out)));
      });
  On<pb::GroupRequest, pb::Empty>(
      server, "Groups", "Delete", [](S s, const auto& r, auto*, Done done) {
        s.groups->Delete(FromProto(r.who()), r.group_id(), ReplyDone(std::move(done)));
      });
  On<pb::GroupMembersRequest, pb::MemberPage>(
      server, "Groups", "ListMembers", [](S s, const auto& r, auto* out, Done done) {
        s.groups->ListMembers(FromProto(r.who()), r.group_id(), r.after(), r.limit(),
                              Reply<MemberPage>(std::move(done), [out](const MemberPage& page) {
                                for (const MemberView& m : page.members) {
                                  ToProto(m, out->add_members());
                                }
                                out->set_has_more(page.has_more);
                              }));
      });
  On<pb::GroupAddRequest, pb::UserIds>(
      server, "Groups", "AddMembers", [](S s, const auto& r, auto* out, Done done) {
        s.groups->AddMembers(
            FromProto(r.who()), r.group_id(), {r.user_ids().begin(), r.user_ids().end()},
            Reply<std::vector<int64_t>>(std::move(done), [out](const std::vector<int64_t>& ids) {
              out->mutable_user_ids()->Add(ids.begin(), ids.end());
            }));
      });
  On<pb::GroupMemberRequest, pb::Empty>(
      server, "Groups", "RemoveMember", [](S s, const auto& r, auto*, Done done) {
        s.groups->RemoveMember(FromProto(r.who()), r.group_id(), r.user_id(),
                               ReplyDone(std::move(done)));
      });
  On<pb::GroupMemberRequest, pb::GroupMember>(
      server, "Groups", "SetRole", [](S s, const auto& r, auto* out, Done done) {
        auto role = GroupRoleFromWire(r.role());
        if (!role.ok()) return done(role.status());
        s.groups->SetRole(
            FromProto(r.who()), r.group_id(), r.user_id(), *role,
            Reply<store::GroupMember>(std::move(done), [out](const auto& m) { ToProto(m, out); }));
      });
  On<pb::Principal, pb::GroupViews>(
      server, "Groups", "ListMine", [](S s, const auto& r, auto* out, Done done) {
        s.groups->ListMine(FromProto(r),
                           Reply<std::vector<GroupView>>(std::move(done), [out](const auto& views) {
                             for (const GroupView& v : views) {
                               ToProto(v, out->add_groups());
                             }
                           }));
      });

  // ---- Conversations ----
  auto fill_page = [](pb::MessagePage* out) {
    return [out](const MessagePage& page) { ToProto(page, out); };
  };
  On<pb::ConvListRequest, pb::ConversationViews>(
      server, "Conversations", "List", [](S s, const auto& r, auto* out, Done done) {
        s.conversations->List(
            FromProto(r.who()), r.limit(),
            Reply<std::vector<ConversationView>>(std::move(done), [out](const auto& views) {
              for (const ConversationView& v : views) {
                ToProto(v, out->add_conversations());
              }
            }));
      });
  On<pb::HistoryRequest, pb::MessagePage>(
      server, "Conversations", "History", [fill_page](S s, const auto& r, auto* out, Done done) {
        s.conversations->History(
            FromProto(r.who()), r.conv_id(),
            r.has_before_seq() ? std::optional<int64_t>(r.before_seq()) : std::nullopt,
            r.has_after_seq() ? std::optional<int64_t>(r.after_seq()) : std::nullopt, r.limit(),
            Reply<MessagePage>(std::move(done), fill_page(out)));
      });
  On<pb::SyncRequest, pb::MessagePage>(
      server, "Conversations", "Sync", [fill_page](S s, const auto& r, auto* out, Done done) {
        s.conversations->Sync(FromProto(r.who()), r.conv_id(), r.after_seq(), r.limit(),
                              Reply<MessagePage>(std::move(done), fill_page(out)));
      });
  On<pb::CursorRequest, pb::Int64Value>(
      server, "Conversations", "Read", [](S s, const auto& r, auto* out, Done done) {
        s.conversations->Read(
            FromProto(r.who()), r.conv_id(), r.seq(), FromProto(r.origin_conn()),
            Reply<int64_t>(std::move(done), [out](int64_t seq) { out->set_value(seq); }));
      });
  On<pb::CursorRequest, pb::Empty>(
      server, "Conversations", "Ack", [](S s, const auto& r, auto*, Done done) {
        s.conversations->Ack(FromProto(r.who()), r.conv_id(), r.seq(), ReplyDone(std::move(done)));
      });
  On<pb::AckBatch, pb::AckBatchResult>(
      server, "Conversations", "AckMany", [](S s, const auto& r, auto* out, Done done) {
        for (int i = 0; i < r.items_size(); ++i) out->add_items();
        ForEachItem(r.items_size(), std::move(done),
                    [&](int i, const std::shared_ptr<Countdown>& countdown) {
                      const pb::CursorRequest& a = r.items(i);
                      google::rpc::Status* slot = out->mutable_items(i);
                      s.conversations->Ack(FromProto(a.who()), a.conv_id(), a.seq(),
                                           [slot, countdown](core::Status st) {
                                             rpc::ToProto(st, slot);
                                             countdown->One();
                                           });
                    });
      });
  On<pb::ConvRequest, pb::Empty>(
      server, "Conversations", "Typing", [](S s, const auto& r, auto*, Done done) {
        s.conversations->Typing(FromProto(r.who()), r.conv_id(), ReplyDone(std::move(done)));
      });
  On<pb::ConvUpdateRequest, pb::Empty>(
      server, "Conversations", "Update", [](S s, const auto& r, auto*, Done done) {
        s.conversations->Update(FromProto(r.who()), r.conv_id(),
                                r.has_muted() ? std::optional<bool>(r.muted()) : std::nullopt,
                                r.has_pinned() ? std::optional<bool>(r.pinned()) : std::nullopt,
                                ReplyDone(std::move(done)));
      });
  On<pb::SearchRequest, pb::MessageList>(
      server, "Conversations", "Search", [](S s, const auto& r, auto* out, Done done) {
        s.conversations->Search(
            FromProto(r.who()), r.query(), OptionalBytes(r.has_conv_id(), r.conv_id()), r.limit(),
            Reply<std::vector<store::Message>>(std::move(done), [out](const auto& messages) {
              for (const store::Message& m : messages) {
                ToProto(m, out->add_messages());
              }
            }));
      });
  On<pb::Principal, pb::PendingList>(
      server, "Conversations", "Pending", [](S s, const auto& r, auto* out, Done done) {
        s.conversations->Pending(FromProto(r), Reply<std::vector<store::PendingConversation>>(
                                                   std::move(done), [out](const auto& list) {
                                                     for (const auto& c : list) {
                                                       ToProto(c, out->add_conversations());
                                                     }
                                                   }));
      });
  On<pb::ConvRequest, pb::Int64Value>(
      server, "Conversations", "StartSeq", [](S s, const auto& r, auto* out, Done done) {
        s.conversations->StartSeq(
            FromProto(r.who()), r.conv_id(),
            Reply<int64_t>(std::move(done), [out](int64_t seq) { out->set_value(seq); }));
      });

  // ---- Messages ----
  auto fill_message = [](pb::Message* out) {
    return [out](const store::Message& m) { ToProto(m, out); };
  };
  On<pb::SendRequest, pb::SendResult>(
      server, "Messages", "Send", [](S s, const auto& r, auto* out, Done done) {
        SendRequest request = SendRequestOf(r);
        core::trace::Span span = ServeSpan(r, request);
        s.messages->Send(FromProto(r.who()), std::move(request),
                         EndingSpan(std::move(span), Reply<SendResult>(std::move(done),
                                                                       [out](const SendResult& x) {
                                                                         ToProto(x, out);
                                                                       })),
                         nullptr);
      });
  On<pb::SendBatch, pb::SendBatchResult>(
      server, "Messages", "SendMany", [](S s, const auto& r, auto* out, Done done) {
        for (int i = 0; i < r.items_size(); ++i) out->add_items();
        ForEachItem(r.items_size(), std::move(done),
                    [&](int i, const std::shared_ptr<Countdown>& countdown) {
                      pb::SendBatchItem* slot = out->mutable_items(i);
                      SendRequest request = SendRequestOf(r.items(i));
                      core::trace::Span span = ServeSpan(r.items(i), request);
                      if (span.recording()) span.Set("mpim.batch_items", r.items_size());
                      s.messages->Send(
                          FromProto(r.items(i).who()), std::move(request),
                          EndingSpan(std::move(span),
                                     [slot, countdown](core::StatusOr<SendResult> result) {
                                       if (result.ok()) {
                                         ToProto(*result, slot->mutable_result());
                                       } else {
                                         rpc::ToProto(result.status(), slot->mutable_status());
                                       }
                                       countdown->One();
                                     }),
                          nullptr);
                    });
      });
  On<pb::PostSystemRequest, pb::Message>(
      server, "Messages", "PostSystem", [fill_message](S s, const auto& r, auto* out, Done done) {
        s.messages->PostSystem(r.group_id(), r.by(), r.body_json(),
                               Reply<store::Message>(std::move(done), fill_message(out)));
      });
  On<pb::RecallRequest, pb::Message>(
      server, "Messages", "Recall", [fill_message](S s, const auto& r, auto* out, Done done) {
        s.messages->Recall(FromProto(r.who()), r.msg_id(),
                           Reply<store::Message>(std::move(done), fill_message(out)));
      });
}

}  // namespace mpim::service::remote
