#include "edge/proxy_server.h"

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
#include "edge/log.h"
#include "net/listen.h"

namespace mpim::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const core::Logger& AccessLogger() {
  static const core::Logger log("edge.access");
  return log;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kTunnelChunk = 16 * 1024;
constexpr size_t kTlsTunnelChunk = 4 * 1024;

// Streams and sockets bound to an io_context's own executor, not Asio's
// type-erased any_io_executor: each handler copied and destroyed one
// (about 5% of the edge's CPU at its maximum, session 18's profile).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using PlainStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<PlainStream>;
template <class S>
constexpr bool kIsTls = std::is_same_v<S, TlsStream>;

Socket& RawSocket(Socket& s) { return s; }
Socket& RawSocket(PlainStream& s) { return s.socket(); }
Socket& RawSocket(TlsStream& s) { return beast::get_lowest_layer(s).socket(); }
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;

bool IEquals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

// Hop-by-hop headers (RFC 9110 section 7.6.1) go no further than this hop:
// those listed in Connection, and the standard ones. An upgrade keeps its
// Upgrade and Connection: upgrade, which the gateway needs.
template <bool isRequest>
void DropHopByHop(http::header<isRequest>& h, bool keep_upgrade) {
  std::vector<std::string> listed;
  auto [first, last] = h.equal_range(http::field::connection);
  for (auto it = first; it != last; ++it) {
    std::string_view value = it->value();
    while (!value.empty()) {
      size_t comma = value.find(',');
      std::string_view token = value.substr(0, comma);
      value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
        token.remove_suffix(1);
      if (token.empty() || IEquals(token, "close") || IEquals(token, "keep-alive")) continue;
      if (keep_upgrade && IEquals(token, "upgrade")) continue;
      listed.emplace_back(token);
    }
  }
  for (const std::string& name : listed) h.erase(name);
  h.erase(http::field::keep_alive);
  h.erase("Proxy-Connection");
  h.erase(http::field::te);
  h.erase(http::field::trailer);
  h.erase(http::field::transfer_encoding);
  h.erase(http::field::proxy_authorization);
  h.erase(http::field::connection);
  if (keep_upgrade) {
    h.set(http::field::connection, "Upgrade");
  } else {
    h.erase(http::field::upgrade);
  }
}

// A message's start line and fields as HTTP/1.1 puts them on the wire,
// appended to `out`; the body follows it in the same write. (Beast's
// serializer walks a chain of buffer views per write: about a tenth of the
// edge's CPU at its maximum, session 18's profile.) Callers have set the
// framing: Content-Length where there is a body, no Transfer-Encoding.
template <bool isRequest>
void AppendHead(std::string& out, const http::header<isRequest>& h) {
  const unsigned version = h.version();
  const char v[] = {'H', 'T',
                    'T', 'P',
                    '/', static_cast<char>('0' + version / 10 % 10),
                    '.', static_cast<char>('0' + version % 10)};
  if constexpr (isRequest) {
    out.append(h.method_string());
    out += ' ';
    out.append(h.target());
    out += ' ';
    out.append(v, sizeof v);
  } else {
    out.append(v, sizeof v);
    out += ' ';
    out += std::to_string(h.result_int());
    out += ' ';
    out.append(h.reason());
  }
  out += "\r\n";
  for (const auto& f : h) {
    out.append(f.name_string());
    out += ": ";
    out.append(f.value());
    out += "\r\n";
  }
  out += "\r\n";
}

bool Idempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head || v == http::verb::options;
}

std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

const char* StatusClass(unsigned status) {
  switch (status / 100) {
    case 1:
      return "1xx";
    case 2:
      return "2xx";
    case 3:
      return "3xx";
    case 4:
      return "4xx";
    default:
      return "5xx";
  }
}

// A keep-alive connection to one gateway.
struct UpConn {
  explicit UpConn(const Executor& ex) : stream(ex) {}
  PlainStream stream;
  beast::flat_buffer buffer;
};

