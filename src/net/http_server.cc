#include "net/http_server.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <tuple>
#include <unordered_map>
#include <unordered_set>

#include "core/clock.h"
#include "core/logging.h"
#include "core/rate_limiter.h"
#include "core/trace.h"
#include "net/listen.h"
#include "net/websocket_upgrade.h"

namespace mpim::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

const core::Logger& Log() {
  static const core::Logger log("http");
  return log;
}

// The method as a metrics label: clients choose methods, so anything outside
// the standard set is "other" (bounded label cardinality).
std::string_view MethodLabel(http::verb verb) {
  switch (verb) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::post:
    case http::verb::put:
    case http::verb::patch:
    case http::verb::delete_:
    case http::verb::options:
      return http::to_string(verb);
    default:
      return "other";
  }
}

}  // namespace

class HttpServer::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(IoPool& pool, const Router& router, HttpServerOptions options,
       core::MetricsRegistry& metrics)
      : pool_(pool),
        router_(router),
        options_(std::move(options)),
        acceptor_(pool.At(0)),
        requests_(metrics.Counter("mpim_http_requests_total",
                                  "HTTP requests answered, by method, route and status.",
                                  {"method", "route", "code"})),
        duration_(metrics.Histogram("mpim_http_request_duration_seconds",
                                    "Time from a request's last byte to its response, by route.",
                                    {"route"})),
        open_(metrics.Gauge("mpim_http_connections_open", "Open HTTP connections.").With({})),
        pending_gauge_(metrics
                           .Gauge("mpim_http_requests_pending",
                                  "Connections whose request headers are still arriving.")
                           .With({})),
        refused_per_address_(RefusedCounter(metrics, "per_address")),
        refused_pending_(RefusedCounter(metrics, "pending_requests")) {
    request_rate_ = std::make_unique<core::KeyedRateLimiter<std::string>>(1.0, 1.0);
    SetRequestRate(options_.requests_per_sec_address, options_.requests_burst_address);
  }

  void SetRequestRate(double per_sec, double burst) {
    if (per_sec > 0) request_rate_->SetRate(per_sec, std::max(1.0, burst));
    rate_limited_.store(per_sec > 0, std::memory_order_relaxed);
  }

  core::Status Start() {
    auto port = Listen(acceptor_, options_.host, options_.port);
    if (!port.ok()) return port.status();
    port_ = *port;
    asio::co_spawn(acceptor_.get_executor(), AcceptLoop(shared_from_this()), asio::detached);
    return absl::OkStatus();
  }

  uint16_t port() const { return port_; }

  void StartDrain() {
    draining_.store(true);
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
    });
    std::lock_guard lock(mu_);
    for (const auto& conn : conns_) {
      // Idle connections close now; busy ones close after their response.
      asio::post(conn->executor, [conn] {
        if (auto ws = conn->ws.lock()) {
          ws->Drain(1012, "server restarting");
        } else if (conn->stream && !conn->busy) {
          conn->stream->socket().close();
        }
      });
    }
  }

  void CloseAll() {
    std::lock_guard lock(mu_);
    for (const auto& conn : conns_) {
      asio::post(conn->executor, [conn] {
        if (auto ws = conn->ws.lock()) {
          ws->Abort();
        } else if (conn->stream) {
          beast::error_code ec;
          conn->stream->socket().close(ec);
        }
      });
    }
  }

  bool WaitDrained(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return drained_cv_.wait_for(lock, timeout, [this] { return conns_.empty(); });
  }

  size_t open_connections() const {
    std::lock_guard lock(mu_);
    return conns_.size();
  }

 private:
  // What StartDrain needs to reach a connection. Touched only on the
  // connection's executor, except the pointer in conns_ (under mu_).
  struct Conn {
    asio::any_io_executor executor;
    beast::tcp_stream* stream = nullptr;  // null once the connection is done
    bool busy = false;                    // a request is being handled
    bool pending = false;                 // counted in pending_: headers not complete
    bool counted = false;                 // counted in per_address_
    std::string address;
    std::weak_ptr<WsConnection> ws;  // set once upgraded
  };

  static asio::awaitable<void> AcceptLoop(std::shared_ptr<Impl> self) {
    asio::steady_timer backoff(self->acceptor_.get_executor());
    for (;;) {
      tcp::socket socket(self->pool_.Next());  // lives on the next io thread
      auto [ec] = co_await self->acceptor_.async_accept(socket, kUseTuple);
      if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) co_return;
      if (ec) {
        // Out of descriptors or similar: log, back off briefly, go on.
        Log().Warn("accept failed", {{"error", ec.message()}});
        backoff.expires_after(std::chrono::milliseconds(50));
        co_await backoff.async_wait(kUseTuple);
        continue;
      }
      auto conn = self->Register(socket);
      if (!conn) {
        beast::error_code ignored;
        socket.close(ignored);
        continue;
      }
      auto executor = socket.get_executor();
      asio::co_spawn(executor, Session(self, std::move(socket), std::move(conn)), asio::detached);
    }
  }

  static core::Counter& RefusedCounter(core::MetricsRegistry& metrics, std::string_view reason) {
    return metrics
        .Counter("mpim_http_connections_refused_total",
                 "Connections closed at accept: over limits.connections_per_address "
                 "(per_address) or server.max_pending_requests (pending_requests).",
                 {"reason"})
        .With({reason});
  }

  // Adds a connection (pending until its first request's headers are in),
  // or returns null when it is over a limit.
  std::shared_ptr<Conn> Register(tcp::socket& socket) {
    beast::error_code ec;
    auto remote = socket.remote_endpoint(ec);
    auto conn = std::make_shared<Conn>();
    conn->executor = socket.get_executor();
    conn->address = ec ? std::string() : remote.address().to_string();
    if (options_.max_pending_requests != 0 &&
        pending_.load(std::memory_order_relaxed) >= options_.max_pending_requests) {
      refused_pending_.Inc();
      return nullptr;
    }
    std::lock_guard lock(mu_);
    if (!options_.trusted_proxies.Contains(conn->address)) {  // a proxy carries many clients
      uint32_t& count = per_address_[conn->address];
      if (options_.connections_per_address != 0 && count >= options_.connections_per_address) {
        if (count == 0) per_address_.erase(conn->address);
        refused_per_address_.Inc();
        return nullptr;
      }
      ++count;
      conn->counted = true;
    }
    conns_.insert(conn);
    open_.Inc();
    SetPending(*conn, true);
    return conn;
  }

  // Counts `conn` in pending_ or takes it out.
  void SetPending(Conn& conn, bool pending) {
    if (conn.pending == pending) return;
    conn.pending = pending;
    if (pending) {
      pending_.fetch_add(1, std::memory_order_relaxed);
      pending_gauge_.Inc();
    } else {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      pending_gauge_.Dec();
    }
  }

  // A 429 for a request from `address` over its rate, or nothing.
  std::optional<HttpResponse> RateLimit(const std::string& address) {
    if (!rate_limited_.load(std::memory_order_relaxed)) return std::nullopt;
    int64_t now_ms = core::SystemClock().SteadyMs();
    int64_t retry_ms = request_rate_->TryAcquire(address, now_ms);
    if (retry_ms == 0) return std::nullopt;
    return HttpResponse::Error(
        core::RateLimitedError("too many requests from this address", retry_ms));
  }

  void Unregister(const std::shared_ptr<Conn>& conn) {
    SetPending(*conn, false);
    std::lock_guard lock(mu_);
    if (auto it = per_address_.find(conn->address); conn->counted && it != per_address_.end()) {
      if (--it->second == 0) per_address_.erase(it);
    }
    conns_.erase(conn);
    open_.Dec();
    if (conns_.empty()) drained_cv_.notify_all();
  }

  static asio::awaitable<void> Session(std::shared_ptr<Impl> self, tcp::socket socket,
                                       std::shared_ptr<Conn> conn) {
    beast::error_code ec;
    socket.set_option(tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    conn->stream = &stream;
    bool upgraded = co_await self->ServeConnection(stream, conn);
    conn->stream = nullptr;
    if (upgraded) co_return;  // the WebSocket's guard unregisters
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    self->Unregister(conn);
  }

  // Hands the socket to a WebSocket connection; the connection stays
  // counted (per address, open, drain) until the WebSocket is gone.
  void Upgrade(beast::tcp_stream& stream, const std::shared_ptr<Conn>& conn,
               http::request<http::string_body> req, HttpRequest request) {
    std::shared_ptr<void> guard(
        nullptr, [self = shared_from_this(), conn](void*) { self->Unregister(conn); });
    conn->ws =
        internal::StartWebSocket(stream.release_socket(), std::move(req), std::move(request),
                                 options_.websocket, options_.on_websocket, std::move(guard));
  }

  // True when the connection was upgraded to a WebSocket.
  asio::awaitable<bool> ServeConnection(beast::tcp_stream& stream,
                                        const std::shared_ptr<Conn>& conn_ptr) {
    Conn& conn = *conn_ptr;
    beast::flat_buffer buffer;
    for (;;) {
      if (draining_.load()) co_return false;
      // Wait for the first byte of the next request under the idle timeout;
      // from then on the whole request must arrive within request_timeout.
      if (buffer.size() == 0) {
        stream.expires_after(options_.idle_timeout);
        auto [ec, n] = co_await stream.async_read_some(buffer.prepare(1024), kUseTuple);
        if (ec) co_return false;  // closed, idle timeout or drained
        buffer.commit(n);
      }
      SetPending(conn, true);
      conn.busy = true;
      stream.expires_after(options_.request_timeout);
      http::request_parser<http::string_body> parser;
      parser.header_limit(options_.max_header_bytes);
      parser.body_limit(options_.max_body_bytes);
      beast::error_code ec;
      std::tie(ec, std::ignore) =
          co_await http::async_read_header(stream, buffer, parser, kUseTuple);
      if (!ec) {
        SetPending(conn, false);  // headers in: the body is bounded by max_body_bytes
        if (!parser.is_done()) {
          std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, parser, kUseTuple);
        }
      }
      if (ec == http::error::body_limit) {
        co_await WriteAndClose(stream, HttpResponse::Error(core::PayloadTooLargeError(
                                           "request body exceeds " +
                                           std::to_string(options_.max_body_bytes) + " bytes")));
        co_return false;
      }
      if (ec == http::error::header_limit) {
        HttpResponse r = HttpResponse::Error(absl::InvalidArgumentError(
            "request headers exceed " + std::to_string(options_.max_header_bytes) + " bytes"));
        r.status = 431;
        co_await WriteAndClose(stream, std::move(r));
        co_return false;
      }
      if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
          ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
          ec == asio::error::eof) {
        co_return false;
      }
      if (ec) {
        co_await WriteAndClose(
            stream, HttpResponse::Error(absl::InvalidArgumentError("malformed HTTP request")));
        co_return false;
      }
      http::request<http::string_body> req = parser.release();
      const std::string client =
          options_.trusted_proxies.empty()
              ? conn.address
              : options_.trusted_proxies.ClientAddress(conn.address, req["X-Forwarded-For"]);
      if (std::optional<HttpResponse> limited = RateLimit(client)) {
        requests_.With({MethodLabel(req.method()), "rate_limited", "429"}).Inc();
        // An upgrade refused is the end of that connection; a plain request
        // may go on once the client has waited.
        bool keep_alive = req.keep_alive() && !IsWebSocketPath(req.target()) && !draining_.load();
        auto write_ec = co_await Write(stream, std::move(*limited), keep_alive);
        conn.busy = false;
        if (write_ec || !keep_alive) co_return false;
        continue;
      }
      if (IsWebSocketPath(req.target())) {
        if (beast::websocket::is_upgrade(req) && options_.on_websocket && buffer.size() == 0) {
          auto target = ParseTarget(std::string(req.target()));
          HttpRequest request = ToRequest(req, client);
          if (target.ok()) {
            request.path = std::move(target->path);
            request.query = std::move(target->query);
          }
          Upgrade(stream, conn_ptr, std::move(req), std::move(request));
          co_return true;
        }
        HttpResponse r = HttpResponse::Error(
            absl::InvalidArgumentError("this path takes WebSocket upgrades only"));
        r.status = 426;
        r.headers.emplace_back("Upgrade", "websocket");
        co_await WriteAndClose(stream, std::move(r));
        co_return false;
      }
      bool keep_alive = req.keep_alive();
      HttpResponse response = co_await Dispatch(std::move(req), client);
      keep_alive = keep_alive && !draining_.load();
      stream.expires_after(options_.request_timeout);
      auto write_ec = co_await Write(stream, std::move(response), keep_alive);
      conn.busy = false;
      if (write_ec || !keep_alive) co_return false;
    }
  }

  bool IsWebSocketPath(beast::string_view target) const {
    if (options_.websocket_path.empty()) return false;
    std::string_view t(target.data(), target.size());
    t = t.substr(0, t.find('?'));
    return t == options_.websocket_path;
  }

  // Method, target, headers (lower-cased names) and address; no body.
  static HttpRequest ToRequest(const http::request<http::string_body>& req,
                               const std::string& address) {
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.remote_address = address;
    for (const auto& field : req) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      request.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    return request;
  }

  asio::awaitable<HttpResponse> Dispatch(http::request<http::string_body> req,
                                         const std::string& address) {
    auto started = std::chrono::steady_clock::now();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.remote_address = address;
    std::string route = "unmatched";
    HttpResponse response;
    auto target = ParseTarget(request.target);
    if (!target.ok()) {
      response = HttpResponse::Error(target.status());
    } else {
      Router::Match match = router_.Find(request.method, target->segments);
      const HttpHandler* fallback = router_.fallback();
      if (match.kind == Router::Match::Kind::kNotFound && fallback &&
          req.method() == http::verb::get) {
        route = "static";
        request = ToRequest(req, address);
        request.path = std::move(target->path);
        request.query = std::move(target->query);
        response = co_await Call(*fallback, std::move(request));
      } else if (match.kind == Router::Match::Kind::kNotFound) {
        response = HttpResponse::Error(absl::NotFoundError("no route for " + target->path));
      } else if (match.kind == Router::Match::Kind::kMethodNotAllowed) {
        response = HttpResponse::Json(
            405, R"({"error":{"code":"invalid_argument","message":"method not allowed"}})");
        std::string allow;
        for (const auto& m : match.allowed) allow += (allow.empty() ? "" : ", ") + m;
        response.headers.emplace_back("Allow", allow);
      } else {
        route = match.pattern;
        // A trace starts here (or continues the client's traceparent).
        core::trace::Span span;
        if (core::trace::Enabled() && route.starts_with(options_.traced_prefix)) {
          auto header = req.find("traceparent");
          std::optional<core::trace::SpanContext> remote;
          if (header != req.end()) {
            remote = core::trace::SpanContext::Parse(
                std::string_view(header->value().data(), header->value().size()));
          }
          span = core::trace::Span::StartRoot(request.method + " " + route, remote);
          span.Set("http.request.method", request.method);
          span.Set("http.route", route);
        }
        request = ToRequest(req, address);
        request.path = std::move(target->path);
        request.query = std::move(target->query);
        request.params = std::move(match.params);
        request.route = match.pattern;
        request.body = std::move(req.body());
        response = co_await Call(*match.handler, std::move(request), span.context());
        if (span.recording()) {
          span.Set("http.response.status_code", response.status);
          if (response.status >= 500) span.SetError("HTTP " + std::to_string(response.status));
        }
      }
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    requests_.With({MethodLabel(req.method()), route, std::to_string(response.status)}).Inc();
    duration_.With({route}).Observe(seconds);
    co_return response;
  }

  // Runs a callback-style handler and resumes on this connection's executor
  // when it responds, from whatever thread that happens on.
  // `trace` (a request's span) is current while the handler runs on this
  // thread: what it calls synchronously (a service, a gRPC call) joins it.
  static asio::awaitable<HttpResponse> Call(const HttpHandler& handler, HttpRequest request,
                                            core::trace::SpanContext trace = {}) {
    return asio::async_initiate<decltype(asio::use_awaitable), void(HttpResponse)>(
        [&handler, trace](auto completion, HttpRequest req) {
          core::trace::Scope scope(trace);
          auto executor = asio::get_associated_executor(completion);
          HttpResponder responder(
              [completion = std::move(completion), executor](HttpResponse r) mutable {
                asio::post(executor, [completion = std::move(completion),
                                      r = std::move(r)]() mutable { completion(std::move(r)); });
              });
          handler(std::move(req), std::move(responder));
        },
        asio::use_awaitable, std::move(request));
  }

  static asio::awaitable<beast::error_code> Write(beast::tcp_stream& stream, HttpResponse response,
                                                  bool keep_alive) {
    http::response<http::string_body> res{static_cast<http::status>(response.status), 11};
    res.set(http::field::server, "mpim");
    if (!response.content_type.empty()) res.set(http::field::content_type, response.content_type);
    for (auto& [name, value] : response.headers) res.set(name, value);
    res.body() = std::move(response.body);
    res.keep_alive(keep_alive);
    res.prepare_payload();
    auto [ec, n] = co_await http::async_write(stream, res, kUseTuple);
    co_return ec;
  }

  static asio::awaitable<void> WriteAndClose(beast::tcp_stream& stream, HttpResponse response) {
    co_await Write(stream, std::move(response), /*keep_alive=*/false);
  }

  IoPool& pool_;
  const Router& router_;
  const HttpServerOptions options_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> draining_{false};

  core::CounterFamily& requests_;
  core::HistogramFamily& duration_;
  core::Gauge& open_;
  core::Gauge& pending_gauge_;
  core::Counter& refused_per_address_;
  core::Counter& refused_pending_;
  std::atomic<uint32_t> pending_{0};  // connections with pending == true
  std::unique_ptr<core::KeyedRateLimiter<std::string>> request_rate_;
  std::atomic<bool> rate_limited_{false};  // false: request_rate_ is not asked

  mutable std::mutex mu_;  // guards conns_ and per_address_
  std::condition_variable drained_cv_;
  std::unordered_set<std::shared_ptr<Conn>> conns_;
  std::unordered_map<std::string, uint32_t> per_address_;
};

HttpServer::HttpServer(IoPool& pool, const Router& router, HttpServerOptions options,
                       core::MetricsRegistry& metrics)
    : impl_(std::make_shared<Impl>(pool, router, std::move(options), metrics)) {}

HttpServer::~HttpServer() = default;

core::Status HttpServer::Start() { return impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::StartDrain() { impl_->StartDrain(); }
void HttpServer::SetRequestRate(double per_sec, double burst) {
  impl_->SetRequestRate(per_sec, burst);
}
void HttpServer::CloseAll() { impl_->CloseAll(); }
bool HttpServer::WaitDrained(std::chrono::milliseconds timeout) {
  return impl_->WaitDrained(timeout);
}
size_t HttpServer::open_connections() const { return impl_->open_connections(); }

}  // namespace mpim::net
