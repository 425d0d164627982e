// An asynchronous Redis client: hiredis (0.14, RESP2) driven by an Asio
// event loop on a thread of its own. One command connection carries every
// command, pipelined (a burst of commands leaves in one write, replies come
// back in order); a second connection holds the subscriptions (SUBSCRIBE
// puts a connection in a mode where it can run nothing else).
//
// On connect the client sends AUTH (URL with a password), SELECT (URL with a
// database) and PING; the connection is `connected()` once PING answers.
// Every command has a deadline (`timeout`): a command without a reply by
// then fails with kUnavailable, and the connection it waits on is dropped
// (every command on it fails with kUnavailable) and made again with
// exponential back-off. While idle the client PINGs every `ping_interval`,
// so a Redis that stops answering is noticed without traffic. When the
// command connection is lost, the subscriber connection is dropped and made
// again (once the command connection is back), so a subscriber never
// outlives a Redis it cannot hear, and a subscription handler may send
// commands.
//
// Commands given while a connection is being made wait for it (up to their
// deadline); commands given while the client is backing off fail at once
// with kUnavailable ("redis is not connected"), so callers that can do
// without Redis (the cache) fall back at once.
//
// Threads: every public method may be called from any thread. Callbacks
// (replies, messages, subscription notices) run on the client's thread,
// never inline in the call that gave them and never under a lock of the
// client; they must not block (post long work elsewhere) and must not
// destroy the client.
// Failures: kInvalidArgument from Start for a bad URL; kUnavailable for a
// command that did not get a reply (not connected, timeout, connection
// lost, client stopped); kInternal for a Redis error reply ("ERR ...",
// "WRONGTYPE ...") with Redis's text.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/callback.h"
#include "core/status.h"

namespace mpim::redis {

// redis://[:PASS@]HOST:PORT[/DB] (also redis://[USER:PASS@]; a user name is
// ignored: Redis 7's default user).
struct Url {
  std::string host;
  uint16_t port = 6379;
  std::string password;
  int64_t db = 0;
};
core::StatusOr<Url> ParseUrl(std::string_view url);

// One RESP2 reply.
struct Reply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  bool nil() const { return type == Type::kNil; }
};

struct ClientOptions {
  std::string url;
  std::chrono::milliseconds timeout{1000};  // each command; a connect and its handshake
  std::chrono::milliseconds reconnect_min{50};
  std::chrono::milliseconds reconnect_max{2000};
  std::chrono::milliseconds ping_interval{1000};  // health check while idle
};

class Client {
 public:
  // Called for each message on a subscribed channel.
  using MessageHandler = std::function<void(std::string_view channel, std::string_view message)>;
  // Called each time Redis confirms the subscription: at first and after
  // every reconnect of the subscriber (messages published in between were
  // missed).
  using SubscribedHandler = std::function<void()>;

  // Starts the client's thread and its first connects (it does not wait for
  // them). kInvalidArgument for a bad URL.
  static core::StatusOr<std::unique_ptr<Client>> Start(ClientOptions options);
  // Fails every pending command with kUnavailable, closes the connections
  // and joins the thread. Not from a callback of this client.
  ~Client();

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends one command ({"SET", key, value, "PX", "1000"}); arguments are
  // binary-safe. `done` runs once, on the client's thread.
  void Command(std::vector<std::string> args, core::Callback<Reply> done);
  // Subscribes to `channel` for the client's lifetime; several handlers
  // may listen to one channel (each Subscribe adds one).
  void Subscribe(std::string channel, MessageHandler on_message,
                 SubscribedHandler on_subscribed = nullptr);

  // Whether the command connection is up (answered its PING and has not
  // failed since). A hint: a command may still fail.
  bool connected() const { return connected_->load(std::memory_order_relaxed); }
  // How many times the command connection became ready (for tests).
  uint64_t connects() const { return connects_->load(std::memory_order_relaxed); }

 private:
  struct State;
  explicit Client(std::shared_ptr<State> state);

  std::shared_ptr<State> state_;
  std::shared_ptr<std::atomic<bool>> connected_;
  std::shared_ptr<std::atomic<uint64_t>> connects_;
};

}  // namespace mpim::redis