// Idle connections to the upstreams, for one io thread (no lock: only that
// thread uses it). Each idle connection waits to become readable: an
// upstream that closes it (or sends what nobody asked for) takes it out of
// the pool then, so taking one costs no system call.
class ConnPool {
 public:
  explicit ConnPool(size_t max_idle) : max_idle_(max_idle) {}

  // An idle connection to `address`, or null.
  std::unique_ptr<UpConn> Take(const std::string& address) {
    auto it = idle_.find(address);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    std::unique_ptr<UpConn> c = std::move(it->second.back());
    it->second.pop_back();
    boost::system::error_code ec;
    c->stream.socket().cancel(ec);  // its wait ends, aborted
    return c;
  }

  void Put(const std::string& address, std::unique_ptr<UpConn> c) {
    auto& list = idle_[address];
    if (list.size() >= max_idle_ || c->buffer.size() != 0) return;  // closed on drop
    c->stream.expires_never();
    UpConn* raw = c.get();
    c->stream.socket().async_wait(Socket::wait_read,
                                  [this, address, raw](boost::system::error_code ec) {
                                    if (!ec) Drop(address, raw);  // not taken: closed or stray
                                  });
    list.push_back(std::move(c));
  }

  void Clear() { idle_.clear(); }

 private:
  void Drop(const std::string& address, const UpConn* c) {
    auto it = idle_.find(address);
    if (it == idle_.end()) return;
    std::erase_if(it->second, [c](const std::unique_ptr<UpConn>& x) { return x.get() == c; });
  }

  size_t max_idle_;
  std::unordered_map<std::string, std::vector<std::unique_ptr<UpConn>>> idle_;
};

// Counts a request or tunnel as load on its gateway while it lives.
class InFlight {
 public:
  InFlight() = default;
  explicit InFlight(std::shared_ptr<Upstream> u) : u_(std::move(u)) {
    if (u_) u_->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  InFlight(InFlight&& o) noexcept : u_(std::move(o.u_)) {}
  InFlight& operator=(InFlight&& o) noexcept {
    Release();
    u_ = std::move(o.u_);
    return *this;
  }
  ~InFlight() { Release(); }
  void Release() {
    if (u_) u_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    u_.reset();
  }

 private:
  std::shared_ptr<Upstream> u_;
};

// A client connection of any kind, for drain and CloseAll.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  virtual ~Conn() = default;
  // On the connection's own io thread.
  virtual void CloseIfIdle() = 0;
  virtual void CloseNow() = 0;
  virtual asio::any_io_executor executor() = 0;
};

}  // namespace

class ProxyServer::Impl : public std::enable_shared_from_this<ProxyServer::Impl> {
 public:
  Impl(net::IoPool& pool, Router& router, ProxyOptions options, core::MetricsRegistry& metrics)
      : pool_(pool),
        router_(router),
        options_(std::move(options)),
        acceptor_(pool.At(0)),
        requests_(metrics.Counter("mpim_edge_requests_total",
                                  "Requests the edge answered, by route (local: its own "
                                  "endpoints; none: refused before routing) and status class "
                                  "(1xx for WebSocket upgrades the upstream took).",
                                  {"route", "class"})),
        upstream_requests_(metrics.Counter("mpim_edge_upstream_requests_total",
                                           "Requests sent to each upstream (retries included).",
                                           {"cluster", "upstream"})),
        upstream_errors_(metrics.Counter("mpim_edge_upstream_errors_total",
                                         "Failed exchanges with an upstream, by kind: connect, "
                                         "broken (closed or reset before the whole answer), "
                                         "timeout.",
                                         {"cluster", "upstream", "kind"})),
        retries_(metrics.Counter("mpim_edge_retries_total",
                                 "Requests sent again, to another upstream or on a fresh "
                                 "connection, by cluster.",
                                 {"cluster"})),
        retries_refused_(metrics.Counter("mpim_edge_retries_refused_total",
                                         "Retries not sent: the cluster's retry budget was "
                                         "spent.",
                                         {"cluster"})),
        handshakes_(metrics.Counter("mpim_edge_tls_handshakes_total",
                                    "TLS handshakes with clients, by result: ok or error.",
                                    {"result"})),
        duration_(metrics.Histogram("mpim_edge_request_duration_seconds",
                                    "From a request's last byte in to its answer's last byte "
                                    "out (proxied requests), by route.",
                                    {"route"})),
        refused_(metrics
                     .Counter("mpim_edge_connections_refused_total",
                              "Client connections closed at accept: over "
                              "limits.connections_per_address.")
                     .With({})),
        connections_(metrics.Gauge("mpim_edge_connections",
                                   "Client connections open, by kind: http or https "
                                   "(requests) or tunnel (WebSockets joined to an upstream).",
                                   {"kind"})) {
    if (options_.requests_per_sec_address > 0) {
      request_rate_ = std::make_unique<core::KeyedRateLimiter<std::string>>(
          options_.requests_per_sec_address, std::max(1.0, options_.requests_burst_address));
    }
    for (size_t i = 0; i < pool.size(); ++i) {
      conn_pools_.emplace(&pool.At(i), std::make_unique<ConnPool>(options_.max_idle_per_upstream));
    }
  }

