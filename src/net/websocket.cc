#include "net/websocket.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <optional>
#include <unordered_set>
#include <vector>

#include "net/websocket_upgrade.h"

namespace mpim::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);
// A close that the peer does not complete (it is not reading) ends the
// connection hard after this long.
constexpr int64_t kCloseGraceMs = 10000;

int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::atomic<uint64_t> g_next_conn_id{1};

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

class WsConnectionImpl final : public WsConnection,
                               public std::enable_shared_from_this<WsConnectionImpl> {
 public:
  WsConnectionImpl(tcp::socket socket, beast::http::request<beast::http::string_body> upgrade,
                   HttpRequest request, const WsOptions& options, std::shared_ptr<void> guard)
      : id_(g_next_conn_id.fetch_add(1)),
        ws_(std::move(socket)),
        upgrade_(std::move(upgrade)),
        request_(std::move(request)),
        options_(options),
        guard_(std::move(guard)) {}

  uint64_t id() const override { return id_; }
  const HttpRequest& request() const override { return request_; }
  void SetHandler(std::shared_ptr<WsHandler> handler) override { handler_ = std::move(handler); }
  bool writing() const override { return writing_; }
  bool closing() const override { return closing_; }

  void Post(absl::AnyInvocable<void()> fn) override {
    asio::post(ws_.get_executor(), std::move(fn));
  }

  void Start() { asio::co_spawn(ws_.get_executor(), Run(shared_from_this()), asio::detached); }

  bool Write(std::shared_ptr<const std::string> frame) override {
    if (writing_ || closing_ || !open_) return false;
    writing_ = true;
    ws_.text(true);
    auto buffer = asio::buffer(*frame);
    ws_.async_write(buffer, [self = shared_from_this(), frame = std::move(frame)](
                                beast::error_code ec, size_t) {
      self->writing_ = false;
      if (ec) {
        self->HardClose();
        return;
      }
      if (self->handler_ && !self->finished_) self->handler_->OnWritable();
    });
    return true;
  }

  void Close(uint16_t code, std::string_view reason) override {
    if (closing_ || finished_) return;
    closing_ = true;
    closing_since_ = SteadyNowMs();
    websocket::close_reason cr;
    cr.code = code;
    cr.reason.assign(reason.data(), reason.size());
    if (!open_) {
      // The handshake is still completing (the client may already hold its
      // 101): close right after it, so the client still gets the code.
      pending_close_ = std::move(cr);
      return;
    }
    StartClose(cr);
  }

  void StartClose(const websocket::close_reason& cr) {
    ws_.async_close(cr, [self = shared_from_this()](beast::error_code) { self->HardClose(); });
  }

  void Tick(int64_t now) {
    if (finished_) return;
    if (closing_) {
      if (now - closing_since_ > kCloseGraceMs) HardClose();
      return;
    }
    if (open_) {
      if (now - last_receive_ > options_.idle_timeout_ms) {
        Close(static_cast<uint16_t>(websocket::close_code::going_away), "idle timeout");
        return;
      }
      if (!pinging_ && now - last_ping_ >= options_.ping_interval_ms) {
        pinging_ = true;
        last_ping_ = now;
        ws_.async_ping({},
                       [self = shared_from_this()](beast::error_code) { self->pinging_ = false; });
      }
      // Only once open: before that the handler has not started its clocks
      // (an auth deadline of 0 would close a slow handshake with 4001).
      if (handler_) handler_->OnTick(now);
    }
  }

 private:
  static asio::awaitable<void> Run(std::shared_ptr<WsConnectionImpl> self) {
    Ticker& ticker = Ticker::ForThisThread(self->ws_.get_executor());
    ticker.Add(self.get());
    co_await self->Serve();
    ticker.Remove(self.get());
    self->Finish();
  }

  asio::awaitable<void> Serve() {
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = std::chrono::milliseconds(kCloseGraceMs);
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(beast::http::field::server, "mpim"); }));
    ws_.read_message_max(options_.max_message_bytes);
    ws_.auto_fragment(false);
    ws_.control_callback(
        [this](websocket::frame_type, beast::string_view) { last_receive_ = SteadyNowMs(); });
    beast::error_code nodelay_ec;
    ws_.next_layer().set_option(tcp::no_delay(true), nodelay_ec);

    auto [accept_ec] = co_await ws_.async_accept(upgrade_, kUseTuple);
    upgrade_ = {};  // release the request's memory
    if (accept_ec) co_return;
    open_ = true;
    last_receive_ = last_ping_ = SteadyNowMs();
    if (pending_close_) {
      StartClose(*pending_close_);  // the read loop below sees the close through
      pending_close_.reset();
    } else if (handler_) {
      handler_->OnOpen();
    }
    request_ = HttpRequest{};  // read by OnOpen only; an idle session keeps none of it

    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws_.async_read(buffer, kUseTuple);
      if (ec) {
        // Over the size limit Beast has already sent close 1009.
        co_return;
      }
      last_receive_ = SteadyNowMs();
      if (handler_ && !closing_) {
        if (ws_.got_text()) {
          auto data = buffer.cdata();
          handler_->OnText(std::string_view(static_cast<const char*>(data.data()), data.size()));
        } else {
          handler_->OnBinary();
        }
      }
      buffer.consume(buffer.size());
      if (buffer.capacity() > 4096) buffer.shrink_to_fit();
    }
  }

  void HardClose() {
    beast::error_code ec;
    ws_.next_layer().shutdown(tcp::socket::shutdown_both, ec);
    ws_.next_layer().close(ec);
  }

  void Finish() {
    finished_ = true;
    closing_ = true;
    HardClose();
    if (handler_) {
      auto handler = std::move(handler_);
      handler->OnClosed();
    }
    guard_.reset();
  }

  const uint64_t id_;
  websocket::stream<tcp::socket> ws_;
  beast::http::request<beast::http::string_body> upgrade_;
  HttpRequest request_;
  const WsOptions options_;
  std::shared_ptr<void> guard_;
  std::shared_ptr<WsHandler> handler_;
  std::optional<websocket::close_reason> pending_close_;  // asked for before the handshake ended
  bool open_ = false;
  bool writing_ = false;
  bool pinging_ = false;
  bool closing_ = false;
  bool finished_ = false;
  int64_t closing_since_ = 0;
  int64_t last_receive_ = 0;
  int64_t last_ping_ = 0;

  friend class Ticker;
};

void Ticker::Arm() {
  timer_.expires_after(std::chrono::milliseconds(kTickMs));
  timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    int64_t now = SteadyNowMs();
    snapshot_.assign(conns_.begin(), conns_.end());
    for (WsConnectionImpl* c : snapshot_) {
      if (conns_.count(c)) c->Tick(now);
    }
    Arm();
  });
}

}  // namespace

namespace internal {

std::shared_ptr<WsConnection> StartWebSocket(tcp::socket socket,
                                             beast::http::request<beast::http::string_body> upgrade,
                                             HttpRequest request, const WsOptions& options,
                                             const WsAcceptFn& accept,
                                             std::shared_ptr<void> guard) {
  auto conn = std::make_shared<WsConnectionImpl>(std::move(socket), std::move(upgrade),
                                                 std::move(request), options, std::move(guard));
  accept(conn);
  conn->Start();
  return conn;
}

}  // namespace internal
}  // namespace mpim::net
