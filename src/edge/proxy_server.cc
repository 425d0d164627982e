#include "edge/proxy_server.h"

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "core/logging.h"
#include "core/rate_limiter.h"
#include "net/listen.h"

namespace mpim::edge {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

const core::Logger& Log() {
  static const core::Logger log("edge");
  return log;
}

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr size_t kTunnelChunk = 16 * 1024;
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
  explicit UpConn(const asio::any_io_executor& ex) : stream(ex) {}
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
};

// Idle connections to the gateways, for one io thread (no lock: only that
// thread uses it).
class ConnPool {
 public:
  explicit ConnPool(size_t max_idle) : max_idle_(max_idle) {}

  // An idle connection to `address` the gateway has not closed, or null.
  std::unique_ptr<UpConn> Take(const std::string& address) {
    auto it = idle_.find(address);
    if (it == idle_.end()) return nullptr;
    while (!it->second.empty()) {
      std::unique_ptr<UpConn> c = std::move(it->second.back());
      it->second.pop_back();
      if (Usable(*c)) return c;
    }
    return nullptr;
  }

  void Put(const std::string& address, std::unique_ptr<UpConn> c) {
    auto& list = idle_[address];
    if (list.size() >= max_idle_ || c->buffer.size() != 0) return;  // closed on drop
    c->stream.expires_never();
    list.push_back(std::move(c));
  }

  void Clear() { idle_.clear(); }