  core::Status Start() {
    auto port = net::Listen(acceptor_, options_.host, options_.port);
    if (!port.ok()) return port.status();
    port_ = *port;
    Accept();
    return absl::OkStatus();
  }

  uint16_t port() const { return port_; }

  void StartDrain() {
    draining_.store(true);
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ec;
      self->acceptor_.close(ec);
    });
    ForEach([](const std::shared_ptr<Conn>& c) { c->CloseIfIdle(); });
  }

  bool WaitDrained(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return drained_cv_.wait_for(lock, timeout, [this] { return conns_.empty(); });
  }

  void CloseAll() {
    ForEach([](const std::shared_ptr<Conn>& c) { c->CloseNow(); });
  }

  size_t open_connections() const {
    std::lock_guard lock(mu_);
    return conns_.size();
  }

  void Add(const std::shared_ptr<Conn>& c) {
    std::lock_guard lock(mu_);
    conns_.emplace(c.get(), c);
  }
  void Remove(Conn* c) {
    std::lock_guard lock(mu_);
    conns_.erase(c);
    if (conns_.empty()) drained_cv_.notify_all();
  }

  ConnPool& conn_pool(const Executor& ex) { return *conn_pools_.at(&ex.context()); }

  // The pooled connections, closed while the io_contexts still exist
  // (before the pool that owns them is destroyed).
  void ClearPools() {
    for (auto& [io, p] : conn_pools_) p->Clear();
  }

  bool draining() const { return draining_.load(std::memory_order_relaxed); }

  // Counts a connection from `address` while the returned slot lives; null
  // (and counted as refused) when the address is at its limit.
  std::shared_ptr<void> TakeSlot(const std::string& address) {
    if (options_.connections_per_address == 0) return std::make_shared<int>(0);
    std::lock_guard lock(mu_);
    uint32_t& count = per_address_[address];
    if (count >= options_.connections_per_address) {
      refused_.Inc();
      return nullptr;
    }
    ++count;
    auto self = shared_from_this();
    return std::shared_ptr<void>(new char, [self, address](void* p) {
      delete static_cast<char*>(p);
      std::lock_guard lock(self->mu_);
      auto it = self->per_address_.find(address);
      if (it != self->per_address_.end() && --it->second == 0) self->per_address_.erase(it);
    });
  }

  // The wait before `address` may send another request; 0: go ahead.
  int64_t RateLimit(const std::string& address) {
    if (!request_rate_) return 0;
    return request_rate_->TryAcquire(address, core::SystemClock().SteadyMs());
  }
  const ProxyOptions& options() const { return options_; }
  Router& router() { return router_; }

  core::Counter& Answered(const std::string& route, unsigned status) {
    return requests_.With({route, StatusClass(status)});
  }
  core::Counter& Sent(const Cluster& c, const Upstream& u) {
    return upstream_requests_.With({c.spec.name, u.address});
  }
  core::Counter& Error(const Cluster& c, const Upstream& u, const char* kind) {
    return upstream_errors_.With({c.spec.name, u.address, kind});
  }
  core::Counter& retries(const Cluster& c) { return retries_.With({c.spec.name}); }
  core::Counter& retries_refused(const Cluster& c) { return retries_refused_.With({c.spec.name}); }
  core::Histogram& duration(const std::string& route) { return duration_.With({route}); }
  core::Gauge& connections(const char* kind) { return connections_.With({kind}); }

 private:
  void Accept();

 public:
  // A connection just accepted, on its io thread: HTTP, or TLS first.
  void Open(Socket socket, std::string ip, std::shared_ptr<void> slot);
  core::Counter& handshakes(bool ok) { return handshakes_.With({ok ? "ok" : "error"}); }

 private:
  void ForEach(const std::function<void(const std::shared_ptr<Conn>&)>& fn) {
    std::vector<std::shared_ptr<Conn>> live;
    {
      std::lock_guard lock(mu_);
      for (auto& [ptr, weak] : conns_) {
        if (auto c = weak.lock()) live.push_back(std::move(c));
      }
    }
    for (auto& c : live) {
      asio::post(c->executor(), [c, fn] { fn(c); });
    }
  }

  net::IoPool& pool_;
  Router& router_;
  const ProxyOptions options_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};
  std::unordered_map<asio::execution_context*, std::unique_ptr<ConnPool>> conn_pools_;

  mutable std::mutex mu_;
  std::condition_variable drained_cv_;
  std::unordered_map<Conn*, std::weak_ptr<Conn>> conns_;
  std::unordered_map<std::string, uint32_t> per_address_;  // under mu_
  std::unique_ptr<core::KeyedRateLimiter<std::string>> request_rate_;

  core::CounterFamily& requests_;
  core::CounterFamily& upstream_requests_;
  core::CounterFamily& upstream_errors_;
  core::CounterFamily& retries_;
  core::CounterFamily& retries_refused_;
  core::CounterFamily& handshakes_;
  core::HistogramFamily& duration_;
  core::Counter& refused_;
  core::GaugeFamily& connections_;
};

