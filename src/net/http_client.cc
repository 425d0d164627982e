#include "net/http_client.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace mpim::net {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Strand = asio::strand<asio::io_context::executor_type>;
using ErrorCode = boost::system::error_code;
using Clock = std::chrono::steady_clock;

// "Connection refused" -> "connection refused", as the rest of a message.
std::string Describe(const ErrorCode& ec) {
  std::string text = ec.message();
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return text;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool IsIpAddress(const std::string& host) {
  ErrorCode ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

struct Call;

// One connection to an origin. Owned by its origin's list while open; the
// completion handlers hold it too, and return at once once it is closed.
struct Conn {
  Conn(const Strand& strand, asio::ssl::context* ssl, std::string origin_key, const HttpUrl& url)
      : origin(std::move(origin_key)),
        host(url.host),
        port(url.port),
        resolver(strand),
        idle_timer(strand) {
    if (url.tls) {
      tls.emplace(strand, *ssl);
      if (!IsIpAddress(host)) SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());
      tls->set_verify_mode(asio::ssl::verify_peer);
      tls->set_verify_callback(asio::ssl::host_name_verification(host));
    } else {
      plain.emplace(strand);
    }
  }

  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
  std::string where() const { return host + ":" + std::to_string(port); }

  template <typename F>
  void WithStream(F&& f) {
    if (tls) {
      f(*tls);
    } else {
      f(*plain);
    }
  }

  const std::string origin;
  const std::string host;
  const uint16_t port;
  tcp::resolver resolver;
  std::optional<tcp::socket> plain;
  std::optional<asio::ssl::stream<tcp::socket>> tls;
  asio::steady_timer idle_timer;
  boost::beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  std::shared_ptr<Call> call;  // being served (connecting, writing, reading); null when idle
  bool closed = false;
  bool reused = false;      // has answered a request before the current one
  uint64_t idle_epoch = 0;  // which idle spell the idle timer belongs to
  Clock::time_point idle_since;
};

// One request, from Request() to its callback.
struct Call {
  HttpUrl url;
  std::string origin;
  http::request<http::string_body> request;
  int64_t timeout_ms = 0;
  HttpClientCallback done;
  std::optional<asio::steady_timer> deadline;
  std::shared_ptr<Conn> conn;  // serving it, if any
  core::Status error;          // answered at once (a bad URL)
  bool finished = false;
  bool retried = false;
};

}  // namespace

std::string_view HttpClientResponse::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

core::StatusOr<HttpUrl> ParseHttpUrl(std::string_view text) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return absl::InvalidArgumentError("not an absolute URL");
  const auto& uri = *parsed;
  HttpUrl url;
  std::string scheme = Lower(uri.scheme());
  if (scheme == "https") {
    url.tls = true;
  } else if (scheme != "http") {
    return absl::InvalidArgumentError("URL scheme must be http or https, not " + scheme);
  }
  url.host = uri.host_address();
  if (url.host.empty()) return absl::InvalidArgumentError("URL has no host");
  url.port = url.tls ? 443 : 80;
  if (uri.has_port()) {
    if (uri.port_number() == 0) return absl::InvalidArgumentError("URL port out of range");
    url.port = uri.port_number();
  }
  url.target = uri.encoded_path();
  if (url.target.empty()) url.target = "/";
  if (uri.has_query()) url.target += "?" + std::string(uri.encoded_query());
  return url;
}

int64_t RetryAfterMs(std::string_view value) {
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ') value.remove_suffix(1);
  if (value.empty() || value.size() > 9) return 0;
  int64_t seconds = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return 0;
    seconds = seconds * 10 + (c - '0');
  }
  return seconds * 1000;
}

class HttpClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, HttpClientOptions options, std::unique_ptr<asio::ssl::context> ssl)
      : io_(io),
        strand_(asio::make_strand(io)),
        options_(std::move(options)),
        ssl_(std::move(ssl)) {}

  // Any thread. Once the client is shut down, answers at once, here.
  void Submit(std::shared_ptr<Call> call) {
    {
      std::lock_guard lock(submit_mu_);
      if (!closed_) {
        used_ = true;
        asio::post(strand_,
                   [self = shared_from_this(), call = std::move(call)] { self->Start(call); });
        return;
      }
    }
    Finish(call, absl::UnavailableError("client shut down"));
  }

  // Any thread but the io thread inside a callback; see the header. Every
  // Start posted before it runs before ShutdownNow (one strand, in order),
  // and every Submit after it answers at once: no callback comes later.
  void Shutdown() {
    bool now = false;
    auto finished = std::make_shared<std::promise<void>>();
    std::future<void> wait = finished->get_future();
    {
      std::lock_guard lock(submit_mu_);
      if (closed_) return;
      closed_ = true;
      now = strand_.running_in_this_thread() || !used_ || io_.stopped();
      if (!now) {
        asio::post(strand_, [self = shared_from_this(), finished] {
          self->ShutdownNow();
          finished->set_value();
        });
      }
    }
    if (now) return ShutdownNow();
    // A loop that stops meanwhile never runs the handler: then no thread
    // runs this client's handlers either, and it is safe to close here.
    while (wait.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (io_.stopped()) return ShutdownNow();
    }
  }

  int64_t connections_opened() const { return opened_.load(); }

 private:
  struct Origin {
    std::vector<std::shared_ptr<Conn>> conns;  // open or opening
    std::deque<std::shared_ptr<Call>> waiting;
  };

  void Start(const std::shared_ptr<Call>& call) {
    if (!call->error.ok()) return Finish(call, call->error);
    if (shut_down_) return Finish(call, absl::UnavailableError("client shut down"));
    call->deadline.emplace(strand_);
    call->deadline->expires_after(std::chrono::milliseconds(call->timeout_ms));
    call->deadline->async_wait([self = shared_from_this(), call](const ErrorCode& ec) {
      if (!ec && !call->finished) self->OnTimeout(call);
    });
    Origin& origin = origins_[call->origin];
    if (!origin.waiting.empty() || !TryServe(origin, call)) origin.waiting.push_back(call);
  }

  // Gives `call` an idle connection or a new one; false when the origin has
  // no connection to spare.
  bool TryServe(Origin& origin, const std::shared_ptr<Call>& call) {
    for (;;) {
      std::shared_ptr<Conn> idle;
      for (const auto& conn : origin.conns) {
        if (conn->call == nullptr && (idle == nullptr || conn->idle_since > idle->idle_since)) {
          idle = conn;
        }
      }
      if (idle == nullptr) break;
      if (!StillOpen(*idle)) {
        Discard(origin, idle);
        continue;
      }
      idle->reused = true;
      idle->idle_timer.cancel();
      Attach(idle, call);
      Write(idle);
      return true;
    }
    if (static_cast<int>(origin.conns.size()) >= options_.max_connections_per_origin) return false;
    Open(origin, call);
    return true;
  }

  // Serves waiting calls while the origin has connections to spare.
  void Pump(Origin& origin) {
    while (!origin.waiting.empty() && TryServe(origin, origin.waiting.front())) {
      origin.waiting.pop_front();
    }
  }

  // An idle connection the server has closed (or sent unasked bytes on,
  // which for plain HTTP means it is out of step) reads as end of stream or
  // data; a live one has nothing to read. TLS may carry post-handshake
  // messages, so there only end of stream counts.
  static bool StillOpen(Conn& conn) {
    char byte = 0;
    ssize_t n = ::recv(conn.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    return conn.tls.has_value();
  }

  static void Attach(const std::shared_ptr<Conn>& conn, const std::shared_ptr<Call>& call) {
    conn->call = call;
    call->conn = conn;
  }

  void Open(Origin& origin, const std::shared_ptr<Call>& call) {
    std::shared_ptr<Conn> conn;
    try {
      conn = std::make_shared<Conn>(strand_, ssl_.get(), call->origin, call->url);
    } catch (const std::exception& e) {
      return Finish(call, absl::UnavailableError(std::string("connection setup: ") + e.what()));
    }
    ++opened_;
    origin.conns.push_back(conn);
    Attach(conn, call);
    conn->resolver.async_resolve(
        conn->host, std::to_string(conn->port),
        [self = shared_from_this(), conn](const ErrorCode& ec, tcp::resolver::results_type found) {
          if (conn->closed) return;
          if (ec) return self->Broken(conn, "resolve " + conn->host + ": " + Describe(ec), false);
          self->Connect(conn, std::move(found));
        });
  }

  void Connect(const std::shared_ptr<Conn>& conn, tcp::resolver::results_type found) {
    asio::async_connect(
        conn->socket(), found, [self = shared_from_this(), conn](const ErrorCode& ec, auto&&) {
          if (conn->closed) return;
          if (ec)
            return self->Broken(conn, "connect " + conn->where() + ": " + Describe(ec), false);
          ErrorCode ignored;
          conn->socket().set_option(tcp::no_delay(true), ignored);
          if (!conn->tls) return self->Write(conn);
          conn->tls->async_handshake(
              asio::ssl::stream_base::client, [self, conn](const ErrorCode& ec) {
                if (conn->closed) return;
                if (ec) {
                  return self->Broken(conn, "tls handshake " + conn->where() + ": " + Describe(ec),
                                      false);
                }
                self->Write(conn);
              });
        });
  }

  void Write(const std::shared_ptr<Conn>& conn) {
    std::shared_ptr<Call> call = conn->call;
    conn->buffer.clear();
    conn->parser.emplace();
    conn->parser->body_limit(options_.max_response_body_bytes);
    conn->parser->header_limit(static_cast<uint32_t>(options_.max_response_header_bytes));
    if (call->request.method() == http::verb::head) conn->parser->skip(true);
    conn->WithStream([&](auto& stream) {
      http::async_write(stream, call->request,
                        [self = shared_from_this(), conn, call](const ErrorCode& ec, size_t) {
                          if (conn->closed) return;
                          if (ec) return self->Broken(conn, "write: " + Describe(ec), true);
                          self->Read(conn);
                        });
    });
  }

  void Read(const std::shared_ptr<Conn>& conn) {
    conn->WithStream([&](auto& stream) {
      http::async_read(
          stream, conn->buffer, *conn->parser,
          [self = shared_from_this(), conn, call = conn->call](const ErrorCode& ec, size_t) {
            if (conn->closed) return;
            if (!ec) return self->OnResponse(conn);
            if (ec == http::error::body_limit || ec == http::error::header_limit) {
              bool body = ec == http::error::body_limit;
              size_t limit = body ? self->options_.max_response_body_bytes
                                  : self->options_.max_response_header_bytes;
              return self->Broken(conn,
                                  std::string("response ") + (body ? "body" : "header") + " over " +
                                      std::to_string(limit) + " bytes",
                                  false);
            }
            bool nothing = !conn->parser->got_some() && conn->buffer.size() == 0;
            if (nothing) return self->Broken(conn, "connection closed before the response", true);
            self->Broken(conn, "read: " + Describe(ec), false);
          });
    });
  }

  void OnResponse(const std::shared_ptr<Conn>& conn) {
    std::shared_ptr<Call> call = std::move(conn->call);
    call->conn.reset();
    auto& message = conn->parser->get();
    HttpClientResponse response;
    response.status = static_cast<int>(message.result_int());
    for (const auto& field : message) {
      response.headers.emplace_back(Lower(field.name_string()), std::string(field.value()));
    }
    response.body = std::move(message.body());
    bool keep = message.keep_alive() && conn->buffer.size() == 0 && !shut_down_;
    conn->parser.reset();
    Origin& origin = origins_[conn->origin];
    if (keep) {
      Idle(conn);
    } else {
      Discard(origin, conn);
    }
    Pump(origin);
    Finish(call, std::move(response));
  }

  void Idle(const std::shared_ptr<Conn>& conn) {
    conn->idle_since = Clock::now();
    uint64_t epoch = ++conn->idle_epoch;
    conn->idle_timer.expires_after(std::chrono::milliseconds(options_.idle_timeout_ms));
    conn->idle_timer.async_wait([self = shared_from_this(), conn, epoch](const ErrorCode& ec) {
      if (ec || conn->closed || conn->call != nullptr || conn->idle_epoch != epoch) return;
      Origin& origin = self->origins_[conn->origin];
      self->Discard(origin, conn);
      self->Pump(origin);
    });
  }

  // The connection failed while serving its call: the call is sent again on
  // a fresh connection if `unanswered` (nothing of the answer arrived) on a
  // reused connection, once; otherwise it fails with `message`.
  void Broken(const std::shared_ptr<Conn>& conn, const std::string& message, bool unanswered) {
    std::shared_ptr<Call> call = conn->call;
    Origin& origin = origins_[conn->origin];
    bool again = unanswered && conn->reused && !call->retried;
    Discard(origin, conn);
    if (again) {
      call->retried = true;
      Open(origin, call);
      return;
    }
    Pump(origin);
    Finish(call, absl::UnavailableError(message));
  }

  void OnTimeout(const std::shared_ptr<Call>& call) {
    Origin& origin = origins_[call->origin];
    if (call->conn != nullptr) {
      Discard(origin, call->conn);
      Pump(origin);
    } else {
      std::erase(origin.waiting, call);
    }
    Finish(call,
           absl::UnavailableError("timeout after " + std::to_string(call->timeout_ms) + " ms"));
  }

  // Closes `conn` and forgets it; its call (if any) is left to the caller.
  static void Discard(Origin& origin, std::shared_ptr<Conn> conn) {  // a copy: it may be call->conn
    conn->closed = true;
    conn->resolver.cancel();
    conn->idle_timer.cancel();
    ErrorCode ignored;
    conn->socket().close(ignored);
    if (conn->call != nullptr) conn->call->conn.reset();
    conn->call.reset();
    std::erase(origin.conns, conn);
  }

  static void Finish(const std::shared_ptr<Call>& call, core::StatusOr<HttpClientResponse> result) {
    if (call->finished) return;
    call->finished = true;
    if (call->deadline) call->deadline->cancel();
    call->conn.reset();
    HttpClientCallback done = std::move(call->done);
    done(std::move(result));
  }

  void ShutdownNow() {
    shut_down_ = true;
    std::vector<std::shared_ptr<Call>> calls;
    for (auto& [key, origin] : origins_) {
      for (auto& call : origin.waiting) calls.push_back(call);
      while (!origin.conns.empty()) {
        std::shared_ptr<Conn> conn = origin.conns.back();
        if (conn->call != nullptr) calls.push_back(conn->call);
        Discard(origin, conn);
      }
    }
    origins_.clear();
    for (auto& call : calls) Finish(call, absl::UnavailableError("client shut down"));
  }

  asio::io_context& io_;
  Strand strand_;
  const HttpClientOptions options_;
  const std::unique_ptr<asio::ssl::context> ssl_;
  std::atomic<int64_t> opened_{0};
  std::mutex submit_mu_;  // orders Submit against Shutdown
  bool used_ = false;     // a request was ever posted; guarded by submit_mu_
  bool closed_ = false;   // Shutdown began; guarded by submit_mu_
  // On the strand only:
  std::map<std::string, Origin> origins_;  // by "scheme://host:port"
  bool shut_down_ = false;
};

