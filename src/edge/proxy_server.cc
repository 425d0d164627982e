#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/rate_limiter.h"
#include "edge/h2_upstream.h"
#include "edge/log.h"
#include "edge/proxy_internal.h"
#include "net/listen.h"

namespace mpim::edge {

namespace {

constexpr size_t kTunnelChunk = 16 * 1024;
constexpr size_t kTlsTunnelChunk = 4 * 1024;

// A WebSocket joined to its upstream: bytes copied both ways, frames
// untouched. Each direction waits until its source is readable, then reads
// what is there into a buffer it holds only until the other side took it.
// A TLS client's bytes must come through OpenSSL: that direction reads with
// a smaller buffer held while it waits.
template <class Client>
class Tunnel final : public Conn {
 public:
  Tunnel(std::shared_ptr<ProxyServer::Impl> server, Client client, Socket upstream, InFlight load,
         std::shared_ptr<void> slot)
      : server_(std::move(server)),
        client_(std::move(client)),
        upstream_(std::move(upstream)),
        load_(std::move(load)),
        slot_(std::move(slot)) {
    server_->connections("tunnel").Add(1);
  }
  ~Tunnel() override {
    server_->connections("tunnel").Add(-1);
    server_->Remove(this);
  }

  // `to_upstream` and `to_client`: bytes already read past the handshake.
  void Start(std::string to_upstream, std::string to_client) {
    boost::system::error_code ec;
    if constexpr (!kIsTls<Client>) client_.non_blocking(true, ec);
    upstream_.non_blocking(true, ec);
    Begin(up_, std::move(to_upstream));
    Begin(down_, std::move(to_client));
  }

  void CloseIfIdle() override { CloseNow(); }  // clients reconnect through another edge
  void CloseNow() override {
    boost::system::error_code ec;
    RawSocket(client_).close(ec);
    upstream_.close(ec);
  }
  asio::any_io_executor executor() override { return client_.get_executor(); }

 private:
  template <class From, class To>
  struct Direction {
    From* from;
    To* to;
    std::unique_ptr<char[]> buffer;
    bool done = false;
  };

  template <class D>
  void Begin(D& d, std::string pending) {
    if (pending.empty()) return Wait(d);
    auto data = std::make_shared<std::string>(std::move(pending));
    asio::async_write(*d.to, asio::buffer(*data),
                      [self = Self(), &d, data](boost::system::error_code ec, size_t) {
                        if (ec) return self->CloseNow();
                        self->Wait(d);
                      });
  }

  template <class D>
  void Wait(D& d) {
    if constexpr (kIsTls<std::remove_pointer_t<decltype(d.from)>>) {
      if (!d.buffer) d.buffer.reset(new char[kTlsTunnelChunk]);
      d.from->async_read_some(
          asio::buffer(d.buffer.get(), kTlsTunnelChunk),
          [self = Self(), &d](boost::system::error_code ec, size_t n) { self->Got(d, ec, n); });
    } else {
      d.from->async_wait(Socket::wait_read, [self = Self(), &d](boost::system::error_code ec) {
        self->Readable(d, ec);
      });
    }
  }

  // A raw socket is readable: what is there, without blocking.
  template <class D>
  void Readable(D& d, boost::system::error_code ec) {
    if (ending_) return;
    if (ec) return Broke(ec);
    if (!d.buffer) d.buffer.reset(new char[kTunnelChunk]);
    size_t n = d.from->read_some(asio::buffer(d.buffer.get(), kTunnelChunk), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      d.buffer.reset();
      return Wait(d);
    }
    Got(d, ec, n);
  }

  template <class D>
  void Got(D& d, boost::system::error_code ec, size_t n) {
    if (ending_) return;
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      // Half-close: pass it on, the other way may go on (a TLS client's
      // connection cannot be half-closed: it ends, with close_notify).
      d.buffer.reset();
      d.done = true;
      if constexpr (kIsTls<std::remove_pointer_t<decltype(d.to)>>) {
        return EndTls();
      } else {
        d.to->shutdown(Socket::shutdown_send, ec);
      }
      if (up_.done && down_.done) CloseNow();
      return;
    }
    if (ec) return Broke(ec);
    asio::async_write(*d.to, asio::buffer(d.buffer.get(), n),
                      [self = Self(), &d](boost::system::error_code wec, size_t) {
                        if constexpr (!kIsTls<std::remove_pointer_t<decltype(d.from)>>) {
                          d.buffer.reset();
                        }
                        if (wec) return self->CloseNow();
                        self->Wait(d);
                      });
  }

