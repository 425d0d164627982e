// The edge's listener, inside (not for includers of proxy_server.h): what
// its HTTP/1.1 sessions (proxy_server.cc), HTTP/2 sessions (h2_session.cc)
// and their exchanges with upstreams (exchange.cc, h2_upstream.cc) share.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/rate_limiter.h"
#include "edge/proxy_server.h"
#include "net/listen.h"

namespace mpim::edge {

namespace proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// Streams and sockets bound to an io_context's own executor, not Asio's
// type-erased any_io_executor: each handler copied and destroyed one
// (about 5% of the edge's CPU at its maximum, session 18's profile).
using Executor = asio::io_context::executor_type;
using Socket = asio::basic_stream_socket<tcp, Executor>;
using PlainStream = beast::basic_stream<tcp, Executor>;
using TlsStream = beast::ssl_stream<PlainStream>;
template <class S>
constexpr bool kIsTls = std::is_same_v<S, TlsStream>;

inline Socket& RawSocket(Socket& s) { return s; }
inline Socket& RawSocket(PlainStream& s) { return s.socket(); }
inline Socket& RawSocket(TlsStream& s) { return beast::get_lowest_layer(s).socket(); }
constexpr uint32_t kMaxResponseHeaderBytes = 64 * 1024;

inline bool IEquals(std::string_view a, std::string_view b) { return beast::iequals(a, b); }

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

inline bool Idempotent(http::verb v) {
  return v == http::verb::get || v == http::verb::head || v == http::verb::options;
}

inline std::string_view PathOf(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

inline const char* StatusClass(unsigned status) {
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
// thread uses it). Taken last in, first out, so under load a connection is
// back in use within microseconds, and it costs no system call either way.
// A connection idle across a whole sweep (1 to 2 s) starts waiting to
// become readable: an upstream that closes it (or sends what nobody asked
// for) takes it out of the pool then. One taken just as its upstream closed
// it fails before any answer, and the exchange tries a fresh connection to
// the same upstream (Exchange::Broken). Watching every connection as it was
// put back cost an epoll_ctl and a cancelled wait per request.
class ConnPool {
 public:
  ConnPool(size_t max_idle, const Executor& ex) : max_idle_(max_idle), sweep_(ex) {}

  // An idle connection to `address`, or null.
  std::unique_ptr<UpConn> Take(const std::string& address) {
    auto it = idle_.find(address);
    if (it == idle_.end() || it->second.empty()) return nullptr;
    Idle last = std::move(it->second.back());
    it->second.pop_back();
    if (last.watched) {
      boost::system::error_code ec;
      last.conn->stream.socket().cancel(ec);  // its wait ends, aborted
    }
    return std::move(last.conn);
  }

  void Put(const std::string& address, std::unique_ptr<UpConn> c) {
    auto& list = idle_[address];
    if (list.size() >= max_idle_ || c->buffer.size() != 0) return;  // closed on drop
    c->stream.expires_never();
    list.push_back({std::move(c), round_, false});
    if (!sweeping_) Sweep();
  }

  void Clear() {
    sweep_.cancel();
    idle_.clear();
  }

 private:
  struct Idle {
    std::unique_ptr<UpConn> conn;
    uint64_t round;  // the sweep round it was put back in
    bool watched;
  };

  // Every second while connections are idle: those put back before the
  // previous round start watching.
  void Sweep() {
    sweeping_ = true;
    sweep_.expires_after(std::chrono::seconds(1));
    sweep_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      ++round_;
      bool more = false;
      for (auto& [address, list] : idle_) {
        for (Idle& idle : list) {
          if (idle.watched) continue;
          if (idle.round + 1 < round_) {
            Watch(address, idle);
          } else {
            more = true;
          }
        }
      }
      sweeping_ = false;
      if (more) Sweep();
    });
  }

  void Watch(const std::string& address, Idle& idle) {
    idle.watched = true;
    UpConn* raw = idle.conn.get();
    raw->stream.socket().async_wait(Socket::wait_read,
                                    [this, address, raw](boost::system::error_code ec) {
                                      if (!ec) Drop(address, raw);  // not taken: closed or stray
                                    });
  }

  void Drop(const std::string& address, const UpConn* c) {
    auto it = idle_.find(address);
    if (it == idle_.end()) return;
    std::erase_if(it->second, [c](const Idle& x) { return x.conn.get() == c; });
  }

  size_t max_idle_;
  std::unordered_map<std::string, std::vector<Idle>> idle_;
  asio::steady_timer sweep_;
  bool sweeping_ = false;
  uint64_t round_ = 0;
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

class H2UpstreamPool;  // h2_upstream.h
struct H2PoolDeleter {
  void operator()(H2UpstreamPool* p) const;
};

// One line per answer (edge.access_log, logger edge.access): who, what (the
// path, never the query), where it went, how it ended and how long it took.
void LogAccess(const std::string& client, std::string_view method, std::string_view path,
               unsigned status, const std::string& route, const Upstream* upstream, int attempts,
               Clock::time_point started);

}  // namespace proxy

using namespace proxy;  // NOLINT: this header is the listener's own

class ProxyServer::Impl : public std::enable_shared_from_this<ProxyServer::Impl> {
 public:
  ~Impl();
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
                                   "(HTTP/1.1 requests), h2c or h2 (HTTP/2 in cleartext or "
                                   "over TLS) or tunnel (WebSockets joined to an upstream).",
                                   {"kind"})) {
    if (options_.requests_per_sec_address > 0) {
      request_rate_ = std::make_unique<core::KeyedRateLimiter<std::string>>(
          options_.requests_per_sec_address, std::max(1.0, options_.requests_burst_address));
    }
    for (size_t i = 0; i < pool.size(); ++i) {
      conn_pools_.emplace(&pool.At(i), std::make_unique<ConnPool>(options_.max_idle_per_upstream,
                                                                  pool.At(i).get_executor()));
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
  H2UpstreamPool& h2_pool(const Executor& ex) { return *h2_pools_.at(&ex.context()); }
  // The io threads' pools of HTTP/2 upstream connections (h2_upstream.cc).
  void MakeH2Pools();

  // The pooled connections, closed while the io_contexts still exist
  // (before the pool that owns them is destroyed).
  void ClearPools();

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
  std::unordered_map<asio::execution_context*, std::unique_ptr<H2UpstreamPool, H2PoolDeleter>>
      h2_pools_;

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

namespace proxy {

// The answer counters and duration histogram a client connection last used,
// looked up again only when its route changes (a family's lookup takes a
// mutex shared by the io threads and allocates its key).
class AnswerMetrics {
 public:
  core::Counter& Answered(ProxyServer::Impl& server, const std::string& route, unsigned status) {
    For(route);
    const size_t i = std::clamp<unsigned>(status / 100, 1, 5) - 1;
    if (!answered_[i]) answered_[i] = &server.Answered(route, status);
    return *answered_[i];
  }
  core::Histogram& Duration(ProxyServer::Impl& server, const std::string& route) {
    For(route);
    if (!duration_) duration_ = &server.duration(route);
    return *duration_;
  }

 private:
  void For(const std::string& route) {
    if (route_ == route) return;
    route_ = route;
    answered_.fill(nullptr);
    duration_ = nullptr;
  }

  std::string route_ = "\n";  // no route's name
  std::array<core::Counter*, 5> answered_{};
  core::Histogram* duration_ = nullptr;
};

// The sent-requests counters (mpim_edge_upstream_requests_total) a client
// connection has used, by upstream: looked up in the family (a mutex shared
// by the io threads, and an allocated key) once per connection and upstream,
// not per request. On the connection's io thread.
class SentCounters {
 public:
  core::Counter& For(ProxyServer::Impl& server, const Cluster& cluster,
                     const std::shared_ptr<Upstream>& upstream) {
    for (auto& [u, c] : known_) {
      if (u == upstream) return *c;
    }
    if (known_.size() >= 16) known_.clear();
    core::Counter* c = &server.Sent(cluster, *upstream);
    known_.emplace_back(upstream, c);  // held: its address is not reused meanwhile
    return *c;
  }

 private:
  std::vector<std::pair<std::shared_ptr<Upstream>, core::Counter*>> known_;
};

// One request's way to an upstream over HTTP/1.1 (exchange.cc), for a client
// connection of either kind: the route (Route), then (Run) the upstream its
// sticky cookie names or the cluster's balancer picks (with the client's
// zone), a pooled keep-alive connection or a new one, the request, its
// answer; connection failures retried on another upstream (and unanswered
// idempotent requests and upgrades too) within the cluster's retries and
// retry budget, each outcome fed to the upstream's breaker. The answer, the
// edge's own refusal or an upgrade's 101 goes back to the Client, once.
//
// On the client connection's io thread; every handler holds Client::Hold().
class Exchange {
 public:
  class Client {
   public:
    // Keeps the client (and so this exchange) alive while a handler waits.
    virtual std::shared_ptr<void> Hold() = 0;
    // The client's location for a cluster with zones (null: unknown).
    virtual const Location* Where() = 0;
    // The upstream's answer: hop-by-hop fields dropped, sticky cookie set,
    // Content-Length set where there is a body.
    virtual void Answer(Response res) = 0;
    // The edge's own answer (protocol.md's error body), with this status.
    virtual void Refuse(const net::HttpResponse& r, unsigned status) = 0;
    // The upstream took an upgrade (101, `head`): its connection is the
    // client's now, with the load it counts.
    virtual void Upgraded(Response head, std::unique_ptr<UpConn> up, InFlight load) = 0;
    // The upstream phase now ends within `d` (connecting, or sending and
    // reading the answer). True: the client keeps that deadline and calls
    // TimedOut when it passes; false: the upstream stream's own timeout.
    virtual bool UpstreamDeadline(std::chrono::milliseconds) { return false; }

   protected:
    ~Client() = default;
  };

  Exchange(ProxyServer::Impl& server, Client& client, Executor ex, const std::string& client_ip,
           bool tls, SentCounters& sent)
      : server_(server),
        client_(client),
        ex_(std::move(ex)),
        client_ip_(client_ip),
        tls_(tls),
        sent_(sent) {}
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // The route for `req` in the router's table now; false: none fits.
  bool Route(const Request& req);
  // Sends `req` (routed) on its way; `upgrade`: a WebSocket upgrade.
  void Run(Request req, bool upgrade);

  // For a stream that goes its own way (an HTTP/2 upstream, h2_upstream.h):
  // Prepare (hash key, sticky cookie, the retry budget's count) for the
  // routed `req`, then Choose the upstream, and Retarget after a failure
  // that sent nothing (empty when retries or the budget say no).
  void Prepare(const Request& req);
  Picked Choose();
  Picked Retarget(const std::shared_ptr<Upstream>& failed);
  // Why Choose found none.
  absl::Status NoneChosen(const Picked& p) const;
  Cluster* cluster() const { return cluster_; }
  // The connection's counter of requests sent to `u`.
  core::Counter& SentTo(const std::shared_ptr<Upstream>& u) {
    return sent_.For(server_, *cluster_, u);
  }
  // The client is gone: the upstream connection closes.
  void Cancel();
  // The deadline the client kept (UpstreamDeadline) passed: the upstream
  // connection closes and the exchange ends as a timeout (504, or a failed
  // connection).
  void TimedOut();

  const std::string& route_name() const { return route_name_; }
  const Upstream* upstream() const { return upstream_.get(); }
  int attempts() const { return attempts_; }

 private:
  void Attempt();
  void Connect();
  void ConnectFailed();
  void Outcome(bool ok);
  bool MayRetry();
  void Retry();
  void Send();
  void ReadResponse();
  void Broken(beast::error_code ec, bool answer_began);
  void OnResponse();
  void Refuse(absl::Status error, unsigned status);

  ProxyServer::Impl& server_;
  Client& client_;
  const Executor ex_;
  const std::string& client_ip_;  // the client's, which outlives this
  const bool tls_;

  std::shared_ptr<const RouteTable> table_;  // the table this request was routed by
  Cluster* cluster_ = nullptr;               // in table_
  std::string route_name_ = "none";
  Request req_;
  bool upgrade_ = false;
  std::optional<std::string> key_;
  std::optional<std::string> sticky_;  // the client's sticky cookie for this route's cluster
  Picked picked_;                      // the breaker's permit, until the attempt's outcome
  std::shared_ptr<Upstream> upstream_;
  std::shared_ptr<Upstream> avoid_;
  InFlight load_;
  std::unique_ptr<UpConn> up_;
  bool up_reused_ = false;
  bool fresh_retry_done_ = false;
  bool timed_out_ = false;  // TimedOut closed the upstream connection
  int attempts_ = 0;
  std::optional<http::response_parser<http::string_body>> resp_parser_;
  std::string head_;    // the request's head, being written
  SentCounters& sent_;  // the client connection's
};

// An HTTP/2 session (h2_session.cc) on a client connection: in cleartext
// after the connection preface (prior knowledge), or over TLS with ALPN h2.
// `buffer`: bytes read already (the preface among them).
void StartH2(std::shared_ptr<ProxyServer::Impl> server, PlainStream stream,
             beast::flat_buffer buffer, std::string ip, std::shared_ptr<void> slot);
void StartH2(std::shared_ptr<ProxyServer::Impl> server, TlsStream stream, beast::flat_buffer buffer,
             std::string ip, std::shared_ptr<void> slot);

}  // namespace proxy

}  // namespace mpim::edge
