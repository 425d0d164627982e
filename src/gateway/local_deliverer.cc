#include "gateway/local_deliverer.h"

#include <algorithm>
#include <atomic>

#include "core/clock.h"
#include "core/metrics.h"
#include "gateway/frames.h"
#include "gateway/message_json.h"
#include "gateway/ws_session.h"

namespace mpim::gateway {
namespace {

// A message going to this many sessions or more may wait a little for the
// next one on each socket (net::WsOptions::coalesce_ms).
constexpr size_t kCoalesceFanoutMin = 100;

core::Counter& LookupFailures() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_delivery_route_failures_total",
                   "Route lookups that failed: only this node's own sessions were reached "
                   "(other nodes' clients catch up through hello and sync).")
          .With({});
  return c;
}

core::Counter& ForwardFailures() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_delivery_forward_failures_total",
                   "Envelopes to another node that the bus did not take (clients catch up "
                   "through hello and sync).")
          .With({});
  return c;
}

core::Counter& StaleRoutes() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_delivery_stale_routes_total",
                   "Recipient connections skipped because the session holding that id is "
                   "another user's (a route of a previous process).")
          .With({});
  return c;
}

core::Counter& BadEnvelopes() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_delivery_bad_envelopes_total",
                   "Inbox payloads that were not a delivery envelope (dropped).")
          .With({});
  return c;
}

}  // namespace

void LocalDeliverer::WithSessions(const std::vector<int64_t>& users, route::ConnId exclude,
                                  BatchesFn fn) {
  // The caller's trace goes on where the routes answer.
  routes_.Lookup(users, [this, users, exclude, fn = std::move(fn), trace = core::trace::Current()](
                            core::StatusOr<std::vector<route::Route>> routes) mutable {
    core::trace::Scope scope(trace);
    if (!routes.ok()) {
      // This node's own sessions are still reached; other nodes' are not
      // (their clients catch up by seq).
      LookupFailures().Inc();
      routes = routes_.LocalRoutes(users);
    }
    std::vector<Target> targets;
    targets.reserve(routes->size());
    for (const route::Route& r : *routes) {
      if (r.conn != exclude) targets.push_back(Target{r.conn, r.user_id});
    }
    Remote remote;
    std::vector<Batch> batches = ByLoop(targets, forward_ ? &remote : nullptr);
    std::move(fn)(std::move(batches), std::move(remote));
  });
}

std::vector<LocalDeliverer::Batch> LocalDeliverer::ByLoop(const std::vector<Target>& targets,
                                                          Remote* remote) const {
  std::vector<Envelope::Target> local;
  local.reserve(targets.size());
  for (const Target& t : targets) {
    if (t.conn.node == node_) {
      local.push_back({t.conn.local, t.user});
    } else if (remote) {  // a handful of nodes: searched linearly
      auto it = std::find_if(remote->begin(), remote->end(),
                             [&](const auto& n) { return n.first == t.conn.node; });
      if (it == remote->end()) it = remote->insert(remote->end(), {t.conn.node, {}});
      it->second.push_back({t.conn.local, t.user});
    }
  }
  return ByLoop(local);
}

std::vector<LocalDeliverer::Batch> LocalDeliverer::ByLoop(
    const std::vector<Envelope::Target>& local) const {
  std::vector<Batch> batches;  // one per io thread: a handful, searched linearly
  for (const Envelope::Target& t : local) {
    auto session = registry_.Find(t.conn);
    if (!session) continue;
    // A stale route (a restarted process's, or a reused id) names a
    // connection that is now someone else's: never deliver to it.
    if (t.user != 0 && session->user_id() != t.user) {
      StaleRoutes().Inc();
      continue;
    }
    auto it = std::find_if(batches.begin(), batches.end(),
                           [&](const Batch& b) { return b.loop == session->loop(); });
    if (it == batches.end()) it = batches.insert(batches.end(), Batch{session->loop(), {}});
    it->sessions.push_back(std::move(session));
  }
  return batches;
}

