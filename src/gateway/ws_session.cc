#include "gateway/ws_session.h"

#include <strings.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>

#include "core/logging.h"
#include "core/metrics.h"
#include "gateway/client_frame.h"
#include "gateway/frames.h"
#include "gateway/json.h"
#include "gateway/message_json.h"
#include "gateway/session_registry.h"

namespace mpim::gateway {
namespace {

// Where a send's `ordered` callback ran (StartNextSend).
constexpr int kSendCallRunning = 0;
constexpr int kOrderedInCall = 1;
constexpr int kSendCallReturned = 2;
constexpr int64_t kDrainLimitMs = 5000;
constexpr uint16_t kCloseUnauthenticated = 4001;
constexpr uint16_t kCloseKicked = 4003;
constexpr uint16_t kCloseSlowConsumer = 4008;
constexpr uint16_t kCloseRateLimited = 4029;
constexpr uint16_t kCloseTryAgainLater = 1013;
constexpr uint16_t kCloseServiceRestart = 1012;
constexpr uint16_t kCloseInternalError = 1011;
// Messages kept for a session between its registration and its hello.
constexpr size_t kMaxEarlyMessages = 1000;
// A node's sessions resync at random moments within this long
// (WsSession::RequestResync): one hello-sized read each, spread out.
constexpr int64_t kResyncSpreadMs = 2000;

// A message read from the store, as a push of it would carry it.
std::shared_ptr<const OutMessage> PushedFromStore(const store::Message& m) {
  auto out = std::make_shared<OutMessage>();  // normal priority, qos 1
  out->conv_id = m.conv_id;
  out->seq = m.seq;
  out->frame = std::make_shared<const std::string>(MessageEventText(m));
  return out;
}

const core::Logger& Log() {
  static const core::Logger log("ws");
  return log;
}

// Metric children looked up once; the hot path only adds.
struct WsMetrics {
  core::Gauge& sessions;
  core::Counter& frames_out;
  core::Counter& bytes_out;
  core::Counter& resent;
  core::Counter& frames_in;
  core::CounterFamily& closes;
  core::Histogram& send_seconds;
  core::Counter& start_failures;
  core::Counter& resyncs;
};

// Real elapsed time for the latency histogram only (sub-millisecond
// buckets); everything the session decides by time reads ctx_.clock.
int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

WsMetrics& Metrics() {
  static WsMetrics m = [] {
    core::MetricsRegistry& r = core::DefaultRegistry();
    return WsMetrics{
        r.Gauge("mpim_ws_sessions", "Authenticated WebSocket sessions.").With({}),
        r.Counter("mpim_ws_frames_out_total", "Frames written to WebSocket sessions.").With({}),
        r.Counter("mpim_ws_bytes_out_total", "Bytes of frames written to WebSocket sessions.")
            .With({}),
        r.Counter("mpim_ws_resent_total", "qos 1 messages sent again for want of an ack.").With({}),
        r.Counter("mpim_ws_frames_in_total", "Frames received from WebSocket sessions.").With({}),
        r.Counter("mpim_ws_closes_total", "WebSocket sessions closed by the server, by code.",
                  {"code"}),
        r.Histogram("mpim_ws_send_seconds",
                    "From a send frame read to its reply queued (durable), by the server's clock.")
            .With({}),
        r.Counter("mpim_ws_start_failures_total",
                  "Conversations whose start on a socket could not be read (live delivery "
                  "went on from the first message held).")
            .With({}),
        r.Counter("mpim_ws_resyncs_total",
                  "Sessions that checked their conversations against the store after "
                  "deliveries to their node may have been lost (a bus gap, routes lost).")
            .With({}),
    };
  }();
  return m;
}

// The token from `Authorization: Bearer` or `?token=`; empty if neither.
std::string TokenOf(const net::HttpRequest& req) {
  std::string_view header = req.Header("authorization");
  if (header.size() > 7 && strncasecmp(header.data(), "bearer ", 7) == 0) {
    return std::string(header.substr(7));
  }
  if (auto q = req.Query("token")) return std::string(*q);
  return {};
}

core::StatusOr<std::string> ConvIdField(const boost::json::object& frame) {
  return RequiredString(frame, "conv_id");
}

core::StatusOr<int64_t> IntField(const boost::json::object& frame, std::string_view name,
                                 std::optional<int64_t> fallback = std::nullopt) {
  const boost::json::value* v = frame.if_contains(name);
  if (!v || v->is_null()) {
    if (fallback) return *fallback;
    return absl::InvalidArgumentError(std::string(name) + ": required");
  }
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return absl::InvalidArgumentError(std::string(name) + ": must be an integer");
}

}  // namespace

WsSession::WsSession(GatewayContext& ctx, std::shared_ptr<net::WsConnection> conn)
    : ctx_(ctx),
      conn_(std::move(conn)),
      conn_id_{ctx.node_id, conn_->id()},
      post_conn_(conn_),
      loop_(conn_->loop()) {}

void WsSession::Accept(GatewayContext& ctx, std::shared_ptr<net::WsConnection> conn) {
  auto session = std::make_shared<WsSession>(ctx, conn);
  conn->SetHandler(session);
  if (ctx.unauthenticated && TokenOf(conn->request()).empty()) {
    session->auth_slot_ = ctx.unauthenticated->TryAcquire();
    // Closed right after the handshake, so the client still reads the code.
    if (!session->auth_slot_) session->CloseWith(kCloseTryAgainLater, "too many unauthenticated");
  }
}

// ---- delivery entry points (any thread)

void WsSession::PostToConn(absl::AnyInvocable<void()> fn) {
  if (auto conn = post_conn_.lock()) conn->Post(std::move(fn));
}

void WsSession::OnThread(absl::AnyInvocable<void(WsSession&)> fn) {
  PostToConn([self = shared_from_this(), fn = std::move(fn)]() mutable {
    if (self->state_ != State::kClosing && self->conn_) fn(*self);
  });
}

void WsSession::OnThreadAll(std::vector<std::shared_ptr<WsSession>> sessions,
                            absl::AnyInvocable<void(WsSession&)> fn, std::function<void()> after) {
  // Posted through any session whose connection is still there.
  std::shared_ptr<net::WsConnection> poster;
  for (const auto& s : sessions) {
    if ((poster = s->post_conn_.lock())) break;
  }
  if (!poster) {
    if (after) after();
    return;
  }
  // A post that never runs (its connection went, the io thread stopped) is
  // dropped with what it holds: the guard still calls `after` then, so
  // nobody waits for it forever.
  struct Guard {
    std::function<void()> fn;
    ~Guard() {
      if (fn) fn();
    }
  };
  auto guard = std::make_shared<Guard>();  // made in place: a copy would call it twice
  guard->fn = std::move(after);
  poster->Post(
      [sessions = std::move(sessions), fn = std::move(fn), guard = std::move(guard)]() mutable {
        for (const auto& s : sessions) {
          if (s->state_ != State::kClosing && s->conn_) fn(*s);
        }
        guard.reset();
      });
}

void WsSession::DeliverMessage(std::vector<std::shared_ptr<WsSession>> sessions,
                               std::shared_ptr<const OutMessage> msg) {
  DeliverMessages(std::move(sessions), {std::move(msg)});
}

void WsSession::DeliverMessages(std::vector<std::shared_ptr<WsSession>> sessions,
                                std::vector<std::shared_ptr<const OutMessage>> msgs,
                                std::function<void()> taken) {
  OnThreadAll(
      std::move(sessions),
      [msgs = std::move(msgs), now = int64_t{0}](WsSession& s) mutable {
        if (now == 0) now = s.ctx_.clock.SteadyMs();
        if (s.state_ == State::kActive) {
          for (const auto& m : msgs) s.AcceptMessage(m, now);
        } else if (s.state_ == State::kAuthenticating) {
          // Registered, hello not out yet.
          for (const auto& m : msgs) {
            if (s.early_.size() < kMaxEarlyMessages) s.early_.push_back(m);
          }
        }
      },
      std::move(taken));
}

void WsSession::DeliverEvent(std::vector<std::shared_ptr<WsSession>> sessions,
                             std::shared_ptr<const std::string> frame, service::Priority priority) {
  OnThreadAll(std::move(sessions), [frame = std::move(frame), priority](WsSession& s) {
    if (s.state_ == State::kActive) s.EnqueueEvent(frame, priority);
  });
}

void WsSession::DeliverKick(std::string reason) {
  OnThread([reason = std::move(reason)](WsSession& s) {
    auto frame = std::make_shared<const std::string>(frames::Kick(reason));
    // The kick goes out before anything else; then the socket closes.
    s.queue_.Clear();
    s.close_after_flush_ = {kCloseKicked, "kicked: " + reason};
    s.Queued(s.queue_.EnqueueReply(std::move(frame), s.MaxBytes()));
    s.state_ = State::kClosing;
  });
}

// ---- connection events (io thread)

void WsSession::OnOpen() {
  auth_deadline_ms_ = ctx_.clock.SteadyMs() + ctx_.config.auth_timeout_ms;
  std::string token = TokenOf(conn_->request());
  if (!token.empty()) Authenticate(token, std::nullopt);
}

void WsSession::OnText(std::string_view text) {
  if (state_ == State::kClosing || state_ == State::kDraining) return;
  Metrics().frames_in.Inc();
  const int64_t read_ns = core::trace::Enabled() ? core::trace::NowUnixNs() : 0;
  ClientFrame decoded;
  if (core::Status s = DecodeClientFrame(text, decoded); !s.ok()) {
    return ReplyError(decoded.rid, s);
  }
  boost::json::object& frame = decoded.fields;
  std::optional<int64_t> rid = decoded.rid;
  const std::string& name = decoded.op;
  if (state_ != State::kActive) {
    if (name != "auth") {
      return ReplyError(rid, absl::UnauthenticatedError("authenticate first"));
    }
    if (state_ == State::kAuthenticating) {
      return ReplyError(rid, absl::InvalidArgumentError("authentication in progress"));
    }
    auto token = RequiredString(frame, "token");
    if (!token.ok()) return ReplyError(rid, token.status());
    return Authenticate(*token, rid);
  }
  if (read_ns && name == "send") return OpSend(frame, rid, read_ns);
  HandleOp(name, frame, rid);
}

void WsSession::OnBinary() {
  ReplyError(std::nullopt, absl::InvalidArgumentError("frame: binary frames are not accepted"));
}

void WsSession::OnWritable() { Pump(); }

void WsSession::OnTick(int64_t now) {
  if (state_ == State::kAwaitingAuth && now >= auth_deadline_ms_) {
    return CloseWith(kCloseUnauthenticated, "authentication timeout");
  }
  if (state_ == State::kDraining && now - draining_since_ms_ > kDrainLimitMs) {
    // Pump closed it once the replies were out: the closing handshake is on.
    if (!close_after_flush_) return;
    // The replies owed did not all come: close as announced all the same.
    auto [code, reason] = std::move(*close_after_flush_);
    return CloseWith(code, reason);
  }
  if (state_ != State::kActive) return;
  if (resync_at_ms_ != 0 && now >= resync_at_ms_) {
    resync_at_ms_ = 0;
    Resync();
  }
  size_t resent = 0;
  for (auto& [conv_id, conv] : convs_) {
    if (conv.order.FillDue(now, ctx_.config.gap_wait_ms)) FillGap(conv_id, conv);
    resent += queue_.Resend(conv.stream, now, ctx_.config.ack_timeout_ms);
  }
  if (resent > 0) {
    Metrics().resent.Add(static_cast<double>(resent));
    if (queue_.bytes() > MaxBytes()) return CloseWith(kCloseSlowConsumer, "slow consumer");
    Pump();
  }
}

void WsSession::OnClosed() {
  state_ = State::kClosing;
  auth_slot_.Release();
  if (registered_) {
    Metrics().sessions.Dec();
    int64_t user = principal_.user_id;
    // A route that cannot be removed now expires with this node's heartbeat
    // (route/route_table.h); nothing waits for the answer.
    ctx_.routes.Remove(user, conn_id_, [](core::StatusOr<size_t>) {});
    ctx_.registry.Remove(conn_id_.local);
    ctx_.presence.DropConnection(conn_id_, subscriptions_);
    ctx_.presence.Disconnected(user, ctx_.clock.NowMs());
    ctx_.conversations.SendPendingAcks(principal_);
    registered_ = false;
  }
  queue_.Clear();
  convs_.clear();
  conn_.reset();  // breaks the connection <-> session cycle
}

// ---- authentication

void WsSession::Authenticate(std::string_view token, std::optional<int64_t> rid) {
  auto principal = ctx_.auth.Authenticate(token);
  if (!principal.ok()) {
    if (!rid) return CloseWith(kCloseUnauthenticated, "invalid token");
    return ReplyError(rid, principal.status());  // may retry until the deadline
  }
  Activate(*principal, rid);
}

void WsSession::Activate(service::Principal principal, std::optional<int64_t> rid) {
  state_ = State::kAuthenticating;
  auth_slot_.Release();
  principal_ = principal;
  user_id_.store(principal.user_id, std::memory_order_release);
  hello_rid_ = rid;
  // Registered for live delivery before the hello list is computed, so no
  // message falls between the two: the hello is read once the route table
  // has the route (it may answer later, from another thread).
  ctx_.registry.Add(conn_id_.local, weak_from_this());
  route::Route route{principal.user_id, conn_id_, principal.session_id};
  ctx_.routes.Add(route, [self = shared_from_this(), route](core::StatusOr<size_t> added) {
    self->PostToConn([self, route, ok = added.ok()] {
      if (self->state_ != State::kAuthenticating || !self->conn_) {
        // Closed while the route was being added.
        if (ok) self->ctx_.routes.Remove(route.user_id, route.conn, [](core::StatusOr<size_t>) {});
        if (!self->registered_) self->ctx_.registry.Remove(route.conn.local);
        return;
      }
      if (!ok) {
        self->ctx_.registry.Remove(route.conn.local);
        Log().Warn("route table unavailable", {{"user", route.user_id}});
        return self->CloseWith(kCloseInternalError, "unavailable: try again");
      }
      self->registered_ = true;
      Metrics().sessions.Inc();
      self->ctx_.presence.Connected(route.user_id, self->ctx_.clock.NowMs());
      self->ReadHello();
    });
  });
}

void WsSession::ReadHello() {
  std::optional<int64_t> rid = hello_rid_;
  ctx_.conversations.Pending(
      principal_, [self = shared_from_this(),
                   rid](core::StatusOr<std::vector<store::PendingConversation>> pending) mutable {
        self->PostToConn([self, rid, pending = std::move(pending)]() mutable {
          if (self->state_ != State::kAuthenticating || !self->conn_) return;
          if (!pending.ok()) {
            Log().Warn("hello failed", {{"error", std::string(pending.status().message())}});
            // A logic node shedding load (a reconnect storm) is transient:
            // the client's back-off and retry is the answer, so say so.
            const absl::StatusCode code = pending.status().code();
            const bool transient = code == absl::StatusCode::kUnavailable ||
                                   code == absl::StatusCode::kDeadlineExceeded;
            return self->CloseWith(kCloseInternalError,
                                   transient ? "unavailable: try again" : "internal error");
          }
          std::string fields =
              frames::HelloFields(self->principal_.user_id, self->principal_.session_id, *pending);
          self->state_ = State::kActive;
          // A listed conversation goes on live from the last_seq the hello
          // gives (the client syncs up to it): what it covers is not pushed
          // again, and a later message pushed ahead of last_seq + 1 (fan-outs
          // race, e.g. on a cold member cache) is held as a gap, not taken
          // as the socket's starting point with last_seq + 1 then dropped.
          for (const auto& p : *pending) self->convs_[p.conv_id].order.StartAfter(p.last_seq);
          if (rid) {
            self->Reply(rid, fields);
          } else {
            self->EnqueueReply(std::make_shared<const std::string>(frames::Hello(fields)));
          }
          // Messages pushed while the hello list was read go out after it.
          auto early = std::move(self->early_);
          int64_t now = self->ctx_.clock.SteadyMs();
          for (const auto& m : early) self->AcceptMessage(m, now);
        });
      });
}

// ---- ops

void WsSession::HandleOp(const std::string& op, boost::json::object& frame,
                         std::optional<int64_t> rid) {
  if (op == "send") return OpSend(frame, rid);
  if (op == "ack") return OpAck(frame);
  if (op == "read") return OpRead(frame, rid);
  if (op == "sync") return OpSync(frame, rid);
  if (op == "typing") return OpTyping(frame);
  if (op == "presence.sub") return OpPresence(frame, rid, true);
  if (op == "presence.unsub") return OpPresence(frame, rid, false);
  if (op == "ping") return Reply(rid, frames::PingFields(ctx_.clock.NowMs()));
  if (op == "auth") return ReplyError(rid, absl::InvalidArgumentError("already authenticated"));
  ReplyError(rid, absl::InvalidArgumentError("op: unknown op \"" + op + "\""));
}

void WsSession::OpSend(boost::json::object& frame, std::optional<int64_t> rid, int64_t read_ns) {
  // Traced (tracing on): a trace starts at the frame's read, or continues
  // the one its `traceparent` names; the parse is its first step.
  std::shared_ptr<core::trace::Span> span;
  if (read_ns) {
    std::optional<core::trace::SpanContext> remote;
    if (const auto* tp = frame.if_contains("traceparent"); tp && tp->is_string()) {
      remote = core::trace::SpanContext::Parse(std::string_view(tp->get_string()));
    }
    auto root =
        core::trace::Span::StartRoot("ws send", remote, core::trace::SpanKind::kServer, read_ns);
    if (root.recording()) {
      root.Set("mpim.user_id", principal_.user_id);
      root.Set("mpim.conn", conn_id_.local);
      core::trace::Span::Start("parse", root.context(), core::trace::SpanKind::kInternal, read_ns)
          .End();
      span = std::make_shared<core::trace::Span>(std::move(root));
    }
  }
  auto request = ParseSendRequest(frame);
  if (!request.ok()) {
    if (span) span->SetError(std::string(request.status().message()));
    return ReplyError(rid, request.status());
  }
  request->origin_conn = conn_id_;
  if (span) request->trace = span->context();
  core::Status queued =
      sends_.Queue(SendWindow::Send{std::move(*request), rid, SteadyNs(), std::move(span)});
  if (!queued.ok()) return ReplyError(rid, queued);
  StartNextSend();
}

void WsSession::StartNextSend() {
  while (std::optional<SendWindow::Send> next = sends_.TakeNext()) {
    if (state_ == State::kDraining) {
      // Closing: what is still waiting is refused, not dropped.
      bool restarting = close_after_flush_ && close_after_flush_->first == kCloseServiceRestart;
      OnSendResult(next->rid, SendWindow::ClosingRefusal(restarting), ctx_.clock.SteadyMs());
      continue;
    }
    const uint64_t number = sends_.Start();
    // `ordered` mostly runs inside Send, on this thread: then it only marks
    // `inline_order`; later (a store read came first) it posts.
    auto inline_order = std::make_shared<std::atomic<int>>(kSendCallRunning);
    ctx_.messages.Send(
        principal_, std::move(next->request),
        [self = shared_from_this(), rid = next->rid, received_ns = next->received_ns, number,
         span = std::move(next->span)](core::StatusOr<service::SendResult> r) {
          self->OnThread([rid, received_ns, number, span, r = std::move(r)](WsSession& s) {
            const int64_t now = s.ctx_.clock.SteadyMs();
            Metrics().send_seconds.Observe(static_cast<double>(SteadyNs() - received_ns) / 1e9);
            s.sends_.Finished(number);
            s.OnSendResult(rid, r, now);
            if (span) EndSendSpan(*span, r);
            s.StartNextSend();
            s.Pump();
          });
        },
        [self = shared_from_this(), inline_order, number]() {
          int running = kSendCallRunning;
          if (inline_order->compare_exchange_strong(running, kOrderedInCall)) return;
          self->OnThread([number](WsSession& s) {
            if (s.sends_.Ordered(number)) s.StartNextSend();
          });
        });
    if (inline_order->exchange(kSendCallReturned) == kOrderedInCall) sends_.Ordered(number);
  }
}

void WsSession::EndSendSpan(core::trace::Span& span, const core::StatusOr<service::SendResult>& r) {
  if (r.ok()) {
    span.Set("mpim.conv_id", r->conv_id);
    span.Set("mpim.seq", r->seq);
    span.Set("mpim.msg_id", r->msg_id);
  } else {
    span.SetError(std::string(r.status().message()));
  }
  span.End();
}

void WsSession::OnSendResult(std::optional<int64_t> rid,
                             const core::StatusOr<service::SendResult>& r, int64_t now_ms) {
  if (r.ok()) {
    // It gets the reply instead of a msg event: handed on, so the next
    // message of the conversation is no gap.
    Conversation& conv = convs_[r->conv_id];
    conv.order.NoteOwn(r->seq, now_ms, [&](const OutMessage& m) { EnqueueMessage(conv, m); });
    if (conv.order.NeedsStart()) AskStart(r->conv_id, conv);
    return Reply(rid, frames::SendResultFields(r->msg_id, r->conv_id, r->seq, r->ts));
  }
  ReplyError(rid, r.status());
  if (r.status().code() != absl::StatusCode::kResourceExhausted || state_ != State::kActive) return;
  if (sends_.Strike(now_ms, ctx_.config.rate_limit_close_after)) {
    CloseAfterReplies(kCloseRateLimited, "rate limited repeatedly");
  }
}

void WsSession::OpAck(boost::json::object& frame) {
  // No reply: the client's TCP stack must not wait for ours (issue 25).
  if (conn_) conn_->AcknowledgeNow();
  auto conv_id = ConvIdField(frame);
  auto seq = IntField(frame, "seq");
  if (!conv_id.ok()) return ReplyError(std::nullopt, conv_id.status());
  if (!seq.ok()) return ReplyError(std::nullopt, seq.status());
  if (auto it = convs_.find(*conv_id); it != convs_.end()) {
    queue_.Ack(it->second.stream, *seq, ctx_.clock, ctx_.config.ack_timeout_ms);
  }
  ctx_.conversations.Ack(principal_, *conv_id, *seq, [self = shared_from_this()](core::Status s) {
    // `ack` has no reply (protocol.md): only a bad ack is told, never a
    // cursor that could not be recorded just now (a logic node away). The
    // next ack is cumulative, and what this one would have saved costs at
    // most a re-delivery the client drops by seq.
    if (s.ok() || s.code() == absl::StatusCode::kUnavailable ||
        s.code() == absl::StatusCode::kDeadlineExceeded) {
      return;
    }
    self->OnThread([s](WsSession& session) { session.ReplyError(std::nullopt, s); });
  });
}

void WsSession::OpRead(boost::json::object& frame, std::optional<int64_t> rid) {
  auto conv_id = ConvIdField(frame);
  if (!conv_id.ok()) return ReplyError(rid, conv_id.status());
  auto seq = IntField(frame, "seq");
  if (!seq.ok()) return ReplyError(rid, seq.status());
  ++pending_replies_;
  ctx_.conversations.Read(principal_, *conv_id, *seq, conn_id_,
                          [self = shared_from_this(), rid](core::StatusOr<int64_t> read_seq) {
                            self->OnThread([rid, read_seq](WsSession& s) {
                              --s.pending_replies_;
                              if (!read_seq.ok()) return s.ReplyError(rid, read_seq.status());
                              s.Reply(rid, frames::ReadFields(*read_seq));
                            });
                          });
}

void WsSession::OpSync(boost::json::object& frame, std::optional<int64_t> rid) {
  auto conv_id = ConvIdField(frame);
  if (!conv_id.ok()) return ReplyError(rid, conv_id.status());
  auto after = IntField(frame, "after_seq");
  if (!after.ok()) return ReplyError(rid, after.status());
  auto limit = IntField(frame, "limit", std::min(50, ctx_.page_max));
  if (!limit.ok()) return ReplyError(rid, limit.status());
  if (*limit < 1 || *limit > ctx_.page_max) {
    return ReplyError(rid, absl::InvalidArgumentError("limit: must be between 1 and " +
                                                      std::to_string(ctx_.page_max)));
  }
  ++pending_replies_;
  size_t byte_cap = static_cast<size_t>(ctx_.config.send_queue_max_bytes) / 2;
  ctx_.conversations.Sync(
      principal_, *conv_id, *after, static_cast<int>(*limit),
      [self = shared_from_this(), rid, byte_cap](core::StatusOr<service::MessagePage> page) {
        if (!page.ok()) {
          return self->OnThread([rid, s = page.status()](WsSession& ws) {
            --ws.pending_replies_;
            ws.ReplyError(rid, s);
          });
        }
        // A page stays well under the session's queue bound: past half of
        // it the page ends early and says has_more.
        size_t bytes = 0, keep = 0;
        for (; keep < page->messages.size(); ++keep) {
          bytes += page->messages[keep].body.size() + 256;
          if (keep > 0 && bytes > byte_cap) break;
        }
        if (keep < page->messages.size()) {
          page->messages.resize(keep);
          page->has_more = true;
        }
        // Encoded off the io thread; only the queueing happens there.
        auto text = std::make_shared<const std::string>(
            MessagePageText(frames::ReplyOkPrefix(rid), page->messages, page->has_more));
        self->OnThread([text](WsSession& ws) {
          --ws.pending_replies_;
          ws.EnqueueReply(text);
        });
      });
}

void WsSession::OpTyping(boost::json::object& frame) {
  if (conn_) conn_->AcknowledgeNow();  // no reply either
  auto conv_id = ConvIdField(frame);
  if (!conv_id.ok()) return ReplyError(std::nullopt, conv_id.status());
  ctx_.conversations.Typing(principal_, *conv_id, [self = shared_from_this()](core::Status s) {
    if (s.ok()) return;
    self->OnThread([s](WsSession& ws) { ws.ReplyError(std::nullopt, s); });
  });
}

void WsSession::OpPresence(boost::json::object& frame, std::optional<int64_t> rid, bool subscribe) {
  const boost::json::value* users = frame.if_contains("users");
  if (!users || !users->is_array()) {
    return ReplyError(rid, absl::InvalidArgumentError("users: required, an array of ids"));
  }
  std::vector<int64_t> ids;
  for (const auto& u : users->get_array()) {
    if (!u.is_string())
      return ReplyError(rid, absl::InvalidArgumentError("users: ids are strings"));
    auto id = ParseId(std::string_view(u.get_string()), "users");
    if (!id.ok()) return ReplyError(rid, id.status());
    ids.push_back(*id);
  }
  if (!subscribe) {
    ctx_.presence.Unsubscribe(conn_id_, ids);
    std::erase_if(subscriptions_,
                  [&](int64_t u) { return std::find(ids.begin(), ids.end(), u) != ids.end(); });
    return Reply(rid, "");
  }
  std::vector<int64_t> added;
  for (int64_t id : ids) {
    if (std::find(subscriptions_.begin(), subscriptions_.end(), id) == subscriptions_.end()) {
      added.push_back(id);
    }
  }
  if (static_cast<int64_t>(subscriptions_.size() + added.size()) > ctx_.config.max_subscriptions) {
    return ReplyError(rid, absl::InvalidArgumentError(
                               "users: at most " + std::to_string(ctx_.config.max_subscriptions) +
                               " subscriptions per session"));
  }
  ctx_.presence.Subscribe(conn_id_, added);
  subscriptions_.insert(subscriptions_.end(), added.begin(), added.end());
  Reply(rid, "");
  // The current state of each, right away.
  for (int64_t id : ids) {
    route::UserPresence p = ctx_.presence.Get(id);
    EnqueueEvent(std::make_shared<const std::string>(frames::Presence(id, p.online, p.last_seen)),
                 service::Priority::kNormal);
  }
}

// ---- replies

void WsSession::Reply(std::optional<int64_t> rid, std::string fields) {
  if (!rid) return;  // nothing asked for a reply
  EnqueueReply(std::make_shared<const std::string>(frames::ReplyOk(rid, fields)));
}

void WsSession::ReplyError(std::optional<int64_t> rid, const core::Status& status) {
  EnqueueReply(std::make_shared<const std::string>(frames::ReplyError(rid, status)));
}

// ---- ordered delivery

void WsSession::AcceptMessage(const std::shared_ptr<const OutMessage>& msg, int64_t now) {
  Conversation& conv = convs_[msg->conv_id];
  conv.order.Accept(msg, now, [&](const OutMessage& m) { EnqueueMessage(conv, m); });
  if (conv.order.NeedsStart()) AskStart(msg->conv_id, conv);
}

void WsSession::AskStart(const std::string& conv_id, Conversation& conv) {
  conv.order.StartAsked();
  ctx_.conversations.StartSeq(
      principal_, conv_id, [self = shared_from_this(), conv_id](core::StatusOr<int64_t> start) {
        self->OnThread([conv_id, start = std::move(start)](WsSession& s) {
          auto it = s.convs_.find(conv_id);
          if (it == s.convs_.end()) return;
          Conversation& conv = it->second;
          const int64_t now = s.ctx_.clock.SteadyMs();
          auto emit = [&](const OutMessage& m) { s.EnqueueMessage(conv, m); };
          if (start.ok()) return conv.order.Start(*start, now, emit);
          Metrics().start_failures.Inc();
          conv.order.StartFailed(now, emit);
        });
      });
}

void WsSession::FillGap(const std::string& conv_id, Conversation& conv) {
  ConversationOrder::FillRange range = conv.order.StartFill(ctx_.page_max);
  ctx_.conversations.Sync(
      principal_, conv_id, range.after_seq, range.limit,
      [self = shared_from_this(), conv_id](core::StatusOr<service::MessagePage> page) {
        std::vector<std::shared_ptr<const OutMessage>> fill;
        if (page.ok()) {
          for (const auto& m : page->messages) fill.push_back(PushedFromStore(m));
        }
        self->OnThread([conv_id, fill = std::move(fill), failed = !page.ok(),
                        has_more = page.ok() && page->has_more](WsSession& s) {
          auto it = s.convs_.find(conv_id);
          if (it == s.convs_.end()) return;
          Conversation& conv = it->second;
          const int64_t now = s.ctx_.clock.SteadyMs();
          if (failed) return conv.order.FillFailed(now);
          bool again = conv.order.ApplyFill(
              fill, has_more, now, [&](const OutMessage& m) { s.EnqueueMessage(conv, m); });
          if (again && s.state_ == State::kActive) s.FillGap(conv_id, conv);
        });
      });
}

void WsSession::RequestResync() {
  OnThread([](WsSession& s) {
    // A later request replaces an earlier one still waiting: what was lost
    // before the later cause must be read after it.
    thread_local std::minstd_rand random(std::random_device{}());
    s.resync_at_ms_ = s.ctx_.clock.SteadyMs() + 1 +
                      static_cast<int64_t>(random() % static_cast<uint64_t>(kResyncSpreadMs));
  });
}

void WsSession::Resync() {
  Metrics().resyncs.Inc();
  ctx_.conversations.Pending(
      principal_, [self = shared_from_this()](
                      core::StatusOr<std::vector<store::PendingConversation>> pending) mutable {
        self->OnThread([pending = std::move(pending)](WsSession& s) {
          if (s.state_ != State::kActive) return;
          if (!pending.ok()) {
            // Try again later: nothing of what was missed is read yet.
            Log().Warn("resync failed", {{"error", std::string(pending.status().message())}});
            s.resync_at_ms_ = s.ctx_.clock.SteadyMs() + kResyncSpreadMs;
            return;
          }
          for (const store::PendingConversation& p : *pending) {
            auto it = s.convs_.find(p.conv_id);
            if (it != s.convs_.end() && it->second.order.last_seq() >= p.last_seq) continue;
            s.FetchAsPushed(p.conv_id, p.last_seq);
          }
        });
      });
}

void WsSession::FetchAsPushed(const std::string& conv_id, int64_t seq) {
  ctx_.conversations.Sync(
      principal_, conv_id, seq - 1, 1,
      [self = shared_from_this(), conv_id](core::StatusOr<service::MessagePage> page) {
        if (!page.ok() || page->messages.empty()) return;  // the next resync, sync or hello
        std::shared_ptr<const OutMessage> out = PushedFromStore(page->messages.front());
        self->OnThread([out = std::move(out)](WsSession& s) {
          if (s.state_ != State::kActive) return;
          s.AcceptMessage(out, s.ctx_.clock.SteadyMs());
        });
      });
}

void WsSession::EnqueueMessage(Conversation& conv, const OutMessage& msg) {
  if (state_ == State::kClosing || state_ == State::kDraining) return;
  Queued(
      queue_.Enqueue(OutboundQueue::Frame{msg.frame, &conv.stream, msg.seq, msg.qos1, msg.may_wait},
                     msg.priority, MaxBytes()));
}

void WsSession::EnqueueEvent(std::shared_ptr<const std::string> frame, service::Priority priority) {
  if (state_ == State::kClosing || state_ == State::kDraining) return;
  Queued(queue_.Enqueue(OutboundQueue::Frame{std::move(frame)}, priority, MaxBytes()));
}

void WsSession::EnqueueReply(std::shared_ptr<const std::string> frame) {
  if (state_ == State::kClosing) return;  // draining sessions still answer
  Queued(queue_.EnqueueReply(std::move(frame), MaxBytes()));
}

void WsSession::Queued(bool within) {
  if (!within) return CloseWith(kCloseSlowConsumer, "slow consumer");
  Pump();
}

void WsSession::Pump() {
  if (!conn_) return;
  OutboundQueue::Pumped pumped = queue_.Pump(*conn_, ctx_.clock, ctx_.config.ack_timeout_ms);
  if (pumped.frames > 0) {
    Metrics().frames_out.Add(static_cast<double>(pumped.frames));
    Metrics().bytes_out.Add(static_cast<double>(pumped.bytes));
  }
  if (pumped.refused || queue_.frames() > 0) return;
  bool owed = sends_.owed() || pending_replies_ > 0;
  if (close_after_flush_ && !owed) {
    auto [code, reason] = *close_after_flush_;
    close_after_flush_.reset();
    Metrics().closes.With({std::to_string(code)}).Inc();
    conn_->Close(code, reason);
  }
}

void WsSession::OnDrain(uint16_t code, std::string_view reason) {
  // The sends already handed to the store get their replies first.
  if (state_ == State::kActive) return CloseAfterReplies(code, std::string(reason));
  if (state_ != State::kDraining) CloseWith(code, reason);
}

void WsSession::CloseAfterReplies(uint16_t code, std::string reason) {
  if (state_ != State::kActive) return;
  state_ = State::kDraining;
  draining_since_ms_ = ctx_.clock.SteadyMs();
  close_after_flush_ = {code, std::move(reason)};
  // Pushed events no longer go out; replies owed still do.
  queue_.DropEvents();
  Pump();
}

void WsSession::CloseWith(uint16_t code, std::string_view reason) {
  if (!conn_) return;
  if (code == kCloseSlowConsumer) {
    Log().Info("closing slow consumer",
               {{"conn", conn_id_.ToString()}, {"bytes", static_cast<int64_t>(queue_.bytes())}});
  }
  state_ = State::kClosing;
  queue_.Clear();
  close_after_flush_.reset();
  Metrics().closes.With({std::to_string(code)}).Inc();
  conn_->Close(code, reason);
}

}  // namespace mpim::gateway
