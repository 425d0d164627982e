#include "bench/async_ws.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

namespace mpim::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// The TCP socket under the WebSocket stream, with a read-ahead buffer.
// Beast reads at most 1,536 bytes (stream::tcp_frame_size) from its next
// layer at a time: a receiver of many small frames would make one recv per
// ~5 frames. This takes what the kernel has, up to kReadAhead, in one recv and
// serves Beast's reads from it. A concrete executor type also spares the
// type-erased any_io_executor copies of every operation.
class ReadAheadSocket {
 public:
  using executor_type = asio::io_context::executor_type;
  using Socket = asio::basic_stream_socket<tcp, executor_type>;

  explicit ReadAheadSocket(asio::io_context& io) : socket_(io.get_executor()) {}

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  Socket& socket() { return socket_; }

  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    return asio::async_initiate<Token, void(beast::error_code, size_t)>(
        [this](auto handler, const Buffers& into) {
          if (begin_ < end_) {
            // Completes through the executor, never inside the initiation.
            size_t n = Take(into);
            auto ex = asio::get_associated_executor(handler, get_executor());
            asio::post(ex, [h = std::move(handler), n]() mutable { h(beast::error_code{}, n); });
            return;
          }
          if (!buf_) buf_ = std::make_unique_for_overwrite<char[]>(kReadAhead);  // not zeroed
          socket_.async_read_some(
              asio::buffer(buf_.get(), kReadAhead),
              [this, into, h = std::move(handler)](beast::error_code ec, size_t n) mutable {
                begin_ = 0;
                end_ = ec ? 0 : n;
                h(ec, ec ? 0 : Take(into));
              });
        },
        token, buffers);
  }

  template <class Buffers, class Token>
  auto async_write_some(const Buffers& buffers, Token&& token) {
    return socket_.async_write_some(buffers, std::forward<Token>(token));
  }

  // What websocket::stream calls (found by argument-dependent lookup) to
  // shut the connection down after a close handshake or on a timeout.
  friend void teardown(beast::role_type role, ReadAheadSocket& s, beast::error_code& ec) {
    websocket::teardown(role, s.socket_, ec);
  }
  friend void beast_close_socket(ReadAheadSocket& s) {
    beast::error_code ignored;
    s.socket_.close(ignored);
  }
  template <class Handler>
  friend void async_teardown(beast::role_type role, ReadAheadSocket& s, Handler&& handler) {
    websocket::async_teardown(role, s.socket_, std::forward<Handler>(handler));
  }

 private:
  static constexpr size_t kReadAhead = 64 * 1024;

  template <class Buffers>
  size_t Take(const Buffers& into) {
    size_t n = asio::buffer_copy(into, asio::buffer(buf_.get() + begin_, end_ - begin_));
    begin_ += n;
    if (begin_ == end_) {
      begin_ = end_ = 0;
      buf_.reset();  // nothing held between reads (thousands of idle sessions)
    }
    return n;
  }

  Socket socket_;
  std::unique_ptr<char[]> buf_;
  size_t begin_ = 0, end_ = 0;
};

struct AsyncWs::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, WsListener* l, uint32_t i) : ws(io), listener(l), id(i) {}

  void Start(const WsTarget& target, const asio::ip::address& source, std::string_view token) {
    beast::error_code ec;
    auto& socket = ws.next_layer().socket();
    socket.open(tcp::v4(), ec);
    if (!ec) {
      // Let connect() pick the port for the whole 4-tuple, not bind() for
      // the address alone: many more connections per source address.
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      socket.bind(tcp::endpoint(source, 0), ec);
    }
    if (!ec) socket.set_option(tcp::no_delay(true), ec);
    if (ec) {
      return asio::post(ws.get_executor(), [self = shared_from_this(), ec] { self->Fail(ec); });
    }
    host = target.host;
    auth = "Bearer ";
    auth.append(token);
    socket.async_connect(target.server, [self = shared_from_this()](beast::error_code ec) {
      if (self->dead) return;
      if (ec) return self->Fail(ec);
      self->Handshake();
    });
  }

  void Handshake() {
    ws.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
      req.set(beast::http::field::authorization, auth);
    }));
    ws.auto_fragment(false);
    ws.secure_prng(false);  // masking keys need not be unpredictable here
    ws.read_message_max(64u << 20);
    ws.async_handshake(host, "/ws", [self = shared_from_this()](beast::error_code ec) {
      if (self->dead) return;
      if (ec) return self->Fail(ec);
      self->is_open = true;
      std::string().swap(self->auth);
      self->listener->OnOpen(self->id);
      if (self->dead) return;
      self->Read();
      self->Write();
    });
  }

  void Read() {
    ws.async_read(buffer, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (self->dead) return;
      if (ec) return self->Fail(ec);
      auto data = self->buffer.cdata();
      self->listener->OnText(self->id,
                             std::string_view(static_cast<const char*>(data.data()), data.size()));
      if (self->dead) return;
      self->buffer.consume(self->buffer.size());
      if (self->buffer.capacity() > (64u << 10)) self->buffer.shrink_to_fit();
      self->Read();
    });
  }

  void Write() {
    if (writing || !is_open || out.empty()) return;
    writing = true;
    ws.async_write(asio::buffer(out.front()),
                   [self = shared_from_this()](beast::error_code ec, size_t) {
                     self->writing = false;
                     if (self->dead) return;
                     if (ec) return self->Fail(ec);
                     self->out.pop_front();
                     self->Write();
                   });
  }

  void Fail(beast::error_code ec) {
    if (dead) return;
    const auto& reason = ws.reason();
    const int code = static_cast<int>(reason.code);
    std::string why = code ? std::string(reason.reason.data(), reason.reason.size()) : ec.message();
    Close();
    listener->OnClosed(id, code, why);
  }

  void Close() {
    dead = true;
    is_open = false;
    out.clear();
    beast::error_code ignored;
    ws.next_layer().socket().close(ignored);
  }

  websocket::stream<ReadAheadSocket> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> out;
  std::string host;
  std::string auth;
  WsListener* listener;
  uint32_t id;
  bool is_open = false;
  bool writing = false;
  bool dead = false;
};

AsyncWs::AsyncWs() = default;
AsyncWs::~AsyncWs() { Abort(); }
AsyncWs::AsyncWs(AsyncWs&&) noexcept = default;
AsyncWs& AsyncWs::operator=(AsyncWs&& other) noexcept {
  Abort();
  impl_ = std::move(other.impl_);
  return *this;
}

void AsyncWs::Connect(asio::io_context& io, WsListener* listener, uint32_t id,
                      const WsTarget& target, const asio::ip::address& source,
                      std::string_view token) {
  Abort();
  impl_ = std::make_shared<Impl>(io, listener, id);
  impl_->Start(target, source, token);
}

bool AsyncWs::Send(std::string text) {
  if (!impl_ || impl_->dead) return false;
  impl_->out.push_back(std::move(text));
  impl_->Write();
  return true;
}

void AsyncWs::Abort() {
  if (impl_) {
    impl_->Close();
    impl_.reset();
  }
}

bool AsyncWs::open() const { return impl_ && impl_->is_open; }
size_t AsyncWs::queued() const { return impl_ ? impl_->out.size() : 0; }

}  // namespace mpim::bench
