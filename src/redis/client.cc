#include "redis/client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <deque>
#include <map>
#include <random>
#include <thread>

#include "core/logging.h"

namespace mpim::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

const core::Logger& Log() {
  static const core::Logger log("redis");
  return log;
}

bool ParseInt(std::string_view s, int64_t min, int64_t max, int64_t* out) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size() && *out >= min && *out <= max;
}

Reply Convert(const redisReply* r) {
  Reply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = Reply::Type::kArray;
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      break;  // nil
  }
  return out;
}

}  // namespace

core::StatusOr<Url> ParseUrl(std::string_view url) {
  auto bad = [url](const std::string& why) {
    return absl::InvalidArgumentError("bad redis URL \"" + std::string(url) + "\": " + why);
  };
  constexpr std::string_view kScheme = "redis://";
  if (url.substr(0, kScheme.size()) != kScheme)
    return bad("expected redis://[:PASS@]HOST:PORT[/DB]");
  std::string_view rest = url.substr(kScheme.size());
  Url out;
  if (size_t at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    out.password =
        std::string(colon == std::string_view::npos ? userinfo : userinfo.substr(colon + 1));
    rest = rest.substr(at + 1);
  }
  std::string_view hostport = rest;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    hostport = rest.substr(0, slash);
    std::string_view db = rest.substr(slash + 1);
    if (!db.empty() && !ParseInt(db, 0, 1 << 20, &out.db)) return bad("database must be a number");
  }
  size_t colon = hostport.rfind(':');
  std::string_view host = hostport.substr(0, colon);
  if (colon != std::string_view::npos) {
    int64_t port = 0;
    if (!ParseInt(hostport.substr(colon + 1), 1, 65535, &port)) return bad("port must be 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return bad("no host");
  out.host = std::string(host);
  return out;
}

// Everything below runs on the client's thread (`io`), so it needs no lock.
struct Client::State : std::enable_shared_from_this<State> {
  // A command on its way: given to hiredis, or waiting for the connection.
  struct Op {
    std::vector<std::string> args;
    core::Callback<Reply> done;
    Clock::time_point deadline;
  };

  // One hiredis connection and the descriptor Asio waits on. hiredis owns
  // the fd (it closes it when it frees the context): the descriptor is
  // released, never closed, in the context's cleanup hook.
  struct Conn : std::enable_shared_from_this<Conn> {
    State* state = nullptr;
    bool subscriber = false;
    redisAsyncContext* ac = nullptr;  // null once hiredis freed it
    std::unique_ptr<asio::posix::stream_descriptor> fd;
    bool want_read = false, want_write = false;
    bool read_armed = false, write_armed = false;
    bool ready = false;  // handshake done (subscriber: subscribed)
    bool lost = false;   // OnLost ran
    std::string reason;  // why we dropped it, for the commands that fail with it
    std::deque<std::unique_ptr<Op>> inflight;  // given to hiredis, in send order
  };

  struct Handler {
    MessageHandler on_message;
    SubscribedHandler on_subscribed;
  };
  struct Channel {
    std::vector<Handler> handlers;
    bool subscribed = false;  // confirmed on the current subscriber connection
  };

  ClientOptions options;
  Url url;
  asio::io_context io{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
  asio::steady_timer deadline_timer{io};  // the command connection's earliest deadline
  asio::steady_timer reconnect_timer{io};
  asio::steady_timer sub_reconnect_timer{io};
  asio::steady_timer ping_timer{io};
  std::shared_ptr<Conn> cmd, sub;
  std::deque<std::unique_ptr<Op>> waiting;  // given while the command connection is being made
  std::map<std::string, Channel, std::less<>> channels;
  int cmd_failures = 0, sub_failures = 0;  // in a row, for the back-off
  bool stopping = false;
  std::mt19937_64 rng{std::random_device{}()};
  std::shared_ptr<std::atomic<bool>> connected = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<std::atomic<uint64_t>> connects = std::make_shared<std::atomic<uint64_t>>(0);
  std::thread thread;

  // --- event hooks (hiredis -> Asio) ---

  // Waits once for the fd to be readable (or writable) while hiredis wants
  // it, then lets hiredis read (write); hiredis asks again as it needs.
  static void Arm(const std::shared_ptr<Conn>& c, bool write) {
    bool& armed = write ? c->write_armed : c->read_armed;
    const bool& wanted = write ? c->want_write : c->want_read;
    if (c->ac == nullptr || armed || !wanted) return;
    armed = true;
    c->fd->async_wait(write ? asio::posix::stream_descriptor::wait_write
                            : asio::posix::stream_descriptor::wait_read,
                      [c, write, &armed, &wanted](boost::system::error_code ec) {
                        armed = false;
                        if (ec || c->ac == nullptr || !wanted) return;
                        // Either may free c->ac (then Arm does nothing).
                        write ? redisAsyncHandleWrite(c->ac) : redisAsyncHandleRead(c->ac);
                        Arm(c, write);
                      });
  }
  static std::shared_ptr<Conn> Of(void* privdata) {
    return static_cast<Conn*>(privdata)->shared_from_this();
  }
  static void AddRead(void* p) {
    auto c = Of(p);
    c->want_read = true;
    Arm(c, false);
  }
  static void DelRead(void* p) { static_cast<Conn*>(p)->want_read = false; }
  static void AddWrite(void* p) {
    auto c = Of(p);
    c->want_write = true;
    Arm(c, true);
  }
  static void DelWrite(void* p) { static_cast<Conn*>(p)->want_write = false; }
  // hiredis is about to free the context and close the fd.
  static void Cleanup(void* p) {
    Conn* c = static_cast<Conn*>(p);
    c->ac = nullptr;
    c->want_read = c->want_write = false;
    if (c->fd) c->fd->release();  // cancels the waits; the fd stays hiredis's to close
  }

  // --- connections ---

  std::chrono::milliseconds Backoff(int failures) {
    auto d = options.reconnect_min * (int64_t{1} << std::min(failures, 16));
    d = std::min<std::chrono::milliseconds>(d, options.reconnect_max);
    std::uniform_int_distribution<int64_t> half(d.count() / 2, std::max<int64_t>(1, d.count()));
    return std::chrono::milliseconds(half(rng));
  }

  // A new connection, or null (the reason logged) when hiredis cannot even
  // start one.
  std::shared_ptr<Conn> Open(bool subscriber) {
    redisAsyncContext* ac = redisAsyncConnect(url.host.c_str(), url.port);
    if (ac == nullptr) return nullptr;
    if (ac->err) {
      Log().Warn("redis connect failed", {{"error", ac->errstr}, {"host", url.host}});
      redisAsyncFree(ac);
      return nullptr;
    }
    auto c = std::make_shared<Conn>();
    c->state = this;
    c->subscriber = subscriber;
    c->ac = ac;
    c->fd = std::make_unique<asio::posix::stream_descriptor>(io, ac->c.fd);
    ac->data = c.get();
    ac->ev.data = c.get();
    ac->ev.addRead = &AddRead;
    ac->ev.delRead = &DelRead;
    ac->ev.addWrite = &AddWrite;
    ac->ev.delWrite = &DelWrite;
    ac->ev.cleanup = &Cleanup;
    redisAsyncSetConnectCallback(ac, &OnConnect);
    redisAsyncSetDisconnectCallback(ac, &OnDisconnect);
    return c;
  }

  static void OnConnect(const redisAsyncContext* ac, int status) {
    Conn* c = static_cast<Conn*>(ac->data);
    if (status != REDIS_OK) {
      c->reason = std::string("connect failed: ") + (ac->errstr ? ac->errstr : "");
      c->state->OnLost(c);  // hiredis frees the context after this returns
      return;
    }
    // The handshake (or AUTH and SUBSCRIBE) went with the connect.
  }
  static void OnDisconnect(const redisAsyncContext* ac, int) {
    Conn* c = static_cast<Conn*>(ac->data);
    if (c->reason.empty())
      c->reason = std::string("connection lost: ") + (ac->errstr ? ac->errstr : "closed");
    c->state->OnLost(c);
  }

  void ConnectCommand() {
    if (stopping) return;
    cmd = Open(false);
    if (!cmd) return OnCommandLost();
    const auto until = Clock::now() + options.timeout;
    std::vector<std::vector<std::string>> handshake;
    if (!url.password.empty()) handshake.push_back({"AUTH", url.password});
    if (url.db != 0) handshake.push_back({"SELECT", std::to_string(url.db)});
    handshake.push_back({"PING"});
    std::shared_ptr<Conn> c = cmd;
    for (size_t i = 0; i < handshake.size(); ++i) {
      const bool last = i + 1 == handshake.size();
      Send(c, std::make_unique<Op>(Op{std::move(handshake[i]),
                                      [this, c, last](core::StatusOr<Reply> r) {
                                        if (!r.ok())
                                          return Drop(
                                              c, "handshake: " + std::string(r.status().message()));
                                        if (last) Ready(c);
                                      },
                                      until}));
    }
    ArmDeadline();
  }

  void Ready(const std::shared_ptr<Conn>& c) {
    if (c != cmd || c->ac == nullptr) return;
    c->ready = true;
    cmd_failures = 0;
    connected->store(true, std::memory_order_relaxed);
    connects->fetch_add(1, std::memory_order_relaxed);
    Log().Info("redis connected", {{"host", url.host}, {"port", int64_t{url.port}}});
    while (!waiting.empty()) {
      std::unique_ptr<Op> op = std::move(waiting.front());
      waiting.pop_front();
      Send(c, std::move(op));
    }
    ArmDeadline();
    SchedulePing();
    // The subscriber follows the command connection, so that whoever hears
    // "subscribed" can send commands at once.
    if (!sub || sub->lost) {
      sub_reconnect_timer.cancel();
      ConnectSubscriber();
    }
  }

  // Drops a connection: every command on it fails with `why`.
  void Drop(const std::shared_ptr<Conn>& c, std::string why) {
    if (!c || c->lost) return;
    if (c->reason.empty()) c->reason = std::move(why);
    if (c->ac != nullptr) redisAsyncFree(c->ac);  // deferred by hiredis inside its callbacks
    OnLost(c.get());
  }

  void OnLost(Conn* c) {
    if (c->lost) return;
    c->lost = true;
    // Commands still with hiredis fail as it frees them; fail the rest now.
    if (c->ac == nullptr) FailAll(c->inflight, c->reason);
    if (c->subscriber) {
      if (c == sub.get()) OnSubscriberLost();
    } else if (c == cmd.get()) {
      OnCommandLost();
    }
  }

  void OnCommandLost() {
    const std::string reason = cmd ? cmd->reason : "connect failed";
    const bool was_up = connected->exchange(false, std::memory_order_relaxed);
    if (!stopping && (was_up || cmd_failures == 0)) {
      Log().Warn("redis connection lost", {{"reason", reason}});
    }
    FailAll(waiting, "redis is not connected (" + reason + ")");
    ping_timer.cancel();
    deadline_timer.cancel();
    Drop(sub, "the command connection was lost");
    if (stopping) return;
    reconnect_timer.expires_after(Backoff(cmd_failures++));
    reconnect_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) ConnectCommand();
    });
  }

  void FailAll(std::deque<std::unique_ptr<Op>>& ops, const std::string& why) {
    std::deque<std::unique_ptr<Op>> failed;
    failed.swap(ops);
    for (auto& op : failed) std::move(op->done)(absl::UnavailableError(why));
  }

  // --- commands ---

  static void OnReply(redisAsyncContext* ac, void* r, void* privdata) {
    Conn* c = static_cast<Conn*>(ac->data);
    Op* op = static_cast<Op*>(privdata);
    auto it = std::find_if(c->inflight.begin(), c->inflight.end(),
                           [op](const auto& p) { return p.get() == op; });
    if (it == c->inflight.end()) return;  // already failed
    std::unique_ptr<Op> owned = std::move(*it);
    c->inflight.erase(it);
    const auto* reply = static_cast<const redisReply*>(r);
    if (reply == nullptr) {
      return std::move(owned->done)(absl::UnavailableError(
          "redis: " + (c->reason.empty() ? std::string("connection closed") : c->reason)));
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      return std::move(owned->done)(
          absl::InternalError("redis: " + std::string(reply->str, reply->len)));
    }
    std::move(owned->done)(Convert(reply));
  }

  void Send(const std::shared_ptr<Conn>& c, std::unique_ptr<Op> op) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : op->args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    Op* raw = op.get();
    c->inflight.push_back(std::move(op));
    if (c->ac == nullptr ||
        redisAsyncCommandArgv(c->ac, &OnReply, raw, static_cast<int>(argv.size()), argv.data(),
                              lens.data()) != REDIS_OK) {
      std::unique_ptr<Op> failed = std::move(c->inflight.back());
      c->inflight.pop_back();
      std::move(failed->done)(absl::UnavailableError("redis: the connection is closing"));
    }
  }

  void Run(std::unique_ptr<Op> op) {
    if (stopping) return std::move(op->done)(absl::UnavailableError("redis client stopped"));
    if (cmd && cmd->ready && cmd->ac != nullptr) {
      Send(cmd, std::move(op));
      return ArmDeadline();
    }
    if (cmd && !cmd->lost) return waiting.push_back(std::move(op));  // being made
    std::move(op->done)(absl::UnavailableError("redis is not connected"));
  }

  // Replies come in order, so the oldest command's deadline is the first
  // to pass; waiting commands are failed with the connect that they wait on.
  void ArmDeadline() {
    if (!cmd || cmd->lost || cmd->inflight.empty()) return;
    Clock::time_point first = cmd->inflight.front()->deadline;
    if (!waiting.empty()) first = std::min(first, waiting.front()->deadline);
    if (deadline_timer.expiry() == first) return;
    deadline_timer.expires_at(first);
    deadline_timer.async_wait([this, c = cmd](boost::system::error_code ec) {
      if (ec || c != cmd || c->lost) return;
      const auto now = Clock::now();
      bool late = (!c->inflight.empty() && c->inflight.front()->deadline <= now) ||
                  (!waiting.empty() && waiting.front()->deadline <= now);
      if (late) {
        return Drop(c, "no reply within " + std::to_string(options.timeout.count()) + " ms");
      }
      ArmDeadline();
    });
  }

  void SchedulePing() {
    ping_timer.expires_after(options.ping_interval);
    ping_timer.async_wait([this, c = cmd](boost::system::error_code ec) {
      if (ec || c != cmd || c->lost) return;
      if (c->inflight.empty()) {
        Send(c, std::make_unique<Op>(Op{
                    {"PING"}, [](core::StatusOr<Reply>) {}, Clock::now() + options.timeout}));
        ArmDeadline();
      }
      SchedulePing();
    });
  }

  // --- subscriptions ---

  void ConnectSubscriber() {
    if (stopping || channels.empty() || (sub && !sub->lost)) return;
    if (!cmd || !cmd->ready || cmd->lost) return;  // Ready() connects it
    sub = Open(true);
    if (!sub) return OnSubscriberLost();
    if (!url.password.empty()) {
      std::shared_ptr<Conn> c = sub;
      Send(c, std::make_unique<Op>(Op{{"AUTH", url.password},
                                      [this, c](core::StatusOr<Reply> r) {
                                        if (!r.ok())
                                          Drop(c, "AUTH: " + std::string(r.status().message()));
                                      },
                                      Clock::now() + options.timeout}));
    }
    for (const auto& [name, channel] : channels) SendSubscribe(sub, name);
  }

  void SendSubscribe(const std::shared_ptr<Conn>& c, const std::string& channel) {
    if (c->ac == nullptr) return;
    const char* argv[] = {"SUBSCRIBE", channel.data()};
    const size_t lens[] = {9, channel.size()};
    redisAsyncCommandArgv(c->ac, &OnMessage, nullptr, 2, argv, lens);
  }

  static void OnMessage(redisAsyncContext* ac, void* r, void*) {
    const auto* reply = static_cast<const redisReply*>(r);
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
    State* s = static_cast<Conn*>(ac->data)->state;
    const redisReply* kind = reply->element[0];
    const redisReply* channel = reply->element[1];
    if (kind->type != REDIS_REPLY_STRING || channel->type != REDIS_REPLY_STRING) return;
    std::string_view k(kind->str, kind->len), ch(channel->str, channel->len);
    auto it = s->channels.find(ch);
    if (it == s->channels.end()) return;
    if (k == "subscribe") {
      s->sub_failures = 0;
      it->second.subscribed = true;
      for (const Handler& h : it->second.handlers) {
        if (h.on_subscribed) h.on_subscribed();
      }
    } else if (k == "message" && reply->element[2]->type == REDIS_REPLY_STRING) {
      std::string_view message(reply->element[2]->str, reply->element[2]->len);
      for (const Handler& h : it->second.handlers) {
        if (h.on_message) h.on_message(ch, message);
      }
    }
  }

  void OnSubscriberLost() {
    for (auto& [name, channel] : channels) channel.subscribed = false;
    if (stopping) return;
    sub_reconnect_timer.expires_after(Backoff(sub_failures++));
    sub_reconnect_timer.async_wait([this](boost::system::error_code ec) {
      if (!ec) ConnectSubscriber();
    });
  }

  void Stop() {
    stopping = true;
    FailAll(waiting, "redis client stopped");
    for (auto* t : {&deadline_timer, &reconnect_timer, &sub_reconnect_timer, &ping_timer})
      t->cancel();
    Drop(cmd, "redis client stopped");
    Drop(sub, "redis client stopped");
    connected->store(false, std::memory_order_relaxed);
    work.reset();
  }
};

