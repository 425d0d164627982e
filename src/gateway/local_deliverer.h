// service::Deliverer of a node: a route table lookup, then one post per io
// thread carrying every recipient session living here (not one per
// session), and, in a cluster (a bus engine other than memory), one
// envelope per other node holding recipients, handed to `forward` (which
// publishes it to that node's inbox on the bus); the receiving node's
// deliverer hands it to its sessions through DeliverEnvelope. Each event is
// encoded once, before the lookup (so a remote route table may answer
// later), and shared by every recipient on every node. Without `forward`
// (one node) routes held by another node are skipped.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/callback.h"
#include "gateway/envelope.h"
#include "gateway/session_registry.h"
#include "route/route_table.h"
#include "service/deliverer.h"

namespace mpim::gateway {

class LocalDeliverer final : public service::Deliverer {
 public:
  // Sends an encoded Envelope to another node's inbox; `done` once the bus
  // took it (or failed: the deliveries are lost, clients catch up by sync).
  using Forward = std::function<void(uint32_t node, std::string envelope, core::DoneCallback done)>;

  // `node`: this node's id (server.node_id), the node of its connections.
  LocalDeliverer(uint32_t node, route::RouteTable& routes, SessionRegistry& registry,
                 Forward forward = nullptr)
      : node_(node), routes_(routes), registry_(registry), forward_(std::move(forward)) {}

  // An envelope another node forwarded here: to this node's sessions (those
  // that have gone since are skipped). False for bytes that are not one.
  bool DeliverEnvelope(std::string_view bytes);

  // Deliveries to this node's sessions may have been lost (its inbox on the
  // bus had a gap, or its routes were registered again after Redis lost
  // them): every session checks its conversations against the store a
  // moment later (WsSession::RequestResync) and gets what it missed live,
  // without waiting for the next message of each conversation.
  void ResyncSessions();

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
  // A recipient connection and the user it must belong to (0: any).
  struct Target {
    route::ConnId conn;
    int64_t user = 0;
  };
  // Recipient connections of other nodes, by node.
  using Remote = std::vector<std::pair<uint32_t, std::vector<Envelope::Target>>>;
  using BatchesFn = absl::AnyInvocable<void(std::vector<Batch>, Remote) &&>;

  // fn(the sessions of every connection of `users` on this node except
  // `exclude`, the others' connections by node (none without forward_)),
  // once the route table has answered (nothing on failure).
  void WithSessions(const std::vector<int64_t>& users, route::ConnId exclude, BatchesFn fn);
  // This node's sessions of `targets` by io thread (a session that is not
  // the target's user is skipped); with `remote`, the other nodes' targets
  // go there.
  std::vector<Batch> ByLoop(const std::vector<Target>& targets, Remote* remote) const;
  std::vector<Batch> ByLoop(const std::vector<Envelope::Target>& local) const;

  // The messages to the sessions of `batches`, one post per io thread.
  // `taken` (may be empty) once every io thread has queued them.
  static void Send(std::vector<Batch> batches, std::vector<Encoded> msgs, bool qos1,
                   service::Priority priority, std::function<void()> taken);
  // The envelope (conns aside) to every node of `remote`; `taken` (may be
  // empty) once the bus took them all.
  void ForwardAll(const Remote& remote, Envelope envelope, std::function<void()> taken);
  void SendTo(const std::vector<int64_t>& users, route::ConnId exclude, std::vector<Encoded> msgs,
              bool qos1, service::Priority priority, std::function<void()> taken);
  // Sends `frame` to every connection of `users` except `exclude_conn`.
  void Event(const std::vector<int64_t>& users, route::ConnId exclude_conn, std::string frame,
             service::Priority priority);
  static void EventTo(std::vector<Batch> batches, std::shared_ptr<const std::string> frame,
                      service::Priority priority);

  const uint32_t node_;
  route::RouteTable& routes_;
  SessionRegistry& registry_;
  const Forward forward_;
};

}  // namespace mpim::gateway