core::StatusOr<std::unique_ptr<HttpClient>> HttpClient::Make(asio::io_context& io,
                                                             HttpClientOptions options) {
  if (options.max_connections_per_origin < 1 || options.max_response_body_bytes < 1 ||
      options.max_response_header_bytes < 256 || options.idle_timeout_ms < 1) {
    return absl::InvalidArgumentError("http client limits out of range");
  }
  std::unique_ptr<asio::ssl::context> ssl;
  try {
    ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(std::string("tls context: ") + e.what());
  }
  SSL_CTX_set_min_proto_version(ssl->native_handle(), TLS1_2_VERSION);
  ErrorCode ec;
  if (options.tls_ca_file.empty()) {
    ssl->set_default_verify_paths(ec);
  } else {
    ssl->load_verify_file(options.tls_ca_file, ec);
  }
  if (ec) {
    return absl::InvalidArgumentError(
        "tls_ca_file " + (options.tls_ca_file.empty() ? "(system)" : options.tls_ca_file) + ": " +
        Describe(ec));
  }
  ssl->set_verify_mode(asio::ssl::verify_peer);
  return std::unique_ptr<HttpClient>(
      new HttpClient(std::make_shared<Impl>(io, std::move(options), std::move(ssl))));
}

HttpClient::HttpClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpClient::~HttpClient() { Shutdown(); }