namespace {

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

// One client connection while it speaks HTTP, in cleartext (PlainStream)
// or over TLS (TlsStream, handshake done). `buffer`: bytes already read.
template <class Stream>
class Session final : public Conn {
 public:
  Session(std::shared_ptr<ProxyServer::Impl> server, Stream stream, beast::flat_buffer buffer,
          std::string client_ip, std::shared_ptr<void> slot)
      : server_(std::move(server)),
        client_(std::move(stream)),
        buffer_(std::move(buffer)),
        client_ip_(std::move(client_ip)),
        slot_(std::move(slot)) {
    boost::system::error_code ec;
    RawSocket(client_).set_option(tcp::no_delay(true), ec);
    server_->connections(kIsTls<Stream> ? "https" : "http").Add(1);
  }
  ~Session() override {
    if (picked_) cluster_->upstreams->Release(picked_);  // the client left mid-exchange
    server_->connections(kIsTls<Stream> ? "https" : "http").Add(-1);
    if (registered_) server_->Remove(this);
  }

  void Start() {
    server_->Add(shared_from_this());
    registered_ = true;
    ReadRequest(true);
  }

  void CloseIfIdle() override {
    if (idle_) CloseNow();
  }
  void CloseNow() override {
    boost::system::error_code ec;
    RawSocket(client_).close(ec);
    if (up_) up_->stream.socket().close(ec);
  }
  asio::any_io_executor executor() override { return client_.get_executor(); }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  PlainStream& Tcp() { return beast::get_lowest_layer(client_); }
  const ProxyOptions& options() const { return server_->options(); }