  // The upstream is done: the client's read is cancelled and its TLS closed
  // properly (close_notify), within 2 s, then both ends close.
  void EndTls() {
    if constexpr (kIsTls<Client>) {
      ending_ = true;
      boost::system::error_code ec;
      RawSocket(client_).cancel(ec);
      beast::get_lowest_layer(client_).expires_after(std::chrono::seconds(2));
      client_.async_shutdown([self = Self()](boost::system::error_code) { self->CloseNow(); });
    }
  }

  // A read failed (reset, or a TLS error): both ends close.
  void Broke(boost::system::error_code ec) {
    if (ending_) return;
    Log().Debug("tunnel broken", {{"error", ec.message()}});
    CloseNow();
  }

  std::shared_ptr<Tunnel> Self() { return std::static_pointer_cast<Tunnel>(shared_from_this()); }

  std::shared_ptr<ProxyServer::Impl> server_;
  Client client_;
  Socket upstream_;
  InFlight load_;
  std::shared_ptr<void> slot_;  // the client's connection in its address's count
  bool ending_ = false;         // EndTls began: reads that end now are not news
  Direction<Client, Socket> up_{&client_, &upstream_};
  Direction<Socket, Client> down_{&upstream_, &client_};
};

// One client connection while it speaks HTTP/1.1, in cleartext
// (PlainStream) or over TLS (TlsStream, handshake done). `buffer`: bytes
// already read. One request at a time, through its Exchange.
template <class Stream>
class Session final : public Conn, public Exchange::Client {
 public:
  Session(std::shared_ptr<ProxyServer::Impl> server, Stream stream, beast::flat_buffer buffer,
          std::string client_ip, std::shared_ptr<void> slot)
      : server_(std::move(server)),
        client_(std::move(stream)),
        buffer_(std::move(buffer)),
        client_ip_(std::move(client_ip)),
        slot_(std::move(slot)),
        exchange_(*server_, *this, client_.get_executor(), client_ip_, kIsTls<Stream>, sent_),
        deadline_timer_(client_.get_executor()) {
    boost::system::error_code ec;
    RawSocket(client_).set_option(tcp::no_delay(true), ec);
    server_->connections(kIsTls<Stream> ? "https" : "http").Add(1);
  }
  ~Session() override {
    server_->connections(kIsTls<Stream> ? "https" : "http").Add(-1);
    if (registered_) server_->Remove(this);
  }

  void Start() {
    server_->Add(shared_from_this());
    registered_ = true;
    Tcp().expires_never();  // the session keeps its own deadline
    ReadRequest(true);
  }

  void CloseIfIdle() override {
    if (idle_) CloseNow();
  }
  void CloseNow() override {
    boost::system::error_code ec;
    RawSocket(client_).close(ec);
    exchange_.Cancel();
    phase_ = Phase::kNone;
    deadline_timer_.cancel();
  }
  asio::any_io_executor executor() override { return client_.get_executor(); }

  // Exchange::Client
  std::shared_ptr<void> Hold() override { return shared_from_this(); }
  const Location* Where() override {
    if (!location_) location_ = server_->options().geoip->Lookup(client_ip_);
    return &*location_;
  }
  void Answer(Response res) override {
    if (upgrade_) keep_alive_ = false;  // a refused upgrade: the client starts over
    Write(std::move(res), true);
  }
  void Refuse(const net::HttpResponse& r, unsigned status) override { ReplyLocal(r, status); }
  void Upgraded(Response head, std::unique_ptr<UpConn> up, InFlight load) override;
  bool UpstreamDeadline(std::chrono::milliseconds d) override {
    SetDeadline(Phase::kUpstream, d);
    return true;
  }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  PlainStream& Tcp() { return beast::get_lowest_layer(client_); }
  const ProxyOptions& options() const { return server_->options(); }

  // One deadline for the connection's phase (reading a request or waiting
  // for the next, the upstream's part, writing the answer): Set moves it
  // (a clock read, no timer operation), and the timer is armed again only
  // when the deadline moves before the time it is armed for, or when it
  // fires early (then for what is left). Beast's own timeouts armed and
  // cancelled a timer for every read and write (about 5% of the edge's CPU,
  // session 19's profile). The timer holds the session weakly.
  enum class Phase { kNone, kClient, kUpstream };

  void SetDeadline(Phase phase, std::chrono::milliseconds d) {
    phase_ = phase;
    deadline_ = Clock::now() + d;
    if (armed_for_ <= deadline_) return;  // fires first, then waits for the rest
    Arm(deadline_);
  }

