// One client WebSocket connection as the protocol sees it (protocol.md
// section 3): authentication, the client ops, and delivery of pushed events
// with the guarantees of the protocol:
//   - per conversation, msg events leave in seq order: a message that
//     arrives ahead of its predecessor is held up to gateway.gap_wait_ms,
//     then the gap is filled from the store;
//   - pending frames leave by priority (urgent > high > normal > low; replies
//     first), never reordering one conversation;
//   - qos 1 messages are re-sent until acked (gateway.ack_timeout_ms after
//     they went out, and after the conversation's last ack: a client that
//     keeps acking is working through a backlog, and what it has not acked
//     yet is still on its way to it in the same TCP stream);
//   - queued + unacked bytes above gateway.send_queue_max_bytes close the
//     session with 4008.
//
// Threading: everything runs on the connection's io thread. Other threads
// reach a session through Post-ing methods (the Deliver* family).
#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/config.h"
#include "core/fifo.h"
#include "gateway/unauthenticated_cap.h"
#include "net/websocket.h"
#include "core/clock.h"
#include "route/presence.h"
#include "route/route_table.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/deliverer.h"
#include "service/message_service.h"

namespace mpim::gateway {

class SessionRegistry;

// What a session needs; owned by the wiring, outlives every session.
struct GatewayContext {
  service::AuthService& auth;
  service::MessageService& messages;
  service::ConversationService& conversations;
  route::Presence& presence;
  route::RouteTable& routes;
  SessionRegistry& registry;
  core::GatewayConfig config;
  int page_max = 200;
  UnauthenticatedCap* unauthenticated = nullptr;  // null: no cap
  uint32_t node_id = 0;                           // names this node's connections
  core::Clock& clock = core::SystemClock();
};

// A message as it goes out: encoded once, shared by all recipients.
struct OutMessage {
  std::string conv_id;
  int64_t seq = 0;
  int64_t ts = 0;  // the message's time (ms), for the already-acked check
  std::shared_ptr<const std::string> frame;
  bool qos1 = true;
  service::Priority priority = service::Priority::kNormal;
  // Fanned out to many sessions: each may hold it up to
  // gateway.fanout_coalesce_ms to share a write with the next ones.
  bool may_wait = false;
};

class WsSession : public net::WsHandler, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(GatewayContext& ctx, std::shared_ptr<net::WsConnection> conn);

  // Creates a session for a new connection (the net::WsAcceptFn).
  static void Accept(GatewayContext& ctx, std::shared_ptr<net::WsConnection> conn);

  // Thread-safe: one task posted to the io thread of `sessions`, which must
  // all share one (the same loop()); closed sessions are skipped.
  static void DeliverMessage(std::vector<std::shared_ptr<WsSession>> sessions,
                             std::shared_ptr<const OutMessage> msg);
  // Several messages to the same sessions, taken session by session (each
  // session's state is touched once for all of them, and its frames share
  // one write). Messages of one conversation must come in seq order.
  // `taken` (may be empty) runs after, on the io thread (at once if none of
  // the sessions is still connected).
  static void DeliverMessages(std::vector<std::shared_ptr<WsSession>> sessions,
                              std::vector<std::shared_ptr<const OutMessage>> msgs,
                              std::function<void()> taken = nullptr);
  static void DeliverEvent(std::vector<std::shared_ptr<WsSession>> sessions,
                           std::shared_ptr<const std::string> frame, service::Priority priority);
  // Thread-safe: post to the session's io thread.
  void DeliverKick(std::string reason);

  route::ConnId conn_id() const { return conn_id_; }
  // The io thread the session lives on (net::WsConnection::loop()).
  const void* loop() const { return loop_; }

  // net::WsHandler
  void OnOpen() override;
  void OnText(std::string_view text) override;
  void OnBinary() override;
  void OnWritable() override;
  void OnTick(int64_t now_ms) override;
  void OnDrain(uint16_t code, std::string_view reason) override;
  void OnClosed() override;

 private:
  // kDraining: closing after the replies owed are out (no new ops, no events).
  enum class State { kAwaitingAuth, kAuthenticating, kActive, kDraining, kClosing };

  struct ConvState;
  struct Pending {
    std::shared_ptr<const std::string> frame;
    ConvState* conv = nullptr;  // null for frames outside conversations
    int64_t seq = 0;            // msg frames: for the unacked list
    bool qos1 = false;
    bool may_wait = false;  // OutMessage::may_wait
  };
  struct Unacked {
    int64_t seq;
    std::shared_ptr<const std::string> frame;
    int64_t sent_ms;
  };
  struct ConvState {
    int64_t last_seq = 0;  // highest seq handed to the queue
    // Ahead of a gap; a null entry is this session's own message.
    std::map<int64_t, std::shared_ptr<const OutMessage>> held;
    int64_t gap_since_ms = 0;
    bool filling = false;
    int queued = 0;  // frames of this conversation waiting in the queues
    int queued_min_priority = 3;
    core::Fifo<Unacked> unacked;
    // The last ack that moved the conversation on: a frame is re-sent only
    // once neither it was sent nor an ack came within ack_timeout_ms.
    int64_t last_ack_ms = 0;
    // No entry of `unacked` is due for re-sending before this: OnTick skips
    // the list until then (it can hold thousands of frames).
    int64_t resend_due_ms = INT64_MAX;
  };

