#include "gateway/ws_session.h"

#include <strings.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>

#include "core/logging.h"
#include "core/metrics.h"
#include "gateway/client_frame.h"
#include "gateway/frames.h"
#include "gateway/json.h"
#include "gateway/message_json.h"
#include "gateway/session_registry.h"

namespace mpim::gateway {
namespace {

constexpr size_t kReplyQueue = 4;
constexpr int64_t kStrikeWindowMs = 10000;
constexpr size_t kMaxQueuedSends = 1000;
// Sends of one session in the store's queue at once (their order is kept).
constexpr int kMaxSendsInFlight = 64;
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
};

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
    };
  }();
  return m;
}

// Queue index for a priority: urgent first (0) .. low last (3).
size_t QueueOf(service::Priority p) { return 3 - static_cast<size_t>(p); }

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

size_t WsSession::QueuedFrames() const {
  size_t n = 0;
  for (const auto& q : queues_) n += q.size();
  return n;
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
    if (s.state_ == State::kActive) s.Enqueue(Pending{frame, nullptr, 0, false}, priority);
  });
}

void WsSession::DeliverKick(std::string reason) {
  OnThread([reason = std::move(reason)](WsSession& s) {
    auto frame =
        std::make_shared<const std::string>(frames::Kick(reason));
    // The kick goes out before anything else; then the socket closes.
    for (auto& q : s.queues_) q.clear();
    s.queued_bytes_ = 0;
    s.close_after_flush_ = {kCloseKicked, "kicked: " + reason};
    s.Push(kReplyQueue, Pending{frame, nullptr, 0, false});
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
    auto code = close_after_flush_ ? close_after_flush_->first : uint16_t{1011};
    return CloseWith(code, "closing");
  }
  if (state_ != State::kActive) return;
  bool resent = false;
  for (auto& [conv_id, cs] : convs_) {
    if (!cs.held.empty() && !cs.filling && now - cs.gap_since_ms >= ctx_.config.gap_wait_ms) {
      FillGap(conv_id);
    }
    if (now < cs.resend_due_ms) continue;
    cs.resend_due_ms = INT64_MAX;
    for (Unacked& u : cs.unacked) {
      if (now - std::max(u.sent_ms, cs.last_ack_ms) >= ctx_.config.ack_timeout_ms) {
        u.sent_ms = now;
        Metrics().resent.Inc();
        // Re-sent as a plain frame: it stays in the unacked list as it is.
        queues_[QueueOf(service::Priority::kNormal)].push_back(Pending{u.frame, nullptr, 0, false});
        queued_bytes_ += u.frame->size();
        resent = true;
      }
      cs.resend_due_ms = std::min(cs.resend_due_ms,
                                  std::max(u.sent_ms, cs.last_ack_ms) + ctx_.config.ack_timeout_ms);
    }
  }
  if (resent) {
    if (Bytes() > static_cast<size_t>(ctx_.config.send_queue_max_bytes)) {
      return CloseWith(kCloseSlowConsumer, "slow consumer");
    }
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
    registered_ = false;
  }
  for (auto& q : queues_) q.clear();
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
            return self->CloseWith(1011, "internal error");
          }
          std::string fields = frames::HelloFields(self->principal_.user_id,
                                                   self->principal_.session_id, *pending);
          self->state_ = State::kActive;
          self->activated_wall_ms_ = self->ctx_.clock.NowMs();
          // A listed conversation goes on live from the last_seq the hello
          // gives (the client syncs up to it): what it covers is not pushed
          // again, and a later message pushed ahead of last_seq + 1 (fan-outs
          // race, e.g. on a cold member cache) is held as a gap, not taken
          // as the socket's starting point with last_seq + 1 then dropped.
          for (const auto& p : *pending) self->convs_[p.conv_id].last_seq = p.last_seq;
          if (rid) {
            self->Reply(rid, fields);
          } else {
            self->EnqueueReply(
                std::make_shared<const std::string>(frames::Hello(fields)));
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
  if (op == "ping") return Reply(rid, "\"ts\":" + std::to_string(ctx_.clock.NowMs()));
  if (op == "auth") return ReplyError(rid, absl::InvalidArgumentError("already authenticated"));
  ReplyError(rid, absl::InvalidArgumentError("op: unknown op \"" + op + "\""));
}

void WsSession::OpSend(boost::json::object& frame, std::optional<int64_t> rid) {
  auto request = ParseSendRequest(frame);
  if (!request.ok()) return ReplyError(rid, request.status());
  if (sends_.size() >= kMaxQueuedSends) {
    return ReplyError(rid, core::RateLimitedError("too many sends waiting", 1000));
  }
  request->origin_conn = conn_id_;
  sends_.push_back(QueuedSend{std::move(*request), rid, std::chrono::steady_clock::now()});
  StartNextSend();
}

void WsSession::StartNextSend() {
  while (unordered_send_ == 0 && sends_in_flight_ < kMaxSendsInFlight && !sends_.empty()) {
    QueuedSend next = std::move(sends_.front());
    sends_.pop_front();
    if (state_ == State::kDraining) {
      // Closing: what is still waiting is refused, not dropped.
      bool restarting = close_after_flush_ && close_after_flush_->first == kCloseServiceRestart;
      OnSendResult(next.rid,
                   restarting
                       ? absl::UnavailableError("server restarting: send again after reconnecting")
                       : core::RateLimitedError("session closing: rate limited repeatedly",
                                                kStrikeWindowMs));
      continue;
    }
    const uint64_t number = ++sends_started_;
    ++sends_in_flight_;
    unordered_send_ = number;
    // `ordered` mostly runs inside Send, on this thread: then it only marks
    // `inline_order`; later (a store read came first) it posts.
    auto inline_order = std::make_shared<std::atomic<int>>(kSendCallRunning);
    ctx_.messages.Send(
        principal_, std::move(next.request),
        [self = shared_from_this(), rid = next.rid, received = next.received,
         number](core::StatusOr<service::SendResult> r) {
          self->OnThread([rid, received, number, r = std::move(r)](WsSession& s) {
            Metrics().send_seconds.Observe(
                std::chrono::duration<double>(std::chrono::steady_clock::now() - received).count());
            --s.sends_in_flight_;
            if (s.unordered_send_ == number) s.unordered_send_ = 0;
            s.OnSendResult(rid, r);
            s.StartNextSend();
            s.Pump();
          });
        },
        [self = shared_from_this(), inline_order, number]() {
          int running = kSendCallRunning;
          if (inline_order->compare_exchange_strong(running, kOrderedInCall)) return;
          self->OnThread([number](WsSession& s) {
            if (s.unordered_send_ != number) return;
            s.unordered_send_ = 0;
            s.StartNextSend();
          });
        });
    if (inline_order->exchange(kSendCallReturned) == kOrderedInCall) unordered_send_ = 0;
  }
}

void WsSession::OnSendResult(std::optional<int64_t> rid,
                             const core::StatusOr<service::SendResult>& r) {
  if (r.ok()) {
    NoteOwnMessage(r->conv_id, r->seq);
    return Reply(
        rid, frames::SendResultFields(r->msg_id, r->conv_id, r->seq, r->ts));
  }
  ReplyError(rid, r.status());
  if (r.status().code() != absl::StatusCode::kResourceExhausted || state_ != State::kActive) return;
  int64_t now = ctx_.clock.SteadyMs();
  refused_sends_ms_.push_back(now);
  while (!refused_sends_ms_.empty() && now - refused_sends_ms_.front() > kStrikeWindowMs) {
    refused_sends_ms_.pop_front();
  }
  if (static_cast<int64_t>(refused_sends_ms_.size()) >= ctx_.config.rate_limit_close_after) {
    CloseAfterReplies(kCloseRateLimited, "rate limited repeatedly");
  }
}

void WsSession::OpAck(boost::json::object& frame) {
  auto conv_id = ConvIdField(frame);
  auto seq = IntField(frame, "seq");
  if (!conv_id.ok()) return ReplyError(std::nullopt, conv_id.status());
  if (!seq.ok()) return ReplyError(std::nullopt, seq.status());
  if (auto it = convs_.find(*conv_id); it != convs_.end()) {
    ConvState& cs = it->second;
    bool progress = false;
    while (!cs.unacked.empty() && cs.unacked.front().seq <= *seq) {
      unacked_bytes_ -= cs.unacked.front().frame->size();
      cs.unacked.pop_front();
      progress = true;
    }
    if (progress) {
      // What is left went out before now: none is due before this.
      cs.last_ack_ms = ctx_.clock.SteadyMs();
      cs.resend_due_ms =
          cs.unacked.empty() ? INT64_MAX : cs.last_ack_ms + ctx_.config.ack_timeout_ms;
    }
  }
  ctx_.conversations.Ack(principal_, *conv_id, *seq, [self = shared_from_this()](core::Status s) {
    if (s.ok()) return;
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
                              s.Reply(rid, "\"read_seq\":" + std::to_string(*read_seq));
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
            MessagePageText(frames::ReplyPrefix(rid) + "\"ok\":true,", page->messages, page->has_more));
        self->OnThread([text](WsSession& ws) {
          --ws.pending_replies_;
          ws.EnqueueReply(text);
        });
      });
}