void LocalDeliverer::ForwardAll(const Remote& remote, Envelope envelope,
                                std::function<void()> taken) {
  if (remote.empty()) {
    if (taken) taken();
    return;
  }
  auto left = std::make_shared<std::atomic<size_t>>(remote.size());
  const core::trace::SpanContext trace = core::trace::Current();
  for (size_t i = 0; i < remote.size(); ++i) {
    envelope.conns = remote[i].second;
    // Traced: each node's envelope is a span, whose context it carries.
    auto span = core::trace::Span::Start("bus publish", trace, core::trace::SpanKind::kProducer);
    envelope.trace = span.context();
    std::string bytes = envelope.Encode();
    if (span.recording()) {
      span.Set("mpim.node", static_cast<int64_t>(remote[i].first));
      span.Set("mpim.conns", static_cast<int64_t>(envelope.conns.size()));
      span.Set("mpim.msgs", static_cast<int64_t>(envelope.msgs.size()));
      span.Set("messaging.message.body.size", static_cast<int64_t>(bytes.size()));
    }
    forward_(
        remote[i].first, std::move(bytes),
        [left, taken, span = std::make_shared<core::trace::Span>(std::move(span))](core::Status s) {
          if (!s.ok()) {
            ForwardFailures().Inc();
            span->SetError(std::string(s.message()));
          }
          span->End();
          if (left->fetch_sub(1) == 1 && taken) taken();
        });
  }
}

void LocalDeliverer::Message(const std::vector<int64_t>& users, route::ConnId exclude_conn,
                             const store::Message& msg, bool qos1, service::Priority priority) {
  std::vector<Encoded> msgs;
  msgs.push_back(Encoded{msg.conv_id, msg.seq, msg.ts, MessageEventText(msg)});
  SendTo(users, exclude_conn, std::move(msgs), qos1, priority, nullptr);
}

void LocalDeliverer::Messages(const std::vector<int64_t>& users,
                              const std::vector<store::Message>& msgs, bool qos1,
                              service::Priority priority, std::function<void()> taken) {
  std::vector<Encoded> encoded;
  encoded.reserve(msgs.size());
  for (const store::Message& m : msgs) {
    encoded.push_back(Encoded{m.conv_id, m.seq, m.ts, MessageEventText(m)});
  }
  SendTo(users, {}, std::move(encoded), qos1, priority, std::move(taken));
}

void LocalDeliverer::SendTo(const std::vector<int64_t>& users, route::ConnId exclude,
                            std::vector<Encoded> msgs, bool qos1, service::Priority priority,
                            std::function<void()> taken) {
  WithSessions(users, exclude,
               [this, msgs = std::move(msgs), qos1, priority, taken = std::move(taken)](
                   std::vector<Batch> batches, Remote remote) mutable {
                 if (remote.empty()) {
                   return Send(std::move(batches), std::move(msgs), qos1, priority,
                               std::move(taken));
                 }
                 // Both halves count down to `taken`.
                 std::function<void()> half;
                 if (taken) {
                   auto left = std::make_shared<std::atomic<int>>(2);
                   half = [left, taken = std::move(taken)] {
                     if (left->fetch_sub(1) == 1) taken();
                   };
                 }
                 Envelope envelope;
                 envelope.kind = Envelope::Kind::kMessages;
                 envelope.priority = priority;
                 envelope.qos1 = qos1;
                 envelope.msgs.reserve(msgs.size());
                 for (const Encoded& m : msgs) {
                   envelope.msgs.push_back({m.conv_id, m.seq, m.ts, m.frame});
                 }
                 ForwardAll(remote, std::move(envelope), half);
                 Send(std::move(batches), std::move(msgs), qos1, priority, half);
               });
}

