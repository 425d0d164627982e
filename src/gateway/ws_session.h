// One client WebSocket connection as the protocol sees it (protocol.md
// section 3): its life cycle (authentication, the hello, draining, closing)
// and the client ops, with delivery of pushed events delegated to units
// that hold one concern each:
//   - gateway/conversation_order.h: per conversation, msg events leave in
//     seq order (gaps held up to gateway.gap_wait_ms, then filled from the
//     store);
//   - gateway/outbound_queue.h: frames leave by priority (replies first)
//     without reordering a conversation; qos 1 messages are re-sent until
//     acked; queued + unacked bytes above gateway.send_queue_max_bytes close
//     the session with 4008;
//   - gateway/send_window.h: the session's sends, pipelined in arrival order;
//   - gateway/frames.h, gateway/message_json.h: the text of every frame.
//
// Threading: everything runs on the connection's io thread. Other threads
// reach a session through Post-ing methods (the Deliver* family).
#pragma once

#include <atomic>
#include <boost/json/object.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/clock.h"
#include "core/config.h"
#include "gateway/conversation_order.h"
#include "gateway/out_message.h"
#include "gateway/outbound_queue.h"
#include "gateway/send_window.h"
#include "gateway/unauthenticated_cap.h"
#include "net/websocket.h"
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
  // Pushes to this session may have been lost (LocalDeliverer::
  // ResyncSessions): at a random moment within kResyncSpreadMs (so that a
  // node's sessions do not all ask at once) it reads the conversations with
  // messages beyond its delivered cursor (as hello does) and, for each one
  // whose last message it has not handed on, takes that message as if it
  // had been pushed: the conversation's order then fills what lies before
  // it from the store, as for any gap. Any thread.
  void RequestResync();

  route::ConnId conn_id() const { return conn_id_; }
  // The io thread the session lives on (net::WsConnection::loop()).
  const void* loop() const { return loop_; }
  // The authenticated user (0 before); any thread.
  int64_t user_id() const { return user_id_.load(std::memory_order_acquire); }

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

  // A conversation this socket has seen: its order and its share of the queue.
  struct Conversation {
    ConversationOrder order;
    OutboundQueue::Stream stream;
  };

  void Authenticate(std::string_view token, std::optional<int64_t> rid);
  void Activate(service::Principal principal, std::optional<int64_t> rid);
  // Reads the hello list (after the route is in the table) and sends it.
  void ReadHello();
  void HandleOp(const std::string& op, boost::json::object& frame, std::optional<int64_t> rid);
  // `read_ns` (unix ns; 0: tracing off) is when the frame was read.
  void OpSend(boost::json::object& frame, std::optional<int64_t> rid, int64_t read_ns = 0);
  static void EndSendSpan(core::trace::Span& span, const core::StatusOr<service::SendResult>& r);
  // Hands waiting sends to the message service while the window lets them.
  void StartNextSend();
  void OnSendResult(std::optional<int64_t> rid, const core::StatusOr<service::SendResult>& r,
                    int64_t now_ms);
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

  // A pushed message, through its conversation's order into the queue.
  void AcceptMessage(const std::shared_ptr<const OutMessage>& msg, int64_t now_ms);
  // Reads the messages missing before `conv`'s held ones from the store.
  void FillGap(const std::string& conv_id, Conversation& conv);
  void Resync();
  // Reads message `seq` of `conv_id` and accepts it as pushed.
  void FetchAsPushed(const std::string& conv_id, int64_t seq);
  // Reads where a conversation the hello did not list starts on this socket.
  void AskStart(const std::string& conv_id, Conversation& conv);
  // Queues a msg event of `conv` (what its ConversationOrder emits).
  void EnqueueMessage(Conversation& conv, const OutMessage& msg);
  // Queues an event frame outside conversations.
  void EnqueueEvent(std::shared_ptr<const std::string> frame, service::Priority priority);
  void EnqueueReply(std::shared_ptr<const std::string> frame);  // before every event
  // After a frame was queued: closes a slow consumer (`within` false), else pumps.
  void Queued(bool within);
  void Pump();
  void CloseWith(uint16_t code, std::string_view reason);
  // Stops taking ops, answers what is owed, then closes with `code`.
  void CloseAfterReplies(uint16_t code, std::string reason);
  size_t MaxBytes() const { return static_cast<size_t>(ctx_.config.send_queue_max_bytes); }

  GatewayContext& ctx_;
  std::shared_ptr<net::WsConnection> conn_;
  const route::ConnId conn_id_;
  const std::weak_ptr<net::WsConnection> post_conn_;  // for PostToConn
  const void* const loop_;
  State state_ = State::kAwaitingAuth;
  service::Principal principal_;
  std::atomic<int64_t> user_id_{0};  // principal_.user_id, for other threads
  int64_t auth_deadline_ms_ = 0;
  UnauthenticatedCap::Slot auth_slot_;  // held until authenticated (no token on the upgrade)
  bool registered_ = false;             // in the route table and the registry
  std::optional<int64_t> hello_rid_;    // the auth frame's rid, for the hello reply

  OutboundQueue queue_;
  std::unordered_map<std::string, Conversation> convs_;
  std::optional<std::pair<uint16_t, std::string>> close_after_flush_;
  std::vector<int64_t> subscriptions_;
  SendWindow sends_;
  int pending_replies_ = 0;  // async ops (read, sync) whose reply is not queued yet
  int64_t draining_since_ms_ = 0;
  int64_t resync_at_ms_ = 0;  // steady ms of a requested resync; 0: none
  // Pushed after registration, before the hello went out.
  std::vector<std::shared_ptr<const OutMessage>> early_;
};

}  // namespace mpim::gateway
