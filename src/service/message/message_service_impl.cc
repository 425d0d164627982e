#include "service/message/message_service_impl.h"

#include <chrono>

#include "core/logging.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "service/errors.h"
#include "service/validation.h"
#include "store/common.h"
#include "store/conv_id.h"

namespace mpim::service {
namespace {

core::Status ValidateClientMsgId(const std::string& id) {
  if (id.empty() || id.size() > 64 || Utf8Length(id) < 0) {
    return absl::InvalidArgumentError("client_msg_id: must be 1-64 characters");
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("client_msg_id: must not contain control characters");
    }
  }
  return absl::OkStatus();
}

struct MessageMetrics {
  core::Counter& stored;
  core::Counter& duplicates;
};

MessageMetrics& Metrics() {
  static MessageMetrics m{
      core::DefaultRegistry()
          .Counter("mpim_messages_stored_total", "Messages persisted (duplicates excluded).")
          .With({}),
      core::DefaultRegistry()
          .Counter("mpim_messages_duplicate_total",
                   "Sends answered with the first result of their client_msg_id.")
          .With({}),
  };
  return m;
}

}  // namespace

MessageServiceImpl::MessageServiceImpl(const core::LimitsConfig& limits,
                                       const core::MessagesConfig& messages, store::Store& store,
                                       BlockCache& blocks, Fanout& fanout, Indexer* indexer,
                                       core::SnowflakeGenerator& ids, core::Clock& clock)
    : limits_(limits),
      messages_(messages),
      store_(store),
      blocks_(blocks),
      fanout_(fanout),
      indexer_(indexer),
      ids_(ids),
      clock_(clock),
      send_limiter_(static_cast<double>(limits.send_per_sec),
                    static_cast<double>(limits.send_burst)) {}

void MessageServiceImpl::Send(Principal who, SendRequest req, core::Callback<SendResult> done,
                              OrderedCallback ordered) {
  if (auto s = ValidateClientMsgId(req.client_msg_id); !s.ok()) return std::move(done)(s);
  if (req.type == "system") {
    return std::move(done)(absl::InvalidArgumentError("type: clients cannot send system messages"));
  }
  if (req.type != "text" && req.type != "custom") {
    return std::move(done)(absl::InvalidArgumentError("type: must be \"text\" or \"custom\""));
  }
  if (static_cast<int64_t>(req.body.size()) > limits_.body_max_bytes) {
    return std::move(done)(core::PayloadTooLargeError(
        "body: larger than " + std::to_string(limits_.body_max_bytes) + " bytes"));
  }
  if (req.to_id <= 0) return std::move(done)(absl::InvalidArgumentError("to: bad id"));
  if (!req.to_group && req.to_id == who.user_id) {
    return std::move(done)(absl::InvalidArgumentError("to: you cannot send to yourself"));
  }
  const core::trace::SpanContext trace = req.trace.valid() ? req.trace : core::trace::Current();
  {
    auto span = core::trace::Span::Start("rate limit", trace);
    if (int64_t wait = send_limiter_.TryAcquire(who.user_id, clock_.SteadyMs()); wait > 0) {
      span.SetError("rate_limited");
      span.Set("mpim.retry_after_ms", wait);
      return std::move(done)(core::RateLimitedError("sending too fast", wait));
    }
  }

  store::AppendRequest append;
  append.msg_id = ids_.Next();
  append.conv_id =
      req.to_group ? store::GroupConvId(req.to_id) : store::PrivateConvId(who.user_id, req.to_id);
  append.sender = who.user_id;
  append.recipient = req.to_id;
  append.type = req.type;
  append.body = std::move(req.body);
  append.ts = clock_.NowMs();
  append.client_msg_id = req.client_msg_id;

  // Appends once the sender is allowed to send here.
  // The store takes writes in the order they are queued: once queued, the
  // send's place is fixed.
  auto check = core::trace::Span::Start(req.to_group ? "membership check" : "block check", trace);
  auto proceed = [this, append = std::move(append), origin = req.origin_conn, qos1 = req.qos1,
                  priority = req.priority, done = std::move(done), ordered = std::move(ordered),
                  trace, check = std::move(check)](core::Status allowed) mutable {
    if (!allowed.ok()) check.SetError(std::string(allowed.message()));
    check.End();
    if (!allowed.ok()) return std::move(done)(allowed);
    Append(std::move(append), origin, qos1, priority, trace,
           [done = std::move(done)](core::StatusOr<store::AppendResult> r) mutable {
             if (!r.ok()) return std::move(done)(r.status());
             const store::Message& m = r->message;
             std::move(done)(SendResult{m.msg_id, m.conv_id, m.seq, m.ts});
           });
    if (ordered) std::move(ordered)();
  };

  int64_t to = req.to_id;
  if (req.to_group) {
    // Only members send to a group.
    store_.groups().GetMember(
        to, who.user_id,
        [this, to,
         proceed = std::move(proceed)](core::StatusOr<store::GroupMember> member) mutable {
          if (member.ok()) return proceed(absl::OkStatus());
          if (member.status().code() != absl::StatusCode::kNotFound) {
            return proceed(StorageError(member.status()));
          }
          // Not a member: of a group that exists (403) or of none (404)?
          store_.groups().Get(
              to, [to, proceed = std::move(proceed)](core::StatusOr<store::Group> group) mutable {
                if (!group.ok() && group.status().code() == absl::StatusCode::kNotFound) {
                  return proceed(absl::NotFoundError("group " + std::to_string(to) + " not found"));
                }
                if (!group.ok()) return proceed(StorageError(group.status()));
                proceed(absl::PermissionDeniedError("not a member of group " + std::to_string(to)));
              });
        });
    return;
  }
  // A user who blocks the sender receives nothing from them.
  blocks_.IsBlocked(
      to, who.user_id, [proceed = std::move(proceed)](core::StatusOr<bool> blocked) mutable {
        if (!blocked.ok()) return proceed(StorageError(blocked.status()));
        if (*blocked) {
          return proceed(absl::PermissionDeniedError("this user does not accept your messages"));
        }
        proceed(absl::OkStatus());
      });
}