  void ReadRequest(bool first) {
    idle_ = !first;
    route_name_ = "none";
    method_.clear();
    path_.clear();
    upstream_.reset();
    attempts_ = 0;
    if (!first && server_->draining()) return CloseNow();
    parser_.emplace();
    parser_->header_limit(options().max_header_bytes);
    parser_->body_limit(options().max_body_bytes);
    Tcp().expires_after(first ? options().request_timeout : options().idle_timeout);
    http::async_read_header(client_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (ec) return OnReadError(ec);
    Tcp().expires_after(options().request_timeout);
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
    req_ = parser_->release();
    started_ = Clock::now();
    keep_alive_ = req_.keep_alive();
    method_ = std::string(req_.method_string());
    path_ = std::string(PathOf(req_.target()));  // never the query: it may hold a token
    if (options().local) {
      if (auto local = options().local(path_)) {
        route_name_ = "local";
        return ReplyLocal(*local);
      }
    }
    // Proxied requests only: probes of the edge's own endpoints are not
    // limited.
    if (int64_t retry_ms = server_->RateLimit(client_ip_); retry_ms > 0) {
      // A refused upgrade is the end of its connection, as at the gateway.
      if (beast::websocket::is_upgrade(req_)) keep_alive_ = false;
      return ReplyLocal(net::HttpResponse::Error(
          core::RateLimitedError("too many requests from this address", retry_ms)));
    }
    upgrade_ = beast::websocket::is_upgrade(req_);
    table_ = server_->router().Current();
    const Route* route = table_
                             ? table_->Match(req_[http::field::host], req_.target(),
                                             [this](const std::string& name) { return req_[name]; })
                             : nullptr;
    if (!route) {
      if (upgrade_) keep_alive_ = false;
      return ReplyLocal(net::HttpResponse::Error(absl::NotFoundError("no route for this request")));
    }
    route_name_ = route->spec.name;
    cluster_ = route->cluster.get();
    const HashKey& hk = cluster_->hash_key;
    std::string_view header_value;
    if (!hk.header().empty()) header_value = req_[hk.header()];
    key_ = hk.Of(req_.target(), header_value, client_ip_);
    sticky_.reset();
    if (!cluster_->spec.sticky_cookie.empty()) {
      if (auto v = CookieValue(req_[http::field::cookie], cluster_->spec.sticky_cookie)) {
        sticky_ = std::string(*v);
      }
    }
    cluster_->budget->RecordRequest();

    DropHopByHop(req_.base(), upgrade_);
    req_.erase(http::field::expect);
    std::string forwarded_for(req_["X-Forwarded-For"]);
    req_.set("X-Forwarded-For",
             forwarded_for.empty() ? client_ip_ : forwarded_for + ", " + client_ip_);
    req_.set("X-Forwarded-Proto", kIsTls<Stream> ? "https" : "http");
    if (req_.find(http::field::host) != req_.end()) {
      req_.set("X-Forwarded-Host", req_[http::field::host]);
    }
    if (!req_.body().empty() || req_.method() == http::verb::post ||
        req_.method() == http::verb::put || req_.method() == http::verb::patch) {
      req_.content_length(req_.body().size());
    }
    attempts_ = 0;
    avoid_ = nullptr;
    fresh_retry_done_ = false;
    Attempt();
  }

  void Attempt() {
    Upstreams& set = *cluster_->upstreams;
    picked_ = Picked();
    if (sticky_ && !avoid_) picked_ = set.PickSticky(*sticky_);
    if (!picked_) picked_ = set.Pick(key_, avoid_.get(), Where());
    if (!picked_) {
      if (picked_.circuit_open) {
        return ReplyLocal(net::HttpResponse::Error(absl::UnavailableError(
            "every upstream of " + cluster_->spec.name + " is refused by its circuit breaker")));
      }
      return ReplyLocal(net::HttpResponse::Error(absl::UnavailableError(
                            "no upstream of " + cluster_->spec.name + " is known")),
                        502);
    }
    upstream_ = picked_.upstream;
    load_ = InFlight(upstream_);
    up_ = server_->conn_pool(client_.get_executor()).Take(upstream_->address);
    up_reused_ = up_ != nullptr;
    if (up_) return Send();
    Connect();
  }

  // The client's location when the cluster has zones and a GeoIP database
  // is configured (looked up once per connection); null otherwise.
  const Location* Where() {
    if (cluster_->spec.zones.empty() || !options().geoip) return nullptr;
    if (!location_) location_ = options().geoip->Lookup(client_ip_);
    return &*location_;
  }

  void Connect() {
    up_ = std::make_unique<UpConn>(client_.get_executor());
    up_reused_ = false;
    boost::system::error_code ec;
    auto address = asio::ip::make_address(upstream_->host, ec);
    if (ec) return ConnectFailed();
    up_->stream.expires_after(options().connect_timeout);
    up_->stream.async_connect(tcp::endpoint(address, upstream_->port),
                              [self = Self()](beast::error_code cec) {
                                if (cec) return self->ConnectFailed();
                                boost::system::error_code ignored;
                                self->up_->stream.socket().set_option(tcp::no_delay(true), ignored);
                                self->Send();
                              });
  }

  void ConnectFailed() {
    server_->Error(*cluster_, *upstream_, "connect").Inc();
    Outcome(false);
    cluster_->upstreams->ReportFailure(upstream_);
    up_.reset();
    // Nothing was sent: any request may go elsewhere.
    if (MayRetry()) return Retry();
    ReplyLocal(net::HttpResponse::Error(absl::UnavailableError(
                   "no upstream of " + cluster_->spec.name + " could be reached")),
               502);
  }

  // The breaker's permit back with the exchange's outcome.
  void Outcome(bool ok) {
    if (picked_) cluster_->upstreams->Record(picked_, ok);
    picked_ = Picked();
  }

  // Another attempt is allowed by the cluster's retries and retry budget.
  bool MayRetry() {
    if (attempts_ >= cluster_->spec.retries) return false;
    if (!cluster_->budget->TryRetry()) {
      server_->retries_refused(*cluster_).Inc();
      return false;
    }
    return true;
  }

  void Retry() {
    ++attempts_;
    server_->retries(*cluster_).Inc();
    avoid_ = upstream_;
    Attempt();
  }

  void Send() {
    SentCounter().Inc();
    up_->stream.expires_after(options().upstream_timeout);
    head_.clear();
    AppendHead(head_, req_.base());
    const std::array<asio::const_buffer, 2> out = {asio::buffer(head_), asio::buffer(req_.body())};
    asio::async_write(up_->stream, out, [self = Self()](beast::error_code ec, size_t) {
      if (ec) return self->Broken(ec, false);
      self->ReadResponse();
    });
  }

  void ReadResponse() {
    resp_parser_.emplace();
    resp_parser_->header_limit(kMaxResponseHeaderBytes);
    resp_parser_->body_limit(options().max_response_bytes);
    if (req_.method() == http::verb::head) resp_parser_->skip(true);
    http::async_read(up_->stream, up_->buffer, *resp_parser_,
                     [self = Self()](beast::error_code ec, size_t) {
                       if (ec) return self->Broken(ec, self->resp_parser_->got_some());
                       self->OnResponse();
                     });
  }

  // The exchange with the gateway failed after the connection was up.
  void Broken(beast::error_code ec, bool answer_began) {
    up_.reset();
    if (ec == beast::error::timeout) {
      server_->Error(*cluster_, *upstream_, "timeout").Inc();
      Outcome(false);
      return ReplyLocal(
          net::HttpResponse::Error(absl::UnavailableError("the upstream did not answer in time")),
          504);
    }
    server_->Error(*cluster_, *upstream_, "broken").Inc();
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      if (picked_) cluster_->upstreams->Release(picked_);  // says nothing of its health
      picked_ = Picked();
      return ReplyLocal(
          net::HttpResponse::Error(absl::UnavailableError("the upstream's answer is too large")),
          502);
    }
    if (!answer_began && up_reused_ && !fresh_retry_done_) {
      // A pooled connection the upstream closed as it was taken: the same
      // upstream again, on a fresh connection, with the same permit.
      fresh_retry_done_ = true;
      server_->retries(*cluster_).Inc();
      return Connect();
    }
    Outcome(false);
    if (!answer_began && (Idempotent(req_.method()) || upgrade_) && MayRetry()) {
      cluster_->upstreams->ReportFailure(upstream_);
      return Retry();
    }
    ReplyLocal(net::HttpResponse::Error(
                   absl::UnavailableError("the upstream closed the connection before answering")),
               502);
  }