void LocalDeliverer::Send(std::vector<Batch> batches, std::vector<Encoded> msgs, bool qos1,
                          service::Priority priority, std::function<void()> taken) {
  if (batches.empty() || msgs.empty()) {
    if (taken) taken();
    return;
  }
  // Counts the io threads down to `taken`.
  std::function<void()> one_taken;
  if (taken) {
    auto left = std::make_shared<std::atomic<size_t>>(batches.size());
    one_taken = [left, taken = std::move(taken)] {
      if (left->fetch_sub(1) == 1) taken();
    };
  }
  size_t sessions = 0;
  for (const Batch& b : batches) sessions += b.sessions.size();
  const bool may_wait = sessions >= kCoalesceFanoutMin;
  // Traced: the hand-off to this node's sessions (their io threads queue
  // and write them after it).
  auto span = core::trace::Span::Start("deliver", core::trace::Current());
  if (span.recording()) {
    span.Set("mpim.sessions", static_cast<int64_t>(sessions));
    span.Set("mpim.msgs", static_cast<int64_t>(msgs.size()));
    span.Set("mpim.io_threads", static_cast<int64_t>(batches.size()));
  }
  static core::Counter& deliveries =
      core::DefaultRegistry()
          .Counter("mpim_message_deliveries_total", "msg events handed to live sessions.")
          .With({});
  deliveries.Add(static_cast<double>(sessions * msgs.size()));
  // From each message's timestamp (taken by the logic role as it stored
  // it) to this hand-off: the commit, the bus hop from another node, the
  // queue to here. By the wall clock: skew between machines adds in.
  static core::Histogram& delay =
      core::DefaultRegistry()
          .Histogram("mpim_message_delivery_seconds",
                     "From a message's timestamp (taken as the logic role stores it) to its "
                     "hand-off to this node's live sessions: commit, bus hop, queueing; by the "
                     "wall clock.")
          .With({});
  const int64_t now_ms = core::SystemClock().NowMs();
  for (const Encoded& m : msgs)
    delay.Observe(static_cast<double>(std::max<int64_t>(0, now_ms - m.ts)) / 1000.0);
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    Batch& b = batches[bi];
    const bool last = bi + 1 == batches.size();
    // Each io thread gets its own copies: the reference counts its sessions
    // move (queue, unacked list, ack) stay on its cache lines.
    std::vector<std::shared_ptr<const OutMessage>> outs;
    outs.reserve(msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
      auto out = std::make_shared<OutMessage>();
      out->conv_id = msgs[i].conv_id;
      out->seq = msgs[i].seq;
      out->ts = msgs[i].ts;
      out->frame =
          std::make_shared<const std::string>(last ? std::move(msgs[i].frame) : msgs[i].frame);
      out->qos1 = qos1;
      out->priority = priority;
      out->may_wait = may_wait;
      outs.push_back(std::move(out));
    }
    WsSession::DeliverMessages(std::move(b.sessions), std::move(outs), one_taken);
  }
}

void LocalDeliverer::Event(const std::vector<int64_t>& users, route::ConnId exclude_conn,
                           std::string frame, service::Priority priority) {
  WithSessions(users, exclude_conn,
               [this, frame = std::make_shared<const std::string>(std::move(frame)), priority](
                   std::vector<Batch> batches, Remote remote) {
                 if (!remote.empty()) {
                   Envelope envelope;
                   envelope.kind = Envelope::Kind::kEvent;
                   envelope.priority = priority;
                   envelope.frame = *frame;
                   ForwardAll(remote, std::move(envelope), nullptr);
                 }
                 EventTo(std::move(batches), frame, priority);
               });
}

void LocalDeliverer::EventTo(std::vector<Batch> batches, std::shared_ptr<const std::string> frame,
                             service::Priority priority) {
  for (Batch& b : batches) WsSession::DeliverEvent(std::move(b.sessions), frame, priority);
}

void LocalDeliverer::Receipt(const std::vector<int64_t>& users, route::ConnId exclude_conn,
                             const std::string& conv_id, int64_t reader, int64_t read_seq) {
  Event(users, exclude_conn, frames::Receipt(conv_id, reader, read_seq),
        service::Priority::kNormal);
}

void LocalDeliverer::Typing(const std::vector<int64_t>& users, const std::string& conv_id,
                            int64_t user) {
  Event(users, {}, frames::Typing(conv_id, user), service::Priority::kLow);
}