void WsSession::OpTyping(boost::json::object& frame) {
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
    std::string frame_text = frames::Presence(id, p.online, p.last_seen);
    Enqueue(Pending{std::make_shared<const std::string>(std::move(frame_text)), nullptr, 0, false},
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
  ConvState& cs = convs_[msg->conv_id];
  if (cs.last_seq != 0 && msg->seq <= cs.last_seq) return;  // already handed on
  if (cs.last_seq == 0 && AckedBeforeThisSocket(*msg)) return;
  if (cs.last_seq == 0 || msg->seq == cs.last_seq + 1) {
    cs.last_seq = msg->seq;
    Enqueue(Pending{msg->frame, &cs, msg->seq, msg->qos1, msg->may_wait}, msg->priority);
    ReleaseHeld(cs);
    return;
  }
  if (cs.held.empty()) cs.gap_since_ms = now;
  cs.held.emplace(msg->seq, msg);
}

bool WsSession::AckedBeforeThisSocket(const OutMessage& msg) const {
  // A message delivered again (a fan-out job re-run after a crash) that this
  // device acked through an earlier socket is not sent again. A conversation
  // the hello listed starts from its last_seq (see Activate); in any other
  // one, the device had acked all there was when it connected, so a message
  // made well before that (2 s: no append is in flight that long) is acked.
  return msg.ts > 0 && msg.ts < activated_wall_ms_ - 2000;
}

void WsSession::NoteOwnMessage(const std::string& conv_id, int64_t seq) {
  // This session sent it and got the reply instead of a msg event: it counts
  // as handed on, so the next message of the conversation is no gap.
  ConvState& cs = convs_[conv_id];
  // Never the socket's starting point: a message of another member stored
  // before it may still be on its way here (a fan-out job pushes after the
  // send's reply), and would then look delivered already.
  if (cs.last_seq == 0 || seq <= cs.last_seq) return;
  if (seq == cs.last_seq + 1) {
    cs.last_seq = seq;
    return ReleaseHeld(cs);
  }
  if (cs.held.empty()) cs.gap_since_ms = ctx_.clock.SteadyMs();
  cs.held.emplace(seq, nullptr);  // known here: skipped when its turn comes
}

void WsSession::ReleaseHeld(ConvState& cs) {
  while (!cs.held.empty()) {
    auto it = cs.held.begin();
    if (it->first <= cs.last_seq) {
      cs.held.erase(it);
      continue;
    }
    if (it->first != cs.last_seq + 1) break;
    auto msg = std::move(it->second);
    int64_t seq = it->first;
    cs.held.erase(it);
    cs.last_seq = seq;
    if (msg) Enqueue(Pending{msg->frame, &cs, msg->seq, msg->qos1, msg->may_wait}, msg->priority);
  }
  if (!cs.held.empty()) cs.gap_since_ms = ctx_.clock.SteadyMs();
}

void WsSession::FillGap(const std::string& conv_id) {
  ConvState& cs = convs_[conv_id];
  cs.filling = true;
  int64_t first_held = cs.held.begin()->first;
  int limit = static_cast<int>(std::min<int64_t>(first_held - cs.last_seq - 1, ctx_.page_max));
  ctx_.conversations.Sync(
      principal_, conv_id, cs.last_seq, std::max(limit, 1),
      [self = shared_from_this(), conv_id](core::StatusOr<service::MessagePage> page) {
        std::vector<std::shared_ptr<const OutMessage>> fill;
        if (page.ok()) {
          for (const auto& m : page->messages) {
            auto out = std::make_shared<OutMessage>();
            out->conv_id = m.conv_id;
            out->seq = m.seq;
            out->frame = std::make_shared<const std::string>(MessageEventText(m));
            fill.push_back(std::move(out));
          }
        }
        self->OnThread([conv_id, fill = std::move(fill), failed = !page.ok()](WsSession& s) {
          auto it = s.convs_.find(conv_id);
          if (it == s.convs_.end()) return;
          ConvState& cs = it->second;
          cs.filling = false;
          if (failed) {
            // The store did not answer (busy, failing disk): try again after
            // another gap_wait_ms rather than skip what it may still hold.
            cs.gap_since_ms = s.ctx_.clock.SteadyMs();
            return;
          }
          for (const auto& m : fill) {
            if (m->seq != cs.last_seq + 1) continue;
            cs.last_seq = m->seq;
            auto own = cs.held.find(m->seq);
            if (own != cs.held.end() && !own->second) continue;  // this session sent it
            s.Enqueue(Pending{m->frame, &cs, m->seq, true}, service::Priority::kNormal);
          }
          // Whatever is still missing was not in the store: skip past it
          // rather than stall the conversation (the client can sync).
          if (!cs.held.empty() && cs.held.begin()->first > cs.last_seq + 1) {
            cs.last_seq = cs.held.begin()->first - 1;
          }
          s.ReleaseHeld(cs);
        });
      });
}

void WsSession::Enqueue(Pending p, service::Priority priority) {
  if (state_ == State::kClosing || state_ == State::kDraining) return;
  int prio = static_cast<int>(priority);
  if (p.conv != nullptr) {
    // Never ahead of an earlier frame of the same conversation: a frame
    // takes at most the priority of the ones of its conversation still queued.
    ConvState& cs = *p.conv;
    if (cs.queued > 0) prio = std::min(prio, cs.queued_min_priority);
    cs.queued_min_priority = prio;
    ++cs.queued;
  }
  Push(QueueOf(static_cast<service::Priority>(prio)), std::move(p));
}

void WsSession::EnqueueReply(std::shared_ptr<const std::string> frame) {
  if (state_ == State::kClosing) return;  // draining sessions still answer
  Push(kReplyQueue, Pending{std::move(frame), nullptr, 0, false});
}

void WsSession::Push(size_t queue, Pending p) {
  queued_bytes_ += p.frame->size();
  queues_[queue].push_back(std::move(p));
  // One frame alone is not a backlog, however large.
  if (Bytes() > static_cast<size_t>(ctx_.config.send_queue_max_bytes) && QueuedFrames() > 1) {
    return CloseWith(kCloseSlowConsumer, "slow consumer");
  }
  Pump();
}

void WsSession::Pump() {
  // Frames go to the connection's buffer, which writes them out together at
  // the end of this turn; a full socket (writing()) stops the pump until
  // OnWritable. Each pass hands over at most kWriteBatchBytes.
  constexpr size_t kWriteBatchBytes = 64 * 1024;
  if (!conn_) return;
  int64_t now = 0;  // read once, when a qos 1 frame goes out
  uint64_t frames = 0, bytes = 0;
  bool more = true;
  while (!conn_->writing() && conn_->buffered() < kWriteBatchBytes) {
    Pending* next = nullptr;
    size_t from = 0;
    for (size_t q : {kReplyQueue, size_t{0}, size_t{1}, size_t{2}, size_t{3}}) {
      if (!queues_[q].empty()) {
        next = &queues_[q].front();
        from = q;
        break;
      }
    }
    if (next == nullptr) break;
    Pending p = std::move(*next);
    queues_[from].pop_front();
    // The string lives on in the unacked list (a qos 1 frame takes the
    // pointer over: no reference count traffic) or in `p`.
    const std::string& text = *p.frame;
    queued_bytes_ -= text.size();
    ++frames;
    bytes += text.size();
    if (p.conv != nullptr) {
      ConvState& cs = *p.conv;
      --cs.queued;
      if (p.qos1) {
        if (now == 0) now = ctx_.clock.SteadyMs();
        unacked_bytes_ += text.size();
        cs.unacked.push_back(Unacked{p.seq, std::move(p.frame), now});
        cs.resend_due_ms = std::min(cs.resend_due_ms, now + ctx_.config.ack_timeout_ms);
      }
    }
    if (!conn_->Write(text, p.may_wait)) {
      more = false;
      break;
    }
  }
  if (frames > 0) {
    Metrics().frames_out.Add(static_cast<double>(frames));
    Metrics().bytes_out.Add(static_cast<double>(bytes));
  }
  if (!more || QueuedFrames() > 0) return;
  bool owed = sends_in_flight_ > 0 || !sends_.empty() || pending_replies_ > 0;
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
  for (size_t q = 0; q < kReplyQueue; ++q) {
    for (const Pending& p : queues_[q]) queued_bytes_ -= p.frame->size();
    queues_[q].clear();
  }
  Pump();
}

void WsSession::CloseWith(uint16_t code, std::string_view reason) {
  if (!conn_) return;
  if (code == kCloseSlowConsumer) {
    Log().Info("closing slow consumer", {{"conn", conn_id_.ToString()},
                                         {"bytes", static_cast<int64_t>(Bytes())}});
  }
  state_ = State::kClosing;
  for (auto& q : queues_) q.clear();
  queued_bytes_ = 0;
  close_after_flush_.reset();
  Metrics().closes.With({std::to_string(code)}).Inc();
  conn_->Close(code, reason);
}

}  // namespace mpim::gateway