  // Sets the sticky cookie on an answer when the client's did not name
  // the upstream that answered.
  template <typename Fields>
  void Stick(Fields& fields) {
    const std::string& name = cluster_->spec.sticky_cookie;
    if (name.empty() || (sticky_ && *sticky_ == upstream_->sticky_id)) return;
    fields.insert(http::field::set_cookie,
                  name + "=" + upstream_->sticky_id + "; Path=/; HttpOnly; SameSite=Lax");
  }

  void OnResponse() {
    resp_ = resp_parser_->release();
    const unsigned code = resp_.result_int();
    Outcome(code != 500 && code != 502 && code != 503 && code != 504);
    if (upgrade_ && resp_.result() == http::status::switching_protocols) return StartTunnel();
    if (resp_.keep_alive() && !upgrade_) {
      server_->conn_pool(client_.get_executor()).Put(upstream_->address, std::move(up_));
    }
    up_.reset();
    load_.Release();
    const bool head = req_.method() == http::verb::head;
    DropHopByHop(resp_.base(), false);
    Stick(resp_.base());
    const unsigned status = resp_.result_int();
    if (!head && status >= 200 && status != 204 && status != 304) {
      resp_.content_length(resp_.body().size());
    }
    if (upgrade_) keep_alive_ = false;  // a refused upgrade: the client starts over
    Write(std::move(resp_), true);
  }