void LocalDeliverer::Presence(const std::vector<route::ConnId>& conns, int64_t user, bool online,
                              int64_t last_seen) {
  auto frame = std::make_shared<const std::string>(frames::Presence(user, online, last_seen));
  std::vector<Target> targets;
  targets.reserve(conns.size());
  for (route::ConnId c : conns) targets.push_back(Target{c, 0});  // followers: any user
  Remote remote;
  std::vector<Batch> batches = ByLoop(targets, forward_ ? &remote : nullptr);
  if (!remote.empty()) {
    Envelope envelope;
    envelope.frame = *frame;
    ForwardAll(remote, std::move(envelope), nullptr);
  }
  EventTo(std::move(batches), frame, service::Priority::kNormal);
}

void LocalDeliverer::Conv(const std::vector<int64_t>& users, const std::string& conv_id,
                          const std::string& event) {
  Event(users, {}, frames::Conv(conv_id, event), service::Priority::kHigh);
}

void LocalDeliverer::Recall(const std::vector<int64_t>& users, const std::string& conv_id,
                            int64_t seq, int64_t msg_id) {
  Event(users, {}, frames::Recall(conv_id, seq, msg_id), service::Priority::kHigh);
}

void LocalDeliverer::Kick(int64_t user_id, int64_t session_id, const std::string& reason) {
  routes_.Lookup({user_id}, [this, user_id, session_id,
                             reason](core::StatusOr<std::vector<route::Route>> routes) {
    if (!routes.ok()) {  // the token is refused all the same; this node's sockets still close
      LookupFailures().Inc();
      routes = routes_.LocalRoutes({user_id});
    }
    std::vector<Target> targets;
    for (const route::Route& r : *routes) {
      if (r.session_id == session_id) targets.push_back(Target{r.conn, r.user_id});
    }
    Remote remote;
    std::vector<Batch> batches = ByLoop(targets, forward_ ? &remote : nullptr);
    if (!remote.empty()) {
      Envelope envelope;
      envelope.kind = Envelope::Kind::kKick;
      envelope.priority = service::Priority::kUrgent;
      envelope.frame = reason;
      ForwardAll(remote, std::move(envelope), nullptr);
    }
    for (Batch& b : batches) {
      for (auto& session : b.sessions) session->DeliverKick(reason);
    }
  });
}

bool LocalDeliverer::DeliverEnvelope(std::string_view bytes) {
  std::optional<Envelope> envelope = Envelope::Decode(bytes);
  if (!envelope) {
    BadEnvelopes().Inc();
    return false;
  }
  // Traced: the publishing span's trace goes on here.
  auto span =
      core::trace::Span::Start("bus consume", envelope->trace, core::trace::SpanKind::kConsumer);
  core::trace::Scope scope(span.context());
  if (span.recording()) {
    span.Set("mpim.conns", static_cast<int64_t>(envelope->conns.size()));
    span.Set("mpim.msgs", static_cast<int64_t>(envelope->msgs.size()));
    span.Set("messaging.message.body.size", static_cast<int64_t>(bytes.size()));
  }
  std::vector<Batch> batches = ByLoop(envelope->conns);
  switch (envelope->kind) {
    case Envelope::Kind::kMessages: {
      std::vector<Encoded> msgs;
      msgs.reserve(envelope->msgs.size());
      for (Envelope::Msg& m : envelope->msgs) {
        msgs.push_back(Encoded{std::move(m.conv_id), m.seq, m.ts, std::move(m.frame)});
      }
      Send(std::move(batches), std::move(msgs), envelope->qos1, envelope->priority, nullptr);
      break;
    }
    case Envelope::Kind::kEvent:
      EventTo(std::move(batches), std::make_shared<const std::string>(std::move(envelope->frame)),
              envelope->priority);
      break;
    case Envelope::Kind::kKick:
      for (Batch& b : batches) {
        for (auto& session : b.sessions) session->DeliverKick(envelope->frame);
      }
      break;
  }
  return true;
}

void LocalDeliverer::ResyncSessions() {
  for (const std::shared_ptr<WsSession>& session : registry_.All()) session->RequestResync();
}

}  // namespace mpim::gateway