void MessageServiceImpl::Append(store::AppendRequest append, route::ConnId origin_conn, bool qos1,
                                service::Priority priority, core::trace::SpanContext trace,
                                core::Callback<store::AppendResult> done) {
  std::string what =
      (append.conv_id.rfind("g:", 0) == 0 ? "group " : "user ") + std::to_string(append.recipient);
  // Dedup, seq and the group commit, as one step of the send's trace.
  auto span = core::trace::Span::Start("store append", trace);
  if (span.recording()) {
    span.Set("mpim.conv_id", append.conv_id);
    span.Set("mpim.msg_id", append.msg_id);
  }
  store_.messages().Append(
      append, [this, what, origin_conn, qos1, priority, trace, span = std::move(span),
               done = std::move(done)](core::StatusOr<store::AppendResult> result) mutable {
        EndAppendSpan(span, result);
        if (!result.ok()) {
          if (result.status().code() == absl::StatusCode::kNotFound) {
            return std::move(done)(absl::NotFoundError(what + " not found"));
          }
          if (result.status().code() == absl::StatusCode::kInvalidArgument) {
            return std::move(done)(result.status());
          }
          return std::move(done)(StorageError(result.status()));
        }
        if (result->duplicate) {
          // Delivered when it was first written.
          Metrics().duplicates.Inc();
          return std::move(done)(std::move(*result));
        }
        Metrics().stored.Inc();
        if (indexer_) indexer_->Add(result->message);
        store::Message m = result->message;
        // The answer waits for the hand-off (for a large group: until its
        // fan-out job is durable); a failed hand-off does not fail the send,
        // the message is durable and members find it through sync.
        core::trace::Scope scope(trace);
        fanout_.Message(m, origin_conn, qos1, priority,
                        [result = std::move(*result), done = std::move(done)](
                            core::Status) mutable { std::move(done)(std::move(result)); });
      });
}