  void StartTunnel() {
    server_->Answered(route_name_, 101).Inc();
    Stick(resp_.base());
    AccessLog(101);
    std::ostringstream head;
    head << resp_.base();
    std::string to_client = head.str();
    to_client += beast::buffers_to_string(up_->buffer.data());
    std::string to_upstream = beast::buffers_to_string(buffer_.data());
    Tcp().expires_never();
    up_->stream.expires_never();
    auto start = [&](auto tunnel) {
      server_->Add(tunnel);
      up_.reset();
      tunnel->Start(std::move(to_upstream), std::move(to_client));
    };
    Socket upstream = up_->stream.release_socket();
    if constexpr (kIsTls<Stream>) {
      start(std::make_shared<Tunnel<TlsStream>>(server_, std::move(client_), std::move(upstream),
                                                std::move(load_), std::move(slot_)));
    } else {
      start(std::make_shared<Tunnel<Socket>>(server_, client_.release_socket(), std::move(upstream),
                                             std::move(load_), std::move(slot_)));
    }
    // This session ends here: its last handler returns.
  }

  // One line per answer (edge.access_log): who, what (the path, never the
  // query), where it went, how it ended and how long it took.
  void AccessLog(unsigned status) {
    if (!options().access_log) return;
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count();
    AccessLogger().Info("request", {{"client", client_ip_},
                                    {"method", method_.empty() ? "-" : method_},
                                    {"path", path_.empty() ? "-" : path_},
                                    {"status", static_cast<int64_t>(status)},
                                    {"route", route_name_},
                                    {"upstream", upstream_ ? upstream_->address : "-"},
                                    {"attempts", static_cast<int64_t>(attempts_ + 1)},
                                    {"duration_us", static_cast<int64_t>(us)}});
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

  void ReplyLocal(const net::HttpResponse& r, int status_override = 0) {
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
    load_.Release();
    const unsigned status = res.result_int();
    AnsweredCounter(status).Inc();
    AccessLog(status);
    if (server_->draining()) keep_alive_ = false;
    res.keep_alive(keep_alive_);
    out_ = std::move(res);
    head_.clear();
    AppendHead(head_, out_.base());
    Tcp().expires_after(options().request_timeout);
    const std::array<asio::const_buffer, 2> out = {asio::buffer(head_), asio::buffer(out_.body())};
    asio::async_write(client_, out, [self = Self(), proxied](beast::error_code ec, size_t) {
      if (proxied) {
        self->DurationHistogram().Observe(
            std::chrono::duration<double>(Clock::now() - self->started_).count());
      }
      if (ec) return self->CloseNow();
      if (!self->keep_alive_) return self->EndWrites();
      self->ReadRequest(false);
    });
  }

  // The metric children this connection last used, looked up again only
  // when its route or upstream changes (a family's lookup takes a mutex
  // shared by the io threads and allocates its key).
  void MetricsForRoute() {
    if (metrics_.route == route_name_) return;
    metrics_.route = route_name_;
    metrics_.answered.fill(nullptr);
    metrics_.duration = nullptr;
  }
  core::Counter& AnsweredCounter(unsigned status) {
    MetricsForRoute();
    const size_t i = std::clamp<unsigned>(status / 100, 1, 5) - 1;
    if (!metrics_.answered[i]) metrics_.answered[i] = &server_->Answered(route_name_, status);
    return *metrics_.answered[i];
  }
  core::Histogram& DurationHistogram() {
    MetricsForRoute();
    if (!metrics_.duration) metrics_.duration = &server_->duration(route_name_);
    return *metrics_.duration;
  }
  core::Counter& SentCounter() {
    if (metrics_.upstream != upstream_) {  // held: its address is not reused meanwhile
      metrics_.upstream = upstream_;
      metrics_.sent = &server_->Sent(*cluster_, *upstream_);
    }
    return *metrics_.sent;
  }

  struct MetricChildren {
    std::string route = "\n";  // no route's name
    std::array<core::Counter*, 5> answered{};
    core::Histogram* duration = nullptr;
    std::shared_ptr<Upstream> upstream;  // an upstream belongs to one cluster
    core::Counter* sent = nullptr;
  };

  std::shared_ptr<ProxyServer::Impl> server_;
  Stream client_;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  MetricChildren metrics_;
  std::shared_ptr<void> slot_;  // this connection in its address's count
  bool registered_ = false;
  bool idle_ = false;

  std::optional<http::request_parser<http::string_body>> parser_;
  Request req_;
  bool keep_alive_ = false;
  bool upgrade_ = false;
  std::optional<std::string> key_;
  std::optional<std::string> sticky_;  // the client's sticky cookie for this route's cluster
  std::optional<Location> location_;   // the client's, once looked up
  Clock::time_point started_;
  std::string method_, path_;  // for the access log
  std::string route_name_ = "none";
  std::shared_ptr<const RouteTable> table_;  // the table this request was routed by
  Cluster* cluster_ = nullptr;               // in table_

  Picked picked_;  // the breaker's permit, until the attempt's outcome
  std::shared_ptr<Upstream> upstream_;
  std::shared_ptr<Upstream> avoid_;
  InFlight load_;
  std::unique_ptr<UpConn> up_;
  bool up_reused_ = false;
  bool fresh_retry_done_ = false;
  int attempts_ = 0;
  std::optional<http::response_parser<http::string_body>> resp_parser_;
  Response resp_;
  Response out_;      // the answer being written to the client
  std::string head_;  // the head of what is being written (to the upstream or the client)
};

}  // namespace

namespace {

// A connection on a listener that also takes TLS: its first bytes say which
// (a TLS ClientHello, or anything else: HTTP in cleartext), then the TLS
// handshake (with the certificate in force now) before HTTP.
class Handshake : public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(std::shared_ptr<ProxyServer::Impl> server, Socket socket, std::string ip,
            std::shared_ptr<void> slot)
      : server_(std::move(server)),
        stream_(std::move(socket)),
        ip_(std::move(ip)),
        slot_(std::move(slot)) {}

  void Run() {
    stream_.expires_after(server_->options().request_timeout);
    beast::async_detect_ssl(
        stream_, buffer_,
        [self = shared_from_this()](beast::error_code ec, bool tls) { self->Detected(ec, tls); });
  }

 private:
  void Detected(beast::error_code ec, bool tls) {
    if (ec) return;  // gone, or silent until the timeout: closed
    if (!tls) {
      std::make_shared<Session<PlainStream>>(server_, std::move(stream_), std::move(buffer_),
                                             std::move(ip_), std::move(slot_))
          ->Start();
      return;
    }
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
  if (!options_.tls) {
    std::make_shared<Session<PlainStream>>(shared_from_this(), PlainStream(std::move(socket)),
                                           beast::flat_buffer(), std::move(ip), std::move(slot))
        ->Start();
    return;
  }
  std::make_shared<Handshake>(shared_from_this(), std::move(socket), std::move(ip), std::move(slot))
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
    : impl_(std::make_shared<Impl>(pool, router, std::move(options), metrics)) {}

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
