// RFC 6455 server side on a plain Asio socket: the handshake answer, what
// the frames read mean (WsFrameParser in ws_frame_parser.h parses them:
// masking, fragmentation, control frames, close codes, size limit) and a
// write buffer that coalesces frames. Reads wait for readability
// instead of parking a read with a buffer, so idle connections own no
// buffers; every connection of an io thread reads into one shared chunk.
#include "net/websocket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <vector>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "net/websocket_upgrade.h"
#include "net/ws_frame_parser.h"

namespace mpim::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

namespace {

// A close that the peer does not complete (it is not reading) ends the
// connection hard after this long.
constexpr int64_t kCloseGraceMs = 10000;
// Bytes read per system call, into a buffer shared by an io thread.
constexpr size_t kReadChunk = 64 * 1024;
// Reads per readiness event before other connections get a turn.
constexpr int kReadsPerTurn = 4;
constexpr std::string_view kAcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

constexpr uint16_t kCloseNormal = 1000;
constexpr uint16_t kCloseGoingAway = 1001;

core::Counter& SocketWrites() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_ws_socket_writes_total",
                   "Write system calls on WebSocket sockets (frames are coalesced into them).")
          .With({});
  return c;
}

// base64(SHA-1(key + GUID)), RFC 6455 section 4.2.2.
std::string AcceptKey(std::string_view key) {
  std::string input(key);
  input.append(kAcceptGuid);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char out[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
}

// A Sec-WebSocket-Key must be the base64 of 16 bytes: 22 characters and "==".
bool IsValidKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

std::string HandshakeError(int status, std::string_view reason, const core::Status& error,
                           bool version_header) {
  std::string body = core::ErrorBodyJson(error);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  if (version_header) out += "Sec-WebSocket-Version: 13\r\n";
  out += "Server: mpim\r\nContent-Type: application/json\r\nConnection: close\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

// Connection ids are never reused, within a process or across its restarts:
// a route of the previous process may still name an id for a moment after a
// restart (in a cluster's route table, until the new process's heartbeat)
// and must not reach someone else's new connection. They start at the
// process's start time in microseconds shifted left 12 bits, so a restart
// starts above every id its predecessor gave unless that one made more than
// 4,096 connections per microsecond it lived.
uint64_t FirstConnId() {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  return (static_cast<uint64_t>(us) << 12) + 1;
}

std::atomic<uint64_t> g_next_conn_id{FirstConnId()};

class WsConnectionImpl;

// One per io thread: ticks every connection living on that thread.
class Ticker {
 public:
  explicit Ticker(const asio::any_io_executor& executor) : timer_(executor) { Arm(); }

  void Add(WsConnectionImpl* c) { conns_.insert(c); }
  void Remove(WsConnectionImpl* c) { conns_.erase(c); }

  // The ticker of the calling io thread, made on first use.
  static Ticker& ForThisThread(const asio::any_io_executor& executor) {
    thread_local std::unique_ptr<Ticker> ticker;
    if (!ticker) ticker = std::make_unique<Ticker>(executor);
    return *ticker;
  }

 private:
  void Arm();

  asio::steady_timer timer_;
  std::unordered_set<WsConnectionImpl*> conns_;
  std::vector<WsConnectionImpl*> snapshot_;
};

// The connections of an io thread written to in its current turn.
struct FlushList {
  std::vector<std::shared_ptr<WsConnectionImpl>> dirty;
  bool posted = false;

  static FlushList& ForThisThread() {
    thread_local FlushList list;
    return list;
  }
};

// The connections of an io thread whose frames may wait (coalesce_ms).
struct DelayedFlushes {
  explicit DelayedFlushes(const asio::any_io_executor& executor) : timer(executor) {}

  asio::steady_timer timer;
  std::vector<std::shared_ptr<WsConnectionImpl>> dirty;
  bool armed = false;

  static DelayedFlushes& ForThisThread(const asio::any_io_executor& executor) {
    thread_local std::unique_ptr<DelayedFlushes> delayed;
    if (!delayed) delayed = std::make_unique<DelayedFlushes>(executor);
    return *delayed;
  }
};

// What the handshake needs of the upgrade request.
struct UpgradeFields {
  std::string version;
  std::string key;
};

class WsConnectionImpl final : public WsConnection,
                               public std::enable_shared_from_this<WsConnectionImpl> {
 public:
  WsConnectionImpl(tcp::socket socket, UpgradeFields upgrade, HttpRequest request,
                   const WsOptions& options, std::shared_ptr<void> guard)
      : id_(g_next_conn_id.fetch_add(1)),
        socket_(std::move(socket)),
        upgrade_(std::move(upgrade)),
        request_(std::move(request)),
        options_(options),
        guard_(std::move(guard)),
        parser_(options.max_message_bytes) {
    loop_ = &asio::query(socket_.get_executor(), asio::execution::context);
  }

  uint64_t id() const override { return id_; }
  const void* loop() const override { return loop_; }
  const HttpRequest& request() const override { return request_; }
  void SetHandler(std::shared_ptr<WsHandler> handler) override { handler_ = std::move(handler); }
  bool writing() const override { return writing_; }
  size_t buffered() const override { return out_.size() - sent_; }
  bool closing() const override { return closing_; }

  void Post(absl::AnyInvocable<void()> fn) override {
    asio::post(socket_.get_executor(), std::move(fn));
  }

  // Answers the handshake, opens the connection and starts reading.
  void Start() {
    Ticker::ForThisThread(socket_.get_executor()).Add(this);
    error_code ec;
    socket_.set_option(tcp::no_delay(true), ec);
    socket_.non_blocking(true, ec);
    std::string refusal = CheckHandshake();
    if (!refusal.empty()) {
      // Not a WebSocket: answer over HTTP and end the connection.
      out_ = std::move(refusal);
      closing_ = true;
      closing_since_ = core::SystemClock().SteadyMs();
      after_write_ = AfterWrite::kShutdownSend;
      discard_input_ = true;
    } else {
      out_ =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: " +
          AcceptKey(upgrade_.key) + "\r\nServer: mpim\r\n\r\n";
      open_ = true;
      last_receive_ = last_ping_ = core::SystemClock().SteadyMs();
      if (pending_close_) {
        auto [code, reason] = std::move(*pending_close_);
        pending_close_.reset();
        Close(code, reason);
      } else if (handler_) {
        handler_->OnOpen();
      }
    }
    upgrade_ = {};
    request_ = HttpRequest{};  // read by OnOpen only; an idle session keeps none of it
    Flush();
    if (!finished_) WaitReadable();
  }

  bool Write(std::string_view text, bool may_wait) override {
    if (closing_ || finished_ || !open_) return false;
    AppendFrame(WsOpcode::kText, text);
    if (may_wait && options_.coalesce_ms > 0) {
      ScheduleDelayedFlush();
    } else {
      ScheduleFlush();
    }
    return true;
  }

  void Close(uint16_t code, std::string_view reason) override {
    if (closing_ || finished_) return;
    if (!open_) {
      // Asked for by the accept function: closed right after the 101, so the
      // client still gets the code.
      pending_close_.emplace(code, std::string(reason));
      return;
    }
    SendClose(code, reason);
    ScheduleFlush();
  }

  void Drain(uint16_t code, std::string_view reason) override {
    if (open_ && !closing_ && !finished_ && handler_) return handler_->OnDrain(code, reason);
    Close(code, reason);
  }

  void Abort() override { Finish(); }

  void Tick(int64_t now) {
    if (finished_) return;
    if (closing_) {
      if (now - closing_since_ > kCloseGraceMs) Finish();
      return;
    }
    if (now - last_receive_ > options_.idle_timeout_ms) {
      Close(kCloseGoingAway, "idle timeout");
      return;
    }
    if (now - last_ping_ >= options_.ping_interval_ms) {
      last_ping_ = now;
      AppendFrame(WsOpcode::kPing, {});
      ScheduleFlush();
    }
    if (handler_) handler_->OnTick(now);
  }

  void AcknowledgeNow() override {
    if (finished_) return;
    int one = 1;
    ::setsockopt(socket_.native_handle(), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  }

 private:
  enum class AfterWrite { kNothing, kShutdownSend, kFinish };

  std::string CheckHandshake() const {
    if (upgrade_.version != "13") {
      return HandshakeError(426, "Upgrade Required",
                            absl::InvalidArgumentError("Sec-WebSocket-Version must be 13"), true);
    }
    if (!IsValidKey(upgrade_.key)) {
      return HandshakeError(400, "Bad Request",
                            absl::InvalidArgumentError("missing or malformed Sec-WebSocket-Key"),
                            false);
    }
    return {};
  }

  // ---- reading ----

  void WaitReadable() {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this()](error_code ec) { self->OnReadable(ec); });
  }

  void OnReadable(error_code ec) {
    if (finished_) return;
    if (ec) return Finish();
    thread_local std::unique_ptr<char[]> chunk(new char[kReadChunk]);
    for (int i = 0; i < kReadsPerTurn; ++i) {
      size_t n = socket_.read_some(asio::buffer(chunk.get(), kReadChunk), ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) return WaitReadable();
      if (ec) return Finish();  // end of stream included
      last_receive_ = core::SystemClock().SteadyMs();
      if (!discard_input_) Consume(chunk.get(), n);
      if (finished_) return;
      // A short read emptied the socket: wait rather than ask again for the
      // would_block (one system call less per message; the wait re-arms
      // epoll, which reports what arrived meanwhile).
      if (n < kReadChunk) return WaitReadable();
    }
    // More may be waiting: let the other connections of this thread go first.
    asio::post(socket_.get_executor(),
               [self = shared_from_this()] { self->OnReadable(error_code{}); });
  }

  // Acts on the frames in `data` (after the incomplete one kept from before).
  void Consume(char* data, size_t n) {
    parser_.Feed(data, n);
    while (!discard_input_ && !finished_) {
      WsEvent event = parser_.Next();
      switch (event.kind) {
        case WsEvent::Kind::kNeedMore:
          return;  // the parser keeps the bytes of an incomplete frame
        case WsEvent::Kind::kText:
        case WsEvent::Kind::kBinary:
          Deliver(event.kind, event.payload);
          break;
        case WsEvent::Kind::kPing:
          if (!closing_) {
            AppendFrame(WsOpcode::kPong, event.payload);
            ScheduleFlush();
          }
          break;
        case WsEvent::Kind::kPong:
          break;  // last_receive_ is all a pong is for
        case WsEvent::Kind::kClose:
          OnCloseFrame(event.payload);
          break;
        case WsEvent::Kind::kError:
          Fail(event.close_code, event.reason);
          break;
      }
    }
    parser_.Clear();  // no more frames are read: drop what is kept
  }

  void Deliver(WsEvent::Kind kind, std::string_view data) {
    if (!handler_ || closing_) return;  // after a close, data is not read
    if (kind == WsEvent::Kind::kText) {
      handler_->OnText(data);
    } else {
      handler_->OnBinary();
    }
  }

  void OnCloseFrame(std::string_view data) {
    if (closing_) {
      // The answer to our close: the handshake is complete once ours is out.
      discard_input_ = true;
      FinishAfterWrite();
      return;
    }
    WsClosePayload close = DecodeClosePayload(data);
    if (close.error != 0) return Fail(close.error, close.error_reason);
    // Echo the peer's code, then end the connection.
    SendClose(close.code, {});
    discard_input_ = true;
    FinishAfterWrite();
  }

  // Fails the connection (RFC 6455 section 7.1.7): a close frame with `code`,
  // then no more frames are read; the socket ends once the peer closes.
  void Fail(uint16_t code, std::string_view reason) {
    if (!closing_) SendClose(code, reason);
    discard_input_ = true;
    parser_.Clear();  // after SendClose: `reason` may be the parser's
    if (after_write_ == AfterWrite::kNothing) after_write_ = AfterWrite::kShutdownSend;
    ScheduleFlush();
  }

  // ---- writing ----

  void AppendFrame(WsOpcode opcode, std::string_view payload) {
    char header[10];
    size_t h = 0;
    header[h++] = static_cast<char>(0x80 | static_cast<uint8_t>(opcode));
    size_t n = payload.size();
    if (n < 126) {
      header[h++] = static_cast<char>(n);
    } else if (n <= 0xFFFF) {
      header[h++] = 126;
      header[h++] = static_cast<char>(n >> 8);
      header[h++] = static_cast<char>(n);
    } else {
      header[h++] = 127;
      for (int shift = 56; shift >= 0; shift -= 8) header[h++] = static_cast<char>(n >> shift);
    }
    out_.append(header, h);
    out_.append(payload);
  }

  // A close frame with `code` (none when 0); nothing may follow it.
  void SendClose(uint16_t code, std::string_view reason) {
    std::string payload;
    if (code != 0) {
      payload.push_back(static_cast<char>(code >> 8));
      payload.push_back(static_cast<char>(code & 0xFF));
      payload.append(reason.substr(0, kWsMaxControlPayload - 2));
    }
    AppendFrame(WsOpcode::kClose, payload);
    closing_ = true;
    closing_since_ = core::SystemClock().SteadyMs();
  }

  void FinishAfterWrite() {
    after_write_ = AfterWrite::kFinish;
    if (buffered() == 0 && !writing_) return Finish();
    ScheduleFlush();
  }

  // Flushes at the end of this turn of the io thread, so that what is
  // written until then goes out in one system call. One posted handler per
  // io thread flushes every connection written to in the turn.
  void ScheduleFlush() {
    if (flush_posted_ || writing_ || finished_) return;
    flush_posted_ = true;
    FlushList& list = FlushList::ForThisThread();
    list.dirty.push_back(shared_from_this());
    if (list.posted) return;
    list.posted = true;
    asio::post(socket_.get_executor(), [&list] {
      list.posted = false;  // flushes may write again: a new turn
      FlushEach(list.dirty, &WsConnectionImpl::flush_posted_);
    });
  }

  // Flushes every connection of `dirty` (emptied first, so flushes may
  // schedule again), clearing the flag that had it listed.
  static void FlushEach(std::vector<std::shared_ptr<WsConnectionImpl>>& dirty,
                        bool WsConnectionImpl::*listed) {
    std::vector<std::shared_ptr<WsConnectionImpl>> now;
    now.swap(dirty);
    for (const auto& c : now) {
      (*c).*listed = false;
      c->Flush();
    }
  }

  // Flushes within coalesce_ms: one timer per io thread serves every
  // connection waiting so. An earlier ScheduleFlush takes the frames along.
  void ScheduleDelayedFlush() {
    if (delayed_flush_ || flush_posted_ || writing_ || finished_) return;
    delayed_flush_ = true;
    DelayedFlushes& delayed = DelayedFlushes::ForThisThread(socket_.get_executor());
    delayed.dirty.push_back(shared_from_this());
    if (delayed.armed) return;
    delayed.armed = true;
    delayed.timer.expires_after(std::chrono::milliseconds(options_.coalesce_ms));
    delayed.timer.async_wait([&delayed](error_code ec) {
      delayed.armed = false;
      if (!ec) FlushEach(delayed.dirty, &WsConnectionImpl::delayed_flush_);
    });
  }

  // Writes what the socket takes now; waits for it to take the rest.
  void Flush() {
    if (finished_ || writing_) return;
    bool wrote = false;
    while (sent_ < out_.size()) {
      error_code ec;
      size_t n = socket_.write_some(asio::buffer(out_.data() + sent_, out_.size() - sent_), ec);
      SocketWrites().Inc();
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        writing_ = true;
        socket_.async_wait(tcp::socket::wait_write, [self = shared_from_this()](error_code ec) {
          self->writing_ = false;
          if (self->finished_) return;
          if (ec) return self->Finish();
          self->Flush();
        });
        return;
      }
      if (ec) return Finish();
      sent_ += n;
      wrote = true;
    }
    std::string().swap(out_);  // an idle connection keeps no buffer
    sent_ = 0;
    switch (after_write_) {
      case AfterWrite::kFinish:
        return Finish();
      case AfterWrite::kShutdownSend: {
        error_code ec;
        socket_.shutdown(tcp::socket::shutdown_send, ec);
        after_write_ = AfterWrite::kNothing;
        return;
      }
      case AfterWrite::kNothing:
        break;
    }
    if (wrote && open_ && !closing_ && handler_) handler_->OnWritable();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    Ticker::ForThisThread(socket_.get_executor()).Remove(this);
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
    socket_.close(ec);
    parser_.Clear();
    std::string().swap(out_);
    sent_ = 0;
    if (handler_) {
      auto handler = std::move(handler_);
      handler->OnClosed();
    }
    guard_.reset();
  }

  const uint64_t id_;
  tcp::socket socket_;
  const void* loop_ = nullptr;  // the io_context
  UpgradeFields upgrade_;
  HttpRequest request_;
  const WsOptions options_;
  std::shared_ptr<void> guard_;
  std::shared_ptr<WsHandler> handler_;
  WsFrameParser parser_;  // holds an incomplete frame and a fragmented message
  std::string out_;       // frames to write; out_[0, sent_) are written
  size_t sent_ = 0;
  std::optional<std::pair<uint16_t, std::string>> pending_close_;  // asked for before the 101
  AfterWrite after_write_ = AfterWrite::kNothing;
  bool open_ = false;
  bool writing_ = false;
  bool flush_posted_ = false;
  bool delayed_flush_ = false;  // in this thread's DelayedFlushes
  bool closing_ = false;        // our close frame is queued or sent
  bool discard_input_ = false;  // no more frames are parsed
  bool finished_ = false;
  int64_t closing_since_ = 0;
  int64_t last_receive_ = 0;
  int64_t last_ping_ = 0;

  friend class Ticker;
};

void Ticker::Arm() {
  timer_.expires_after(std::chrono::milliseconds(kTickMs));
  timer_.async_wait([this](error_code ec) {
    if (ec) return;
    int64_t now = core::SystemClock().SteadyMs();
    snapshot_.assign(conns_.begin(), conns_.end());
    for (WsConnectionImpl* c : snapshot_) {
      if (conns_.count(c)) c->Tick(now);
    }
    Arm();
  });
}

}  // namespace

namespace internal {

std::shared_ptr<WsConnection> StartWebSocket(
    tcp::socket socket, boost::beast::http::request<boost::beast::http::string_body> upgrade,
    HttpRequest request, const WsOptions& options, const WsAcceptFn& accept,
    std::shared_ptr<void> guard) {
  namespace http = boost::beast::http;
  UpgradeFields fields{std::string(upgrade[http::field::sec_websocket_version]),
                       std::string(upgrade[http::field::sec_websocket_key])};
  upgrade = {};
  auto conn = std::make_shared<WsConnectionImpl>(std::move(socket), std::move(fields),
                                                 std::move(request), options, std::move(guard));
  accept(conn);
  conn->Start();
  return conn;
}

}  // namespace internal
}  // namespace mpim::net