void MessageServiceImpl::EndAppendSpan(core::trace::Span& span,
                                       const core::StatusOr<store::AppendResult>& result) {
  if (!span.recording()) return;
  if (!result.ok()) {
    span.SetError(std::string(result.status().message()));
  } else {
    span.Set("mpim.seq", result->message.seq);
    span.Set("mpim.duplicate", result->duplicate);
  }
  // The transaction the write rode in, when its completion runs here.
  if (const store::CommitInfo* commit = store::CurrentCommit(); commit && commit->writes) {
    auto tx = core::trace::Span::Start("store commit", span.context(),
                                       core::trace::SpanKind::kInternal, commit->start_unix_ns);
    tx.Set("mpim.commit_writes", static_cast<int64_t>(commit->writes));
    tx.End(commit->end_unix_ns);
  }
  span.End();
}

void MessageServiceImpl::PostSystem(int64_t group_id, int64_t by, std::string body_json,
                                    core::Callback<store::Message> done) {
  store::AppendRequest append;
  append.msg_id = ids_.Next();
  append.conv_id = store::GroupConvId(group_id);
  append.sender = by;
  append.recipient = group_id;
  append.type = "system";
  append.body = std::move(body_json);
  append.ts = clock_.NowMs();
  Append(std::move(append), {}, true, Priority::kNormal, core::trace::Current(),
         [done = std::move(done)](core::StatusOr<store::AppendResult> r) mutable {
           if (!r.ok()) return std::move(done)(r.status());
           std::move(done)(std::move(r->message));
         });
}

void MessageServiceImpl::Recall(Principal who, int64_t msg_id,
                                core::Callback<store::Message> done) {
  store_.messages().Get(msg_id, [this, who, msg_id,
                                 done = std::move(done)](core::StatusOr<store::Message> m) mutable {
    if (!m.ok()) {
      if (m.status().code() == absl::StatusCode::kNotFound) {
        return std::move(done)(
            absl::NotFoundError("message " + std::to_string(msg_id) + " not found"));
      }
      return std::move(done)(StorageError(m.status()));
    }
    bool own = m->sender == who.user_id;
    bool in_window = clock_.NowMs() - m->ts <= messages_.recall_window_ms;
    if (own && in_window) return DoRecall(std::move(*m), std::move(done));
    auto ref = store::ParseConvId(m->conv_id);
    if (ref && ref->type == store::ConvType::kGroup) {
      // Group owners and admins recall at any time.
      int64_t group = ref->a;
      store_.groups().GetMember(
          group, who.user_id,
          [this, own, m = std::move(*m),
           done = std::move(done)](core::StatusOr<store::GroupMember> member) mutable {
            if (member.ok() && member->role != store::GroupRole::kMember) {
              return DoRecall(std::move(m), std::move(done));
            }
            if (!member.ok() && member.status().code() != absl::StatusCode::kNotFound) {
              return std::move(done)(StorageError(member.status()));
            }
            std::move(done)(
                absl::PermissionDeniedError(own ? "the recall window has passed"
                                                : "only the sender or a group admin may recall"));
          });
      return;
    }
    std::move(done)(absl::PermissionDeniedError(own ? "the recall window has passed"
                                                    : "only the sender may recall this message"));
  });
}

void MessageServiceImpl::DoRecall(store::Message m, core::Callback<store::Message> done) {
  if (m.recalled) return std::move(done)(std::move(m));
  store_.messages().Recall(
      m.msg_id, "{}", [this, done = std::move(done)](core::StatusOr<store::Message> r) mutable {
        if (!r.ok()) return std::move(done)(StorageError(r.status()));
        store::Message recalled = *r;
        fanout_.Recall(recalled, [r = std::move(*r), done = std::move(done)](core::Status) mutable {
          std::move(done)(std::move(r));
        });
      });
}

}  // namespace mpim::service
