// service::Deliverer for one process: route table lookup, then one post per
// io thread carrying every recipient session living there (not one per
// session). Each event is encoded once.
#pragma once

#include <memory>
#include <vector>

#include "gateway/session_registry.h"
#include "route/route_table.h"
#include "service/deliverer.h"

namespace mpim::gateway {

class LocalDeliverer final : public service::Deliverer {
 public:
  LocalDeliverer(route::RouteTable& routes, SessionRegistry& registry)
      : routes_(routes), registry_(registry) {}

  void Message(const std::vector<int64_t>& users, uint64_t exclude_conn, const store::Message& msg,
               bool qos1, service::Priority priority) override;
  void Messages(const std::vector<int64_t>& users, const std::vector<store::Message>& msgs,
                bool qos1, service::Priority priority, std::function<void()> taken) override;
  void Receipt(const std::vector<int64_t>& users, uint64_t exclude_conn, const std::string& conv_id,
               int64_t reader, int64_t read_seq) override;
  void Typing(const std::vector<int64_t>& users, const std::string& conv_id, int64_t user) override;
  void Presence(const std::vector<uint64_t>& conns, int64_t user, bool online,
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
  // The sessions of every connection of `users` except `exclude_conn`.
  std::vector<Batch> ByLoop(const std::vector<int64_t>& users, uint64_t exclude_conn) const;
  std::vector<Batch> ByLoop(const std::vector<uint64_t>& conns) const;

  // The messages to the sessions of `batches`, one post per io thread.
  // `taken` (may be empty) once every io thread has queued them.
  void Send(std::vector<Batch> batches, const std::vector<const store::Message*>& msgs, bool qos1,
            service::Priority priority, std::function<void()> taken = nullptr);
  // Sends `frame` to every connection of `users` except `exclude_conn`.
  void Event(const std::vector<int64_t>& users, uint64_t exclude_conn,
             std::shared_ptr<const std::string> frame, service::Priority priority);

  route::RouteTable& routes_;
  SessionRegistry& registry_;
};

}  // namespace mpim::gateway
