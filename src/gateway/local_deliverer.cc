#include "gateway/local_deliverer.h"

#include <algorithm>
#include <atomic>
#include <boost/json/serialize.hpp>

#include "core/metrics.h"
#include "gateway/message_json.h"
#include "gateway/ws_session.h"

namespace mpim::gateway {
namespace {

// A message going to this many sessions or more may wait a little for the
// next one on each socket (net::WsOptions::coalesce_ms).
constexpr size_t kCoalesceFanoutMin = 100;

std::string Quoted(const std::string& s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

}  // namespace

std::vector<LocalDeliverer::Batch> LocalDeliverer::ByLoop(const std::vector<int64_t>& users,
                                                          uint64_t exclude_conn) const {
  std::vector<route::Route> routes;
  for (int64_t u : users) routes_.Lookup(u, routes);
  std::vector<uint64_t> conns;
  conns.reserve(routes.size());
  for (const route::Route& r : routes) {
    if (r.conn_id != exclude_conn) conns.push_back(r.conn_id);
  }
  return ByLoop(conns);
}

std::vector<LocalDeliverer::Batch> LocalDeliverer::ByLoop(
    const std::vector<uint64_t>& conns) const {
  std::vector<Batch> batches;  // one per io thread: a handful, searched linearly
  for (uint64_t c : conns) {
    auto session = registry_.Find(c);
    if (!session) continue;
    auto it = std::find_if(batches.begin(), batches.end(),
                           [&](const Batch& b) { return b.loop == session->loop(); });
    if (it == batches.end()) it = batches.insert(batches.end(), Batch{session->loop(), {}});
    it->sessions.push_back(std::move(session));
  }
  return batches;
}

void LocalDeliverer::Message(const std::vector<int64_t>& users, uint64_t exclude_conn,
                             const store::Message& msg, bool qos1, service::Priority priority) {
  Send(ByLoop(users, exclude_conn), {&msg}, qos1, priority);
}

void LocalDeliverer::Messages(const std::vector<int64_t>& users,
                              const std::vector<store::Message>& msgs, bool qos1,
                              service::Priority priority, std::function<void()> taken) {
  std::vector<const store::Message*> ptrs;
  ptrs.reserve(msgs.size());
  for (const store::Message& m : msgs) ptrs.push_back(&m);
  Send(ByLoop(users, 0), ptrs, qos1, priority, std::move(taken));
}

void LocalDeliverer::Send(std::vector<Batch> batches,
                          const std::vector<const store::Message*>& msgs, bool qos1,
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
  std::vector<std::string> frames;
  frames.reserve(msgs.size());
  for (const store::Message* m : msgs) frames.push_back(MessageEventText(*m));
  for (size_t bi = 0; bi < batches.size(); ++bi) {
    Batch& b = batches[bi];
    const bool last = bi + 1 == batches.size();
    // Each io thread gets its own copies: the reference counts its sessions
    // move (queue, unacked list, ack) stay on its cache lines.
    std::vector<std::shared_ptr<const OutMessage>> outs;
    outs.reserve(msgs.size());
    for (size_t i = 0; i < msgs.size(); ++i) {
      auto out = std::make_shared<OutMessage>();
      out->conv_id = msgs[i]->conv_id;
      out->seq = msgs[i]->seq;
      out->ts = msgs[i]->ts;
      out->frame = std::make_shared<const std::string>(last ? std::move(frames[i]) : frames[i]);
      out->qos1 = qos1;
      out->priority = priority;
      out->may_wait = may_wait;
      outs.push_back(std::move(out));
    }
    WsSession::DeliverMessages(std::move(b.sessions), std::move(outs), one_taken);
  }
}

void LocalDeliverer::Event(const std::vector<int64_t>& users, uint64_t exclude_conn,
                           std::shared_ptr<const std::string> frame, service::Priority priority) {
  for (Batch& b : ByLoop(users, exclude_conn)) {
    WsSession::DeliverEvent(std::move(b.sessions), frame, priority);
  }
}

void LocalDeliverer::Receipt(const std::vector<int64_t>& users, uint64_t exclude_conn,
                             const std::string& conv_id, int64_t reader, int64_t read_seq) {
  Event(users, exclude_conn,
        std::make_shared<const std::string>("{\"op\":\"receipt\",\"conv_id\":" + Quoted(conv_id) +
                                            ",\"user\":\"" + std::to_string(reader) +
                                            "\",\"read_seq\":" + std::to_string(read_seq) + "}"),
        service::Priority::kNormal);
}

void LocalDeliverer::Typing(const std::vector<int64_t>& users, const std::string& conv_id,
                            int64_t user) {
  Event(users, 0,
        std::make_shared<const std::string>("{\"op\":\"typing\",\"conv_id\":" + Quoted(conv_id) +
                                            ",\"user\":\"" + std::to_string(user) + "\"}"),
        service::Priority::kLow);
}

void LocalDeliverer::Presence(const std::vector<uint64_t>& conns, int64_t user, bool online,
                              int64_t last_seen) {
  std::string text = "{\"op\":\"presence\",\"user\":\"" + std::to_string(user) +
                     "\",\"online\":" + (online ? "true" : "false");
  if (last_seen > 0) text += ",\"last_seen\":" + std::to_string(last_seen);
  text += "}";
  auto frame = std::make_shared<const std::string>(std::move(text));
  for (Batch& b : ByLoop(conns)) {
    WsSession::DeliverEvent(std::move(b.sessions), frame, service::Priority::kNormal);
  }
}

void LocalDeliverer::Conv(const std::vector<int64_t>& users, const std::string& conv_id,
                          const std::string& event) {
  Event(users, 0,
        std::make_shared<const std::string>("{\"op\":\"conv\",\"conv_id\":" + Quoted(conv_id) +
                                            ",\"event\":" + Quoted(event) + "}"),
        service::Priority::kHigh);
}

void LocalDeliverer::Recall(const std::vector<int64_t>& users, const std::string& conv_id,
                            int64_t seq, int64_t msg_id) {
  Event(users, 0,
        std::make_shared<const std::string>("{\"op\":\"recall\",\"conv_id\":" + Quoted(conv_id) +
                                            ",\"seq\":" + std::to_string(seq) + ",\"msg_id\":\"" +
                                            std::to_string(msg_id) + "\"}"),
        service::Priority::kHigh);
}

void LocalDeliverer::Kick(int64_t user_id, int64_t session_id, const std::string& reason) {
  std::vector<route::Route> routes;
  routes_.Lookup(user_id, routes);
  for (const route::Route& r : routes) {
    if (r.session_id != session_id) continue;
    if (auto session = registry_.Find(r.conn_id)) session->DeliverKick(reason);
  }
}

}  // namespace mpim::gateway