Client::Client(std::shared_ptr<State> state)
    : state_(std::move(state)), connected_(state_->connected), connects_(state_->connects) {}

core::StatusOr<std::unique_ptr<Client>> Client::Start(ClientOptions options) {
  auto url = ParseUrl(options.url);
  if (!url.ok()) return url.status();
  auto state = std::make_shared<State>();
  state->options = std::move(options);
  state->url = std::move(*url);
  State* s = state.get();
  asio::post(s->io, [s] { s->ConnectCommand(); });
  s->thread = std::thread([s] { s->io.run(); });
  return std::unique_ptr<Client>(new Client(std::move(state)));
}

Client::~Client() {
  State* s = state_.get();
  asio::post(s->io, [s] { s->Stop(); });
  s->thread.join();
}

void Client::Command(std::vector<std::string> args, core::Callback<Reply> done) {
  State* s = state_.get();
  auto op = std::make_unique<State::Op>(
      State::Op{std::move(args), std::move(done), Clock::now() + s->options.timeout});
  asio::post(s->io, [s, op = std::move(op)]() mutable { s->Run(std::move(op)); });
}

void Client::Subscribe(std::string channel, MessageHandler on_message,
                            SubscribedHandler on_subscribed) {
  State* s = state_.get();
  asio::post(s->io, [s, channel = std::move(channel), on_message = std::move(on_message),
                     on_subscribed = std::move(on_subscribed)]() mutable {
    const bool known = s->channels.count(channel) > 0;
    State::Channel& c = s->channels[channel];
    c.handlers.push_back(State::Handler{std::move(on_message), std::move(on_subscribed)});
    if (known) {
      if (c.subscribed && c.handlers.back().on_subscribed) c.handlers.back().on_subscribed();
      return;
    }
    if (s->sub && !s->sub->lost) {
      s->SendSubscribe(s->sub, channel);
    } else if (!s->sub) {
      s->ConnectSubscriber();
    }
  });
}

}  // namespace mpim::redis
