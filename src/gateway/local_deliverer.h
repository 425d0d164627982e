// service::Deliverer for bus.engine = "memory" (one node): a route table
// lookup, then one post per io thread carrying every recipient session
// living there (not one per session). Each event is encoded once, before
// the lookup (so a remote route table may answer later). Routes held by
// another node are skipped: only a bus reaches them.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "gateway/session_registry.h"
#include "route/route_table.h"
#include "service/deliverer.h"

namespace mpim::gateway {

class LocalDeliverer final : public service::Deliverer {
 public:
  // `node`: this node's id (server.node_id), the node of its connections.
  LocalDeliverer(uint32_t node, route::RouteTable& routes, SessionRegistry& registry)
      : node_(node), routes_(routes), registry_(registry) {}

  void Message(const std::vector<int64_t>& users, route::ConnId exclude_conn,
               const store::Message& msg, bool qos1, service::Priority priority) override;
  void Messages(const std::vector<int64_t>& users, const std::vector<store::Message>& msgs,
                bool qos1, service::Priority priority, std::function<void()> taken) override;
  void Receipt(const std::vector<int64_t>& users, route::ConnId exclude_conn,
               const std::string& conv_id, int64_t reader, int64_t read_seq) override;
  void Typing(const std::vector<int64_t>& users, const std::string& conv_id, int64_t user) override;
  void Presence(const std::vector<route::ConnId>& conns, int64_t user, bool online,
                int64_t last_seen) override;
  void Conv(const std::vector<int64_t>& users, const std::string& conv_id,
            const std::string& event) override;
  void Recall(const std::vector<int64_t>& users, const std::string& conv_id, int64_t seq,
              int64_t msg_id) override;
  void Kick(int64_t user_id, int64_t session_id, const std::string& reason) override;

 private:
  // Live recipient sessions that share an io thread.
  struct Batch {
    const void* loop;
    std::vector<std::shared_ptr<WsSession>> sessions;
  };
  // A message encoded for delivery.
  struct Encoded {
    std::string conv_id;
    int64_t seq = 0;
    int64_t ts = 0;
    std::string frame;
  };
  using BatchesFn = absl::AnyInvocable<void(std::vector<Batch>) &&>;

  // fn(the sessions of every connection of `users` on this node except
  // `exclude`), once the route table has answered (nothing on failure).
  void WithSessions(const std::vector<int64_t>& users, route::ConnId exclude, BatchesFn fn);
  std::vector<Batch> ByLoop(const std::vector<route::ConnId>& conns) const;

  // The messages to the sessions of `batches`, one post per io thread.
  // `taken` (may be empty) once every io thread has queued them.
  static void Send(std::vector<Batch> batches, std::vector<Encoded> msgs, bool qos1,
                   service::Priority priority, std::function<void()> taken);
  void SendTo(const std::vector<int64_t>& users, route::ConnId exclude, std::vector<Encoded> msgs,
              bool qos1, service::Priority priority, std::function<void()> taken);
  // Sends `frame` to every connection of `users` except `exclude_conn`.
  void Event(const std::vector<int64_t>& users, route::ConnId exclude_conn, std::string frame,
             service::Priority priority);

  const uint32_t node_;
  route::RouteTable& routes_;
  SessionRegistry& registry_;
};

}  // namespace mpim::gateway
