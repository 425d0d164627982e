// Logic -> gateway: hands events to the live connections of users. In one
// process it looks connections up in the route table and posts to the local
// sessions (gateway/local_deliverer.h); in a cluster it publishes to the
// stream on the bus of each gateway (node) that holds a recipient.
//
// Contract for every implementation (bus.engine picks one):
//   - Never blocks and never fails to the caller: delivery is best effort.
//     Offline users, closed sessions and deliveries lost with a node or an
//     engine are found again through hello and sync (by seq); nothing a
//     client was promised lives only here.
//   - Connections are named cluster-wide (route::ConnId): `exclude_conn`
//     and presence followers may sit on any node.
//   - Events to one connection keep the order of the calls that made them
//     for one conversation (the session still orders msg events by seq).
//   - Each event is encoded once and shared by every recipient connection.
//
// Thread-safe: any thread, io threads included.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "route/conn_id.h"
#include "store/message_store.h"

namespace mpim::service {

// The protocol's send priorities, lowest first.
enum class Priority : uint8_t { kLow = 0, kNormal = 1, kHigh = 2, kUrgent = 3 };

class Deliverer {
 public:
  virtual ~Deliverer() = default;

  // `msg` to every connection of `users` but `exclude_conn` (the sender's
  // own socket; empty: none). qos1: re-sent until acked.
  virtual void Message(const std::vector<int64_t>& users, route::ConnId exclude_conn,
                       const store::Message& msg, bool qos1, Priority priority) = 0;
  // Several messages of one conversation, in seq order, to every connection
  // of `users`: what Message does for each, in one pass over the recipients
  // (a fan-out job batch). `taken` (any thread) runs once every recipient
  // connection has them queued: a caller that waits for it before handing
  // more lets work pile up where it is cheap (the job queue), not in the
  // connections' threads.
  virtual void Messages(const std::vector<int64_t>& users, const std::vector<store::Message>& msgs,
                        bool qos1, Priority priority, std::function<void()> taken) {
    for (const store::Message& m : msgs) Message(users, {}, m, qos1, priority);
    taken();
  }
  virtual void Receipt(const std::vector<int64_t>& users, route::ConnId exclude_conn,
                       const std::string& conv_id, int64_t reader, int64_t read_seq) = 0;
  virtual void Typing(const std::vector<int64_t>& users, const std::string& conv_id,
                      int64_t user) = 0;
  // To the given connections (presence subscribers).
  virtual void Presence(const std::vector<route::ConnId>& conns, int64_t user, bool online,
                        int64_t last_seen) = 0;
  // {"op":"conv","conv_id","event"} (joined, left, removed, updated).
  virtual void Conv(const std::vector<int64_t>& users, const std::string& conv_id,
                    const std::string& event) = 0;
  // {"op":"recall","conv_id","seq","msg_id"}.
  virtual void Recall(const std::vector<int64_t>& users, const std::string& conv_id, int64_t seq,
                      int64_t msg_id) = 0;
  // `kick` then close 4003, on every connection of the login session.
  virtual void Kick(int64_t user_id, int64_t session_id, const std::string& reason) = 0;
};

}  // namespace mpim::service
