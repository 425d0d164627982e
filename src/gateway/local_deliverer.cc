#include "gateway/local_deliverer.h"

#include <boost/json/serialize.hpp>

#include "core/metrics.h"
#include "gateway/message_json.h"
#include "gateway/ws_session.h"

namespace mpim::gateway {
namespace {

std::string Quoted(const std::string& s) {
  return boost::json::serialize(boost::json::string_view(s.data(), s.size()));
}

}  // namespace

void LocalDeliverer::Message(const std::vector<int64_t>& users, uint64_t exclude_conn,
                             const store::Message& msg, bool qos1, service::Priority priority) {
  std::vector<route::Route> routes;
  for (int64_t u : users) routes_.Lookup(u, routes);
  if (routes.empty()) return;
  auto out = std::make_shared<OutMessage>();
  out->conv_id = msg.conv_id;
  out->seq = msg.seq;
  out->ts = msg.ts;
  out->frame = std::make_shared<const std::string>(MessageEventText(msg));
  out->qos1 = qos1;
  out->priority = priority;
  static core::Counter& deliveries =
      core::DefaultRegistry()
          .Counter("mpim_message_deliveries_total", "msg events handed to live sessions.")
          .With({});
  for (const route::Route& r : routes) {
    if (r.conn_id == exclude_conn) continue;
    if (auto session = registry_.Find(r.conn_id)) {
      session->DeliverMessage(out);
      deliveries.Inc();
    }
  }
}

void LocalDeliverer::Event(const std::vector<int64_t>& users, uint64_t exclude_conn,
                           std::shared_ptr<const std::string> frame, service::Priority priority) {
  std::vector<route::Route> routes;
  for (int64_t u : users) routes_.Lookup(u, routes);
  for (const route::Route& r : routes) {
    if (r.conn_id == exclude_conn) continue;
    if (auto session = registry_.Find(r.conn_id)) session->DeliverEvent(frame, priority);
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
  for (uint64_t c : conns) {
    if (auto session = registry_.Find(c)) session->DeliverEvent(frame, service::Priority::kNormal);
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