  void Arm(Clock::time_point at) {
    armed_for_ = at;
    deadline_timer_.expires_at(at);  // a wait pending ends, aborted
    deadline_timer_.async_wait([weak = weak_from_this(), at](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) static_cast<Session*>(self.get())->Fired(at);
    });
  }

  void Fired(Clock::time_point at) {
    if (armed_for_ != at) return;  // armed again since
    armed_for_ = Clock::time_point::max();
    if (phase_ == Phase::kNone) return;
    if (Clock::now() < deadline_) return Arm(deadline_);
    const Phase phase = phase_;
    phase_ = Phase::kNone;
    if (phase == Phase::kUpstream) return exchange_.TimedOut();
    CloseNow();  // a client too slow to send or take: its pending op ends
  }

  void ReadRequest(bool first) {
    idle_ = !first;
    route_name_ = "none";
    method_.clear();
    path_.clear();
    routed_ = false;
    if (!first && server_->draining()) return CloseNow();
    parser_.emplace();
    parser_->header_limit(options().max_header_bytes);
    parser_->body_limit(options().max_body_bytes);
    SetDeadline(Phase::kClient, first ? options().request_timeout : options().idle_timeout);
    http::async_read_header(client_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (ec) return OnReadError(ec);
    SetDeadline(Phase::kClient, options().request_timeout);
    auto& req = parser_->get();
    if (IEquals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      return asio::async_write(client_, asio::buffer(*cont),
                               [self = Self(), cont](beast::error_code wec, size_t) {
                                 if (wec) return self->CloseNow();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  void ReadBody() {
    // A request without a body is whole with its header: no read op (and
    // no trip through the scheduler) for nothing.
    if (parser_->is_done()) return OnRequest();
    http::async_read(client_, buffer_, *parser_, [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->OnReadError(ec);
      self->OnRequest();
    });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == beast::error::timeout || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return CloseNow();
    }
    keep_alive_ = false;
    // As the gateway answers them (net/http_server.cc).
    if (ec == http::error::header_limit) {
      return ReplyLocal(
          net::HttpResponse::Error(absl::InvalidArgumentError(
              "request headers exceed " + std::to_string(options().max_header_bytes) + " bytes")),
          431);
    }
    if (ec == http::error::body_limit) {
      return ReplyLocal(net::HttpResponse::Error(core::PayloadTooLargeError(
          "request body exceeds " + std::to_string(options().max_body_bytes) + " bytes")));
    }
    ReplyLocal(net::HttpResponse::Error(absl::InvalidArgumentError("malformed HTTP request")));
  }

  void OnRequest() {
    Request req = parser_->release();
    started_ = Clock::now();
    keep_alive_ = req.keep_alive();
    method_ = std::string(req.method_string());
    path_ = std::string(PathOf(req.target()));  // never the query: it may hold a token
    if (options().local) {
      if (auto local = options().local(path_)) {
        route_name_ = "local";
        return ReplyLocal(*local);
      }
    }
    upgrade_ = beast::websocket::is_upgrade(req);
    // Proxied requests only: probes of the edge's own endpoints are not
    // limited.
    if (int64_t retry_ms = server_->RateLimit(client_ip_); retry_ms > 0) {
      // A refused upgrade is the end of its connection, as at the gateway.
      if (upgrade_) keep_alive_ = false;
      return ReplyLocal(net::HttpResponse::Error(
          core::RateLimitedError("too many requests from this address", retry_ms)));
    }
    if (!exchange_.Route(req)) {
      if (upgrade_) keep_alive_ = false;
      return ReplyLocal(net::HttpResponse::Error(absl::NotFoundError("no route for this request")));
    }
    route_name_ = exchange_.route_name();
    if (exchange_.cluster()->spec.protocol == "h2") {
      // Its upstreams speak HTTP/2 only (gRPC): the client must too.
      keep_alive_ = keep_alive_ && !upgrade_;
      return ReplyLocal(net::HttpResponse::Error(absl::InvalidArgumentError(
                            "route " + route_name_ + " goes to HTTP/2 upstreams: use HTTP/2")),
                        505);
    }
    routed_ = true;
    exchange_.Run(std::move(req), upgrade_);
  }

  void AccessLog(unsigned status) {
    if (!options().access_log) return;
    LogAccess(client_ip_, method_, path_, status, route_name_,
              routed_ ? exchange_.upstream() : nullptr, routed_ ? exchange_.attempts() : 0,
              started_);
  }

  // No more answers on this connection: the client sees its end.
  void EndWrites() {
    if constexpr (kIsTls<Stream>) {
      Tcp().expires_after(std::chrono::seconds(2));
      client_.async_shutdown([self = Self()](beast::error_code) { self->CloseNow(); });
    } else {
      boost::system::error_code ignored;
      client_.socket().shutdown(Socket::shutdown_send, ignored);
    }
  }

  void ReplyLocal(const net::HttpResponse& r, unsigned status_override = 0) {
    Response res;
    res.version(11);
    res.result(status_override != 0 ? status_override : r.status);
    res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.body() = r.body;
    res.content_length(res.body().size());
    Write(std::move(res), false);
  }

  void Write(Response res, bool proxied) {
    const unsigned status = res.result_int();
    metrics_.Answered(*server_, route_name_, status).Inc();
    AccessLog(status);
    if (server_->draining()) keep_alive_ = false;
    res.keep_alive(keep_alive_);
    out_ = std::move(res);
    head_.clear();
    AppendHead(head_, out_.base());
    SetDeadline(Phase::kClient, options().request_timeout);
    const std::array<asio::const_buffer, 2> out = {asio::buffer(head_), asio::buffer(out_.body())};
    asio::async_write(client_, out, [self = Self(), proxied](beast::error_code ec, size_t) {
      if (proxied) {
        self->metrics_.Duration(*self->server_, self->route_name_)
            .Observe(std::chrono::duration<double>(Clock::now() - self->started_).count());
      }
      if (ec) return self->CloseNow();
      if (!self->keep_alive_) return self->EndWrites();
      self->ReadRequest(false);
    });
  }

  std::shared_ptr<ProxyServer::Impl> server_;
  Stream client_;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  AnswerMetrics metrics_;
  std::shared_ptr<void> slot_;  // this connection in its address's count
  bool registered_ = false;
  bool idle_ = false;

  std::optional<http::request_parser<http::string_body>> parser_;
  bool keep_alive_ = false;
  bool upgrade_ = false;
  std::optional<Location> location_;  // the client's, once looked up
  Clock::time_point started_;
  std::string method_, path_;  // for the access log
  std::string route_name_ = "none";
  bool routed_ = false;  // this request went to the exchange
  SentCounters sent_;
  Exchange exchange_;  // its destructor returns the breaker's permit
  asio::steady_timer deadline_timer_;
  Phase phase_ = Phase::kNone;
  Clock::time_point deadline_ = Clock::time_point::max();
  Clock::time_point armed_for_ = Clock::time_point::max();  // max: not armed
  Response out_;      // the answer being written to the client
  std::string head_;  // its head
};

// The upstream took the upgrade: the session's client connection and the
// upstream's are joined in a Tunnel, and this session ends (its last
// handler returns).
template <class Stream>
void Session<Stream>::Upgraded(Response head, std::unique_ptr<UpConn> up, InFlight load) {
  server_->Answered(route_name_, 101).Inc();
  AccessLog(101);
  std::ostringstream out;
  out << head.base();
  std::string to_client = out.str();
  to_client += beast::buffers_to_string(up->buffer.data());
  std::string to_upstream = beast::buffers_to_string(buffer_.data());
  Tcp().expires_never();
  up->stream.expires_never();
  phase_ = Phase::kNone;
  deadline_timer_.cancel();
  auto start = [&](auto tunnel) {
    server_->Add(tunnel);
    tunnel->Start(std::move(to_upstream), std::move(to_client));
  };
  Socket upstream = up->stream.release_socket();
  if constexpr (kIsTls<Stream>) {
    start(std::make_shared<Tunnel<TlsStream>>(server_, std::move(client_), std::move(upstream),
                                              std::move(load), std::move(slot_)));
  } else {
    start(std::make_shared<Tunnel<Socket>>(server_, client_.release_socket(), std::move(upstream),
                                           std::move(load), std::move(slot_)));
  }
}

}  // namespace

namespace {

// A new connection: its first bytes say what it speaks. A TLS ClientHello
// (when TLS is configured: the handshake, with the certificate in force
// now, then HTTP/2 if ALPN chose h2, else HTTP/1.1), the HTTP/2 connection
// preface (HTTP/2 with prior knowledge), or anything else: HTTP/1.1.
class Detect : public std::enable_shared_from_this<Detect> {
 public:
  Detect(std::shared_ptr<ProxyServer::Impl> server, Socket socket, std::string ip,
         std::shared_ptr<void> slot)
      : server_(std::move(server)),
        stream_(std::move(socket)),
        ip_(std::move(ip)),
        slot_(std::move(slot)) {}

  void Run() {
    stream_.expires_after(server_->options().request_timeout);
    Read();
  }

 private:
  static constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

  void Read() {
    auto space = buffer_.prepare(512);
    stream_.async_read_some(space, [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return;  // gone, or silent until the timeout: closed
      self->buffer_.commit(n);
      self->Decide();
    });
  }

  void Decide() {
    const std::string_view got(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    if (got.empty()) return Read();
    if (server_->options().tls && got.front() == 0x16) return Handshake();
    const size_t n = std::min(got.size(), kPreface.size());
    if (got.substr(0, n) == kPreface.substr(0, n)) {
      if (n < kPreface.size()) return Read();  // the preface so far: more
      stream_.expires_never();
      return StartH2(server_, std::move(stream_), std::move(buffer_), std::move(ip_),
                     std::move(slot_));
    }
    std::make_shared<Session<PlainStream>>(server_, std::move(stream_), std::move(buffer_),
                                           std::move(ip_), std::move(slot_))
        ->Start();
  }

  void Handshake() {
    ctx_ = server_->options().tls->Current();
    tls_.emplace(std::move(stream_), *ctx_);
    // The bytes detection read are the handshake's first. (The default
    // argument: Beast 1.81 checks this handler against the unbuffered
    // handshake's signature.)
    tls_->async_handshake(asio::ssl::stream_base::server, buffer_.data(),
                          [self = shared_from_this()](beast::error_code hec, size_t used = 0) {
                            self->Shaken(hec, used);
                          });
  }

  void Shaken(beast::error_code ec, size_t used) {
    server_->handshakes(!ec).Inc();
    if (ec) {
      Log().Debug("TLS handshake failed", {{"client", ip_}, {"error", ec.message()}});
      return;
    }
    buffer_.consume(used);
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(tls_->native_handle(), &alpn, &alpn_len);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) == "h2") {
      beast::get_lowest_layer(*tls_).expires_never();
      return StartH2(server_, std::move(*tls_), std::move(buffer_), std::move(ip_),
                     std::move(slot_));
    }
    std::make_shared<Session<TlsStream>>(server_, std::move(*tls_), std::move(buffer_),
                                         std::move(ip_), std::move(slot_))
        ->Start();
  }

  std::shared_ptr<ProxyServer::Impl> server_;
  PlainStream stream_;
  beast::flat_buffer buffer_;
  std::string ip_;
  std::shared_ptr<void> slot_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::optional<TlsStream> tls_;
};

}  // namespace

void ProxyServer::Impl::Open(Socket socket, std::string ip, std::shared_ptr<void> slot) {
  std::make_shared<Detect>(shared_from_this(), std::move(socket), std::move(ip), std::move(slot))
      ->Run();
}

void ProxyServer::Impl::Accept() {
  acceptor_.async_accept(
      pool_.Next(), [self = shared_from_this()](boost::system::error_code ec, Socket socket) {
        if (!ec) {
          boost::system::error_code peer_ec;
          auto peer = socket.remote_endpoint(peer_ec);
          std::string ip = peer_ec ? std::string() : peer.address().to_string();
          if (auto slot = self->TakeSlot(ip)) {
            auto ex = socket.get_executor();
            asio::post(ex, [self, socket = std::move(socket), ip = std::move(ip),
                            slot = std::move(slot)]() mutable {
              self->Open(std::move(socket), std::move(ip), std::move(slot));
            });
          } else {
            socket.close(peer_ec);
          }
        } else if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) {
          return;
        } else {
          Log().Warn("accept failed", {{"error", ec.message()}});
        }
        if (!self->draining()) self->Accept();
      });
}

ProxyServer::ProxyServer(net::IoPool& pool, Router& router, ProxyOptions options,
                         core::MetricsRegistry& metrics)
    : impl_(std::make_shared<Impl>(pool, router, std::move(options), metrics)) {
  impl_->MakeH2Pools();
}

ProxyServer::~ProxyServer() { impl_->ClearPools(); }

core::Status ProxyServer::Start() { return impl_->Start(); }
uint16_t ProxyServer::port() const { return impl_->port(); }
void ProxyServer::StartDrain() { impl_->StartDrain(); }
bool ProxyServer::WaitDrained(std::chrono::milliseconds timeout) {
  return impl_->WaitDrained(timeout);
}
void ProxyServer::CloseAll() { impl_->CloseAll(); }
size_t ProxyServer::open_connections() const { return impl_->open_connections(); }

}  // namespace mpim::edge
