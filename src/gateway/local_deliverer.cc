#include "gateway/local_deliverer.h"

#include <algorithm>
#include <atomic>

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
                   "Deliveries dropped because the route table did not answer (clients catch "
                   "up through hello and sync).")
          .With({});
  return c;
}

}  // namespace

void LocalDeliverer::WithSessions(const std::vector<int64_t>& users, route::ConnId exclude,
                                  BatchesFn fn) {
  routes_.Lookup(users, [this, exclude, fn = std::move(fn)](
                            core::StatusOr<std::vector<route::Route>> routes) mutable {
    if (!routes.ok()) {
      LookupFailures().Inc();
      return std::move(fn)({});
    }
    std::vector<route::ConnId> conns;
    conns.reserve(routes->size());
    for (const route::Route& r : *routes) {
      if (r.conn != exclude) conns.push_back(r.conn);
    }
    std::move(fn)(ByLoop(conns));
  });
}

std::vector<LocalDeliverer::Batch> LocalDeliverer::ByLoop(
    const std::vector<route::ConnId>& conns) const {
  std::vector<Batch> batches;  // one per io thread: a handful, searched linearly
  for (route::ConnId c : conns) {
    if (c.node != node_) continue;  // another node's: reached through a bus only
    auto session = registry_.Find(c.local);
    if (!session) continue;
    auto it = std::find_if(batches.begin(), batches.end(),
                           [&](const Batch& b) { return b.loop == session->loop(); });
    if (it == batches.end()) it = batches.insert(batches.end(), Batch{session->loop(), {}});
    it->sessions.push_back(std::move(session));
  }
  return batches;
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
               [msgs = std::move(msgs), qos1, priority,
                taken = std::move(taken)](std::vector<Batch> batches) mutable {
                 Send(std::move(batches), std::move(msgs), qos1, priority, std::move(taken));
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
  static core::Counter& deliveries =
      core::DefaultRegistry()
          .Counter("mpim_message_deliveries_total", "msg events handed to live sessions.")
          .With({});
  deliveries.Add(static_cast<double>(sessions * msgs.size()));
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
               [frame = std::make_shared<const std::string>(std::move(frame)),
                priority](std::vector<Batch> batches) {
                 for (Batch& b : batches) {
                   WsSession::DeliverEvent(std::move(b.sessions), frame, priority);
                 }
               });
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
  for (Batch& b : ByLoop(conns)) {
    WsSession::DeliverEvent(std::move(b.sessions), frame, service::Priority::kNormal);
  }
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
  routes_.Lookup({user_id}, [this, session_id,
                             reason](core::StatusOr<std::vector<route::Route>> routes) {
    if (!routes.ok()) return LookupFailures().Inc();  // the token is refused all the same
    for (const route::Route& r : *routes) {
      if (r.session_id != session_id || r.conn.node != node_) continue;
      if (auto session = registry_.Find(r.conn.local)) session->DeliverKick(reason);
    }
  });
}

}  // namespace mpim::gateway