  void Authenticate(std::string_view token, std::optional<int64_t> rid);
  void Activate(service::Principal principal, std::optional<int64_t> rid);
  // Reads the hello list (after the route is in the table) and sends it.
  void ReadHello();
  void HandleOp(const std::string& op, boost::json::object& frame, std::optional<int64_t> rid);
  void OpSend(boost::json::object& frame, std::optional<int64_t> rid);
  // Sends of one session are stored in the order they arrived: one at a
  // time goes to the message service, the rest wait here.
  void StartNextSend();
  void OnSendResult(std::optional<int64_t> rid, const core::StatusOr<service::SendResult>& r);
  void OpAck(boost::json::object& frame);
  void OpRead(boost::json::object& frame, std::optional<int64_t> rid);
  void OpSync(boost::json::object& frame, std::optional<int64_t> rid);
  void OpTyping(boost::json::object& frame);
  void OpPresence(boost::json::object& frame, std::optional<int64_t> rid, bool subscribe);

  void Reply(std::optional<int64_t> rid, std::string result_fields);  // ok:true
  void ReplyError(std::optional<int64_t> rid, const core::Status& status);
  // Runs `fn` on this session's thread if it is still open.
  void OnThread(absl::AnyInvocable<void(WsSession&)> fn);
  // fn(session) on the io thread of `sessions` (one loop) for each still open.
  // `after` (may be empty) runs once they are done (at once if none is left).
  static void OnThreadAll(std::vector<std::shared_ptr<WsSession>> sessions,
                          absl::AnyInvocable<void(WsSession&)> fn,
                          std::function<void()> after = nullptr);
  // Posts `fn` to the connection's io thread; dropped once the connection
  // is gone. Any thread (conn_ belongs to the io thread).
  void PostToConn(absl::AnyInvocable<void()> fn);

  void AcceptMessage(const std::shared_ptr<const OutMessage>& msg, int64_t now_ms);
  void ReleaseHeld(ConvState& cs);
  bool AckedBeforeThisSocket(const OutMessage& msg) const;
  // A message this session sent (it gets the reply, not the msg event).
  void NoteOwnMessage(const std::string& conv_id, int64_t seq);
  void FillGap(const std::string& conv_id);
  void Enqueue(Pending p, service::Priority priority);
  void EnqueueReply(std::shared_ptr<const std::string> frame);  // before every event
  void Push(size_t queue, Pending p);
  void Pump();
  void CloseWith(uint16_t code, std::string_view reason);
  // Stops taking ops, answers what is owed, then closes with `code`.
  void CloseAfterReplies(uint16_t code, std::string reason);
  size_t QueuedFrames() const;
  size_t Bytes() const { return queued_bytes_ + unacked_bytes_; }

  GatewayContext& ctx_;
  std::shared_ptr<net::WsConnection> conn_;
  const route::ConnId conn_id_;
  const std::weak_ptr<net::WsConnection> post_conn_;  // for PostToConn
  const void* const loop_;
  State state_ = State::kAwaitingAuth;
  service::Principal principal_;
  int64_t auth_deadline_ms_ = 0;
  UnauthenticatedCap::Slot auth_slot_;  // held until authenticated (no token on the upgrade)
  bool registered_ = false;               // in the route table and the registry
  std::optional<int64_t> hello_rid_;      // the auth frame's rid, for the hello reply

  std::array<core::Fifo<Pending>, 5> queues_;  // [4] replies, then urgent..low by priority
  size_t queued_bytes_ = 0;
  size_t unacked_bytes_ = 0;
  std::unordered_map<std::string, ConvState> convs_;
  std::optional<std::pair<uint16_t, std::string>> close_after_flush_;
  std::vector<int64_t> subscriptions_;
  core::Fifo<int64_t> refused_sends_ms_;  // rate-limited sends within the window
  struct QueuedSend {
    service::SendRequest request;
    std::optional<int64_t> rid;
    std::chrono::steady_clock::time_point received;  // for mpim_ws_send_seconds
  };
  core::Fifo<QueuedSend> sends_;
  // Sends handed to the message service whose reply is not queued yet; the
  // next waits while `unordered_send_` (the last one's number) has no
  // fixed place yet, so the store takes them in arrival order.
  int sends_in_flight_ = 0;
  uint64_t sends_started_ = 0;
  uint64_t unordered_send_ = 0;
  int pending_replies_ = 0;  // async ops (read, sync) whose reply is not queued yet
  int64_t draining_since_ms_ = 0;
  // Set by hello: this device (login session) acked, in the conversations
  // the hello did not list, all that was made before it.
  int64_t activated_wall_ms_ = 0;
  // Pushed after registration, before the hello went out.
  std::vector<std::shared_ptr<const OutMessage>> early_;
};

}  // namespace mpim::gateway