void HttpClient::Shutdown() { impl_->Shutdown(); }

int64_t HttpClient::connections_opened() const { return impl_->connections_opened(); }

void HttpClient::Request(std::string method, std::string_view url, Headers headers,
                         std::string body, int64_t timeout_ms, HttpClientCallback done) {
  auto call = std::make_shared<Call>();
  call->done = std::move(done);
  auto parsed = ParseHttpUrl(url);
  if (!parsed.ok()) {
    call->error = parsed.status();
    return impl_->Submit(std::move(call));
  }
  call->url = std::move(*parsed);
  const HttpUrl& where = call->url;
  call->origin =
      (where.tls ? "https://" : "http://") + where.host + ":" + std::to_string(where.port);
  call->timeout_ms = std::max<int64_t>(timeout_ms, 1);
  auto& request = call->request;
  http::verb verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    request.method_string(method);
  } else {
    request.method(verb);
  }
  request.target(where.target);
  request.version(11);
  bool has_host = false;
  bool has_agent = false;
  for (auto& [name, value] : headers) {
    std::string lower = Lower(name);
    has_host = has_host || lower == "host";
    has_agent = has_agent || lower == "user-agent";
    request.insert(name, value);
  }
  if (!has_host) {
    std::string host =
        where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host;
    if (where.port != (where.tls ? 443 : 80)) host += ":" + std::to_string(where.port);
    request.set(http::field::host, host);
  }
  if (!has_agent) request.set(http::field::user_agent, "mpim");
  request.body() = std::move(body);
  request.prepare_payload();
  impl_->Submit(std::move(call));
}

}  // namespace mpim::net