 private:
  // Not closed by the gateway meanwhile and nothing unexpected waiting:
  // a peek that would block.
  static bool Usable(UpConn& c) {
    tcp::socket& s = c.stream.socket();
    if (!s.is_open()) return false;
    char byte;
    ssize_t n = ::recv(s.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
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
  Impl(net::IoPool& pool, Upstreams& upstreams, ProxyOptions options,
       core::MetricsRegistry& metrics)
      : pool_(pool),
        upstreams_(upstreams),
        options_(std::move(options)),
        acceptor_(pool.At(0)),
        requests_(metrics.Counter("mpim_edge_requests_total",
                                  "Requests the edge answered, by status class (1xx for "
                                  "WebSocket upgrades the gateway took).",
                                  {"class"})),
        upstream_requests_(metrics.Counter("mpim_edge_upstream_requests_total",
                                           "Requests sent to each gateway (retries included).",
                                           {"upstream"})),
        upstream_errors_(metrics.Counter("mpim_edge_upstream_errors_total",
                                         "Failed exchanges with a gateway, by kind: connect, "
                                         "broken (closed or reset before the whole answer), "
                                         "timeout.",
                                         {"upstream", "kind"})),
        retries_(metrics
                     .Counter("mpim_edge_retries_total",
                              "Requests sent again, to another gateway or on a fresh "
                              "connection.")
                     .With({})),
        duration_(metrics
                      .Histogram("mpim_edge_request_duration_seconds",
                                 "From a request's last byte in to its answer's last byte out "
                                 "(proxied requests).")
                      .With({})),
        refused_(metrics
                     .Counter("mpim_edge_connections_refused_total",
                              "Client connections closed at accept: over "
                              "limits.connections_per_address.")
                     .With({})),
        connections_(metrics.Gauge("mpim_edge_connections",
                                   "Client connections open, by kind: http (requests) or "
                                   "tunnel (WebSockets joined to a gateway).",
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

  ConnPool& conn_pool(const asio::any_io_executor& ex) {
    return *conn_pools_.at(&asio::query(ex, asio::execution::context));
  }

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
  Upstreams& upstreams() { return upstreams_; }

  core::Counter& Answered(unsigned status) { return requests_.With({StatusClass(status)}); }
  core::Counter& Sent(const std::string& upstream) { return upstream_requests_.With({upstream}); }
  core::Counter& Error(const std::string& upstream, const char* kind) {
    return upstream_errors_.With({upstream, kind});
  }
  core::Counter& retries() { return retries_; }
  core::Histogram& duration() { return duration_; }
  core::Gauge& connections(const char* kind) { return connections_.With({kind}); }

 private:
  void Accept();
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
  Upstreams& upstreams_;
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
  core::Counter& retries_;
  core::Histogram& duration_;
  core::Counter& refused_;
  core::GaugeFamily& connections_;
};

namespace {

// A WebSocket joined to its gateway: bytes copied both ways, frames
// untouched. Each direction waits until its source is readable, then reads
// what is there into a buffer it holds only until the other side took it.
class Tunnel final : public Conn {
 public:
  Tunnel(std::shared_ptr<ProxyServer::Impl> server, tcp::socket client, tcp::socket upstream,
         InFlight load, std::shared_ptr<void> slot)
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
    client_.non_blocking(true, ec);
    upstream_.non_blocking(true, ec);
    Begin(up_, std::move(to_upstream));
    Begin(down_, std::move(to_client));
  }

  void CloseIfIdle() override { CloseNow(); }  // clients reconnect through another edge
  void CloseNow() override {
    boost::system::error_code ec;
    client_.close(ec);
    upstream_.close(ec);
  }
  asio::any_io_executor executor() override { return client_.get_executor(); }

 private:
  struct Direction {
    tcp::socket* from;
    tcp::socket* to;
    std::unique_ptr<char[]> buffer;
    bool done = false;
  };

  void Begin(Direction& d, std::string pending) {
    if (pending.empty()) return Wait(d);
    auto data = std::make_shared<std::string>(std::move(pending));
    asio::async_write(*d.to, asio::buffer(*data),
                      [self = Self(), &d, data](boost::system::error_code ec, size_t) {
                        if (ec) return self->CloseNow();
                        self->Wait(d);
                      });
  }

  void Wait(Direction& d) {
    d.from->async_wait(tcp::socket::wait_read, [self = Self(), &d](boost::system::error_code ec) {
      self->Readable(d, ec);
    });
  }

  void Readable(Direction& d, boost::system::error_code ec) {
    if (ec) return CloseNow();
    if (!d.buffer) d.buffer.reset(new char[kTunnelChunk]);
    size_t n = d.from->read_some(asio::buffer(d.buffer.get(), kTunnelChunk), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      d.buffer.reset();
      return Wait(d);
    }
    if (ec == asio::error::eof) {  // half-close: pass it on, the other way may go on
      d.buffer.reset();
      d.done = true;
      d.to->shutdown(tcp::socket::shutdown_send, ec);
      if (up_.done && down_.done) CloseNow();
      return;
    }
    if (ec) return CloseNow();
    asio::async_write(*d.to, asio::buffer(d.buffer.get(), n),
                      [self = Self(), &d](boost::system::error_code wec, size_t) {
                        d.buffer.reset();
                        if (wec) return self->CloseNow();
                        self->Wait(d);
                      });
  }

  std::shared_ptr<Tunnel> Self() { return std::static_pointer_cast<Tunnel>(shared_from_this()); }

  std::shared_ptr<ProxyServer::Impl> server_;
  tcp::socket client_;
  tcp::socket upstream_;
  InFlight load_;
  std::shared_ptr<void> slot_;  // the client's connection in its address's count
  Direction up_{&client_, &upstream_};
  Direction down_{&upstream_, &client_};
};

// One client connection while it speaks HTTP.
class Session final : public Conn {
 public:
  Session(std::shared_ptr<ProxyServer::Impl> server, tcp::socket socket, std::string client_ip,
          std::shared_ptr<void> slot)
      : server_(std::move(server)),
        client_(std::move(socket)),
        client_ip_(std::move(client_ip)),
        slot_(std::move(slot)) {
    boost::system::error_code ec;
    client_.socket().set_option(tcp::no_delay(true), ec);
    server_->connections("http").Add(1);
  }
  ~Session() override {
    server_->connections("http").Add(-1);
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
    client_.socket().close(ec);
    if (up_) up_->stream.socket().close(ec);
  }
  asio::any_io_executor executor() override { return client_.get_executor(); }

 private:
  std::shared_ptr<Session> Self() { return std::static_pointer_cast<Session>(shared_from_this()); }
  const ProxyOptions& options() const { return server_->options(); }

  void ReadRequest(bool first) {
    idle_ = !first;
    if (!first && server_->draining()) return CloseNow();
    parser_.emplace();
    parser_->header_limit(options().max_header_bytes);
    parser_->body_limit(options().max_body_bytes);
    client_.expires_after(first ? options().request_timeout : options().idle_timeout);
    http::async_read_header(client_, buffer_, *parser_,
                            [self = Self()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    idle_ = false;
    if (ec) return OnReadError(ec);
    client_.expires_after(options().request_timeout);
    auto& req = parser_->get();
    if (IEquals(req[http::field::expect], "100-continue") && !parser_->is_done()) {
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      return asio::async_write(client_.socket(), asio::buffer(*cont),
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
    if (options().local) {
      if (auto local = options().local(PathOf(req_.target()))) return ReplyLocal(*local);
    }
    // Proxied requests only: probes of the edge's own endpoints are not
    // limited.
    if (int64_t retry_ms = server_->RateLimit(client_ip_); retry_ms > 0) {
      // A refused upgrade is the end of its connection, as at the gateway.
      if (beast::websocket::is_upgrade(req_)) keep_alive_ = false;
      return ReplyLocal(net::HttpResponse::Error(
          core::RateLimitedError("too many requests from this address", retry_ms)));
    }
    const HashKey& hk = options().hash_key;
    std::string_view header_value;
    if (!hk.header().empty()) header_value = req_[hk.header()];
    key_ = hk.Of(req_.target(), header_value, client_ip_);
    upgrade_ = beast::websocket::is_upgrade(req_);

    DropHopByHop(req_.base(), upgrade_);
    req_.erase(http::field::expect);
    std::string forwarded_for(req_["X-Forwarded-For"]);
    req_.set("X-Forwarded-For",
             forwarded_for.empty() ? client_ip_ : forwarded_for + ", " + client_ip_);
    req_.set("X-Forwarded-Proto", "http");
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
    upstream_ = server_->upstreams().Pick(key_, avoid_.get());
    if (!upstream_) {
      return ReplyLocal(net::HttpResponse::Error(absl::UnavailableError("no gateway is known")),
                        502);
    }
    load_ = InFlight(upstream_);
    up_ = server_->conn_pool(client_.get_executor()).Take(upstream_->address);
    up_reused_ = up_ != nullptr;
    if (up_) return Send();
    Connect();
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
    server_->Error(upstream_->address, "connect").Inc();
    server_->upstreams().ReportFailure(upstream_);
    up_.reset();
    // Nothing was sent: any request may go elsewhere.
    if (attempts_ < options().retries) return Retry();
    ReplyLocal(net::HttpResponse::Error(absl::UnavailableError("no gateway could be reached")),
               502);
  }

  void Retry() {
    ++attempts_;
    server_->retries().Inc();
    avoid_ = upstream_;
    Attempt();
  }

  void Send() {
    server_->Sent(upstream_->address).Inc();
    up_->stream.expires_after(options().upstream_timeout);
    http::async_write(up_->stream, req_, [self = Self()](beast::error_code ec, size_t) {
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
      server_->Error(upstream_->address, "timeout").Inc();
      return ReplyLocal(
          net::HttpResponse::Error(absl::UnavailableError("the gateway did not answer in time")),
          504);
    }
    if (ec == http::error::body_limit || ec == http::error::header_limit) {
      server_->Error(upstream_->address, "broken").Inc();
      return ReplyLocal(
          net::HttpResponse::Error(absl::UnavailableError("the gateway's answer is too large")),
          502);
    }
    server_->Error(upstream_->address, "broken").Inc();
    if (!answer_began && up_reused_ && !fresh_retry_done_) {
      // A pooled connection the gateway closed as it was taken.
      fresh_retry_done_ = true;
      server_->retries().Inc();
      return Connect();
    }
    if (!answer_began && (Idempotent(req_.method()) || upgrade_) && attempts_ < options().retries) {
      server_->upstreams().ReportFailure(upstream_);
      return Retry();
    }
    ReplyLocal(net::HttpResponse::Error(
                   absl::UnavailableError("the gateway closed the connection before answering")),
               502);
  }

  void OnResponse() {
    resp_ = resp_parser_->release();
    if (upgrade_ && resp_.result() == http::status::switching_protocols) return StartTunnel();
    if (resp_.keep_alive() && !upgrade_) {
      server_->conn_pool(client_.get_executor()).Put(upstream_->address, std::move(up_));
    }
    up_.reset();
    load_.Release();
    const bool head = req_.method() == http::verb::head;
    DropHopByHop(resp_.base(), false);
    const unsigned status = resp_.result_int();
    if (!head && status >= 200 && status != 204 && status != 304) {
      resp_.content_length(resp_.body().size());
    }
    if (upgrade_) keep_alive_ = false;  // a refused upgrade: the client starts over
    Write(std::move(resp_), true);
  }

  void StartTunnel() {
    server_->Answered(101).Inc();
    std::ostringstream head;
    head << resp_.base();
    std::string to_client = head.str();
    to_client += beast::buffers_to_string(up_->buffer.data());
    std::string to_upstream = beast::buffers_to_string(buffer_.data());
    client_.expires_never();
    up_->stream.expires_never();
    auto tunnel =
        std::make_shared<Tunnel>(server_, client_.release_socket(), up_->stream.release_socket(),
                                 std::move(load_), std::move(slot_));
    server_->Add(tunnel);
    up_.reset();
    tunnel->Start(std::move(to_upstream), std::move(to_client));
    // This session ends here: its last handler returns.
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
    server_->Answered(status).Inc();
    if (server_->draining()) keep_alive_ = false;
    res.keep_alive(keep_alive_);
    auto out = std::make_shared<Response>(std::move(res));
    client_.expires_after(options().request_timeout);
    http::async_write(client_, *out, [self = Self(), out, proxied](beast::error_code ec, size_t) {
      if (proxied) {
        self->server_->duration().Observe(
            std::chrono::duration<double>(Clock::now() - self->started_).count());
      }
      if (ec) return self->CloseNow();
      if (!self->keep_alive_) {
        boost::system::error_code ignored;
        self->client_.socket().shutdown(tcp::socket::shutdown_send, ignored);
        return;
      }
      self->ReadRequest(false);
    });
  }

  std::shared_ptr<ProxyServer::Impl> server_;
  beast::tcp_stream client_;
  beast::flat_buffer buffer_;
  std::string client_ip_;
  std::shared_ptr<void> slot_;  // this connection in its address's count
  bool registered_ = false;
  bool idle_ = false;

  std::optional<http::request_parser<http::string_body>> parser_;
  Request req_;
  bool keep_alive_ = false;
  bool upgrade_ = false;
  std::optional<std::string> key_;
  Clock::time_point started_;

  std::shared_ptr<Upstream> upstream_;
  std::shared_ptr<Upstream> avoid_;
  InFlight load_;
  std::unique_ptr<UpConn> up_;
  bool up_reused_ = false;
  bool fresh_retry_done_ = false;
  int attempts_ = 0;
  std::optional<http::response_parser<http::string_body>> resp_parser_;
  Response resp_;
};

}  // namespace

void ProxyServer::Impl::Accept() {
  acceptor_.async_accept(
      pool_.Next(), [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
        if (!ec) {
          boost::system::error_code peer_ec;
          auto peer = socket.remote_endpoint(peer_ec);
          std::string ip = peer_ec ? std::string() : peer.address().to_string();
          if (auto slot = self->TakeSlot(ip)) {
            auto session =
                std::make_shared<Session>(self, std::move(socket), std::move(ip), std::move(slot));
            asio::post(session->executor(), [session] { session->Start(); });
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

ProxyServer::ProxyServer(net::IoPool& pool, Upstreams& upstreams, ProxyOptions options,
                         core::MetricsRegistry& metrics)
    : impl_(std::make_shared<Impl>(pool, upstreams, std::move(options), metrics)) {}

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
