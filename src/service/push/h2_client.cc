#include "service/push/h2_client.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <boost/url/parse.hpp>
#include <chrono>
#include <deque>
#include <future>
#include <optional>
#include <unordered_map>

namespace mpim::service::push {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;
using ErrorCode = boost::system::error_code;

constexpr size_t kMaxResponseBody = size_t{64} << 10;
constexpr size_t kMaxResponseHeaders = 100;
constexpr size_t kWriteChunk = size_t{64} << 10;
constexpr size_t kReadChunk = size_t{16} << 10;
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 16 << 20;
constexpr char kShutDown[] = "client shut down";

struct Origin {
  bool tls = true;
  std::string host;  // IPv6 without brackets
  std::string port;
  std::string authority;    // host[:port] as written
  std::string path_prefix;  // "" or "/prefix", no trailing '/'
  bool host_is_ip = false;
};

absl::StatusOr<Origin> ParseOrigin(std::string_view url) {
  auto u = boost::urls::parse_absolute_uri(url);
  if (!u) return absl::InvalidArgumentError("url: not an absolute URL");
  Origin o;
  if (u->scheme_id() == boost::urls::scheme::https) {
    o.tls = true;
  } else if (u->scheme_id() == boost::urls::scheme::http) {
    o.tls = false;
  } else {
    return absl::InvalidArgumentError("url: the scheme must be https or http");
  }
  const auto type = u->host_type();
  if (type != boost::urls::host_type::name && type != boost::urls::host_type::ipv4 &&
      type != boost::urls::host_type::ipv6) {
    return absl::InvalidArgumentError("url: no host");
  }
  if (u->encoded_host_address().empty()) return absl::InvalidArgumentError("url: no host");
  if (u->has_userinfo() || u->has_query() || u->has_fragment()) {
    return absl::InvalidArgumentError("url: no user info, query or fragment allowed");
  }
  o.host = u->host_address();
  o.host_is_ip = type != boost::urls::host_type::name;
  o.port = u->has_port() ? std::string(u->port()) : (o.tls ? "443" : "80");
  if (o.port.empty() || (u->has_port() && u->port_number() == 0)) {
    return absl::InvalidArgumentError("url: bad port");
  }
  o.authority = std::string(u->encoded_host_and_port());
  o.path_prefix = std::string(u->encoded_path());
  while (!o.path_prefix.empty() && o.path_prefix.back() == '/') o.path_prefix.pop_back();
  return o;
}

std::string NgError(std::string_view what, int code) {
  return std::string(what) + ": " + nghttp2_strerror(code);
}

// Why a read or a write on an open connection failed.
std::string BrokenText(std::string_view op, ErrorCode ec) {
  if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
    return "connection closed by the server";
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return "connection reset by the server";
  }
  return std::string(op) + ": " + ec.message();
}

}  // namespace

std::string_view H2Response::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

class H2Client::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(H2ClientOptions options, Origin origin, asio::io_context& io,
       std::unique_ptr<asio::ssl::context> ssl)
      : options_(std::move(options)),
        origin_(std::move(origin)),
        strand_(asio::make_strand(io)),
        ssl_(std::move(ssl)),
        timeout_(std::chrono::milliseconds(options_.timeout_ms)),
        timeout_text_("timeout after " + std::to_string(options_.timeout_ms) + " ms") {}

  // Any thread. From within a `done` (on the strand) the call is queued at
  // once, so that a Shutdown running it answers it too.
  void Submit(H2Request request, H2Done done) {
    auto call = std::make_shared<Call>(std::move(request), std::move(done), strand_);
    if (strand_.running_in_this_thread()) {
      Enqueue(call);
      return;
    }
    asio::post(strand_, [self = shared_from_this(), call] {
      self->Enqueue(call);
      self->Settle();
    });
  }

  // On the strand, or anywhere once the io_context has stopped.
  void Shutdown() {
    closed_ = true;
    for (const ConnPtr& conn : std::vector<ConnPtr>(conns_)) CloseConn(conn, kShutDown);
    for (const CallPtr& call : std::exchange(waiting_, {})) Finish(call, kShutDown);
    conn_.reset();
    Settle();
  }

  Strand& strand() { return strand_; }

 private:
  struct Conn;
  struct Call {
    Call(H2Request r, H2Done d, const Strand& strand)
        : request(std::move(r)), done(std::move(d)), deadline(strand) {}
    H2Request request;
    H2Done done;
    Clock::time_point start = Clock::now();
    Clock::time_point sent_at;
    asio::steady_timer deadline;
    Conn* conn = nullptr;  // while a stream of it carries the call
    int32_t stream_id = 0;
    size_t body_offset = 0;
    bool requeued = false;  // refused unprocessed once and queued again
    bool finished = false;
    H2Response response;
  };
  using CallPtr = std::shared_ptr<Call>;

  enum class ConnState { kConnecting, kOpen, kClosed };

  struct Conn {
    Conn(Impl* owner, const Strand& strand, asio::ssl::context* ssl)
        : impl(owner), resolver(strand), connect_timer(strand) {
      if (ssl != nullptr) {
        tls.emplace(strand, *ssl);
      } else {
        plain.emplace(strand);
      }
    }
    ~Conn() {
      if (session != nullptr) nghttp2_session_del(session);
    }
    tcp::socket& Socket() { return tls ? tls->next_layer() : *plain; }
    template <typename Handler>
    void AsyncReadSome(Handler handler) {
      auto buffer = asio::buffer(in);
      if (tls) {
        tls->async_read_some(buffer, std::move(handler));
      } else {
        plain->async_read_some(buffer, std::move(handler));
      }
    }
    template <typename Handler>
    void AsyncWrite(Handler handler) {
      auto buffer = asio::buffer(out);
      if (tls) {
        asio::async_write(*tls, buffer, std::move(handler));
      } else {
        asio::async_write(*plain, buffer, std::move(handler));
      }
    }
    Call* Find(int32_t stream_id) {
      auto it = streams.find(stream_id);
      return it == streams.end() ? nullptr : it->second.get();
    }

    Impl* impl;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    std::optional<tcp::socket> plain;
    tcp::resolver resolver;
    asio::steady_timer connect_timer;
    nghttp2_session* session = nullptr;
    ConnState state = ConnState::kConnecting;
    bool accepting = true;  // new streams may start here (no GOAWAY yet)
    bool writing = false;
    std::unordered_map<int32_t, CallPtr> streams;
    std::string out;
    std::array<uint8_t, kReadChunk> in{};
    Clock::time_point last_read;
  };
  using ConnPtr = std::shared_ptr<Conn>;

  void Enqueue(const CallPtr& call) {
    if (closed_) {
      Finish(call, kShutDown);
      return;
    }
    call->deadline.expires_after(timeout_);
    call->deadline.async_wait(
        [self = shared_from_this(), weak = std::weak_ptr<Call>(call)](ErrorCode ec) {
          auto call = weak.lock();
          if (ec || !call) return;
          self->OnDeadline(call);
          self->Settle();
        });
    waiting_.push_back(call);
  }

  // Starts waiting calls on the current connection, opening one if needed;
  // then runs the `done`s that are ready (which may submit more).
  void Settle() {
    for (;;) {
      Pump();
      if (ready_.empty()) return;
      auto batch = std::exchange(ready_, {});
      for (auto& [done, response] : batch) done(std::move(response));
    }
  }

  void Pump() {
    if (closed_) return;
    while (!waiting_.empty()) {
      if (!conn_ || !conn_->accepting) {
        StartConn();
        return;
      }
      if (conn_->state != ConnState::kOpen || conn_->streams.size() >= StreamCap(*conn_)) break;
      CallPtr call = waiting_.front();
      waiting_.pop_front();
      if (!StartStream(*conn_, call)) {
        // Out of stream ids (or memory): this connection takes no more.
        conn_->accepting = false;
        waiting_.push_front(call);
      }
    }
    if (conn_) Flush(conn_);
  }

  size_t StreamCap(const Conn& conn) const {
    const uint32_t remote =
        nghttp2_session_get_remote_settings(conn.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
    return std::min<size_t>(remote, static_cast<size_t>(options_.max_concurrent_streams));
  }

  bool StartStream(Conn& conn, const CallPtr& call) {
    const H2Request& request = call->request;
    const std::string path = origin_.path_prefix + request.path;
    const std::string length = std::to_string(request.body.size());
    std::vector<nghttp2_nv> nva;
    nva.reserve(request.headers.size() + 5);
    auto add = [&nva](std::string_view name, std::string_view value) {
      nva.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                     const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                     name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    };
    add(":method", request.method);
    add(":scheme", origin_.tls ? "https" : "http");
    add(":authority", origin_.authority);
    add(":path", path);
    for (const auto& [name, value] : request.headers) add(name, value);
    if (!request.body.empty()) add("content-length", length);
    nghttp2_data_provider body{};
    body.read_callback = &Impl::ReadBody;
    const int32_t id = nghttp2_submit_request(conn.session, nullptr, nva.data(), nva.size(),
                                              request.body.empty() ? nullptr : &body, nullptr);
    if (id < 0) return false;
    call->conn = &conn;
    call->stream_id = id;
    call->body_offset = 0;
    conn.streams.emplace(id, call);
    return true;
  }

  void StartConn() {
    auto conn = std::make_shared<Conn>(this, strand_, ssl_.get());
    conns_.push_back(conn);
    conn_ = conn;
    conn->connect_timer.expires_after(timeout_);
    conn->connect_timer.async_wait([self = shared_from_this(), conn](ErrorCode ec) {
      if (ec || conn->state != ConnState::kConnecting) return;
      self->CloseConn(conn, "connect: " + self->timeout_text_);
      self->Settle();
    });
    conn->resolver.async_resolve(
        origin_.host, origin_.port,
        [self = shared_from_this(), conn](ErrorCode ec,
                                          const tcp::resolver::results_type& results) {
          if (conn->state != ConnState::kConnecting) return;
          if (ec) {
            self->CloseConn(conn, "resolve: " + ec.message());
            self->Settle();
            return;
          }
          asio::async_connect(
              conn->Socket(), results,
              [self, conn](ErrorCode ec, const tcp::endpoint&) { self->OnConnected(conn, ec); });
        });
  }

  void OnConnected(const ConnPtr& conn, ErrorCode ec) {
    if (conn->state != ConnState::kConnecting) return;
    if (ec) {
      CloseConn(conn, "connect: " + ec.message());
      Settle();
      return;
    }
    ErrorCode ignored;
    conn->Socket().set_option(tcp::no_delay(true), ignored);
    if (!conn->tls) {
      OnOpen(conn);
      Settle();
      return;
    }
    SSL* ssl = conn->tls->native_handle();
    if (origin_.host_is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), origin_.host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, origin_.host.c_str());
      SSL_set1_host(ssl, origin_.host.c_str());
    }
    conn->tls->async_handshake(asio::ssl::stream_base::client,
                               [self = shared_from_this(), conn](ErrorCode ec) {
                                 self->OnHandshake(conn, ec);
                                 self->Settle();
                               });
  }

  void OnHandshake(const ConnPtr& conn, ErrorCode ec) {
    if (conn->state != ConnState::kConnecting) return;
    SSL* ssl = conn->tls->native_handle();
    if (ec) {
      const long verify = SSL_get_verify_result(ssl);
      std::string error = verify != X509_V_OK ? std::string("tls: certificate verify failed: ") +
                                                    X509_verify_cert_error_string(verify)
                                              : "tls: " + ec.message();
      ERR_clear_error();
      CloseConn(conn, error);
      return;
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (std::string_view(reinterpret_cast<const char*>(alpn), alpn_len) != "h2") {
      CloseConn(conn, "tls: the server did not agree to HTTP/2 (ALPN h2)");
      return;
    }
    OnOpen(conn);
  }

  void OnOpen(const ConnPtr& conn) {
    conn->connect_timer.cancel();
    nghttp2_session_callbacks* callbacks = nullptr;
    if (nghttp2_session_callbacks_new(&callbacks) != 0) {
      CloseConn(conn, "http2: out of memory");
      return;
    }
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Impl::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Impl::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Impl::OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Impl::OnFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Impl::OnFrameSend);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(callbacks, &Impl::OnFrameNotSend);
    const int rv = nghttp2_session_client_new(&conn->session, callbacks, conn.get());
    nghttp2_session_callbacks_del(callbacks);
    if (rv != 0) {
      CloseConn(conn, NgError("http2", rv));
      return;
    }
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
    };
    nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    conn->state = ConnState::kOpen;
    conn->last_read = Clock::now();
    Read(conn);
    Flush(conn);
  }

  void Read(const ConnPtr& conn) {
    conn->AsyncReadSome([self = shared_from_this(), conn](ErrorCode ec, size_t n) {
      if (conn->state != ConnState::kOpen) return;
      if (ec) {
        self->CloseConn(conn, BrokenText("read", ec));
        self->Settle();
        return;
      }
      conn->last_read = Clock::now();
      const ssize_t rv = nghttp2_session_mem_recv(conn->session, conn->in.data(), n);
      if (rv < 0) {
        self->CloseConn(conn, NgError("http2", static_cast<int>(rv)));
      } else {
        self->Flush(conn);
        if (conn->state == ConnState::kOpen) self->Read(conn);
      }
      self->Settle();
    });
  }

  // `conn` by value here and in CloseConn: it may be conn_, which closing resets.
  void Flush(ConnPtr conn) {  // NOLINT(performance-unnecessary-value-param)
    if (conn->state != ConnState::kOpen || conn->writing) return;
    while (conn->out.size() < kWriteChunk) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(conn->session, &data);
      if (n < 0) {
        CloseConn(conn, NgError("http2", static_cast<int>(n)));
        return;
      }
      if (n == 0) break;
      conn->out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (conn->out.empty()) {
      if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session)) {
        CloseConn(conn, "connection closed by the server (GOAWAY)");
      } else if (!conn->accepting && conn->streams.empty()) {
        CloseConn(conn, "connection drained");
      }
      return;
    }
    conn->writing = true;
    conn->AsyncWrite([self = shared_from_this(), conn](ErrorCode ec, size_t) {
      conn->writing = false;
      if (conn->state != ConnState::kOpen) return;
      if (ec) {
        self->CloseConn(conn, BrokenText("write", ec));
      } else {
        conn->out.clear();
        self->Flush(conn);
      }
      self->Settle();
    });
  }

  // Answers the connection's streams with `error`, and the calls waiting
  // for it if it never opened.
  void CloseConn(ConnPtr conn,  // NOLINT(performance-unnecessary-value-param)
                 const std::string& error) {
    if (conn->state == ConnState::kClosed) return;
    const bool never_opened = conn->state == ConnState::kConnecting;
    conn->state = ConnState::kClosed;
    conn->connect_timer.cancel();
    conn->resolver.cancel();
    ErrorCode ignored;
    conn->Socket().close(ignored);
    for (auto& [id, call] : std::exchange(conn->streams, {})) {
      call->conn = nullptr;
      Finish(call, error);
    }
    std::erase(conns_, conn);
    if (conn_ == conn) {
      conn_.reset();
      if (never_opened) {
        for (const CallPtr& call : std::exchange(waiting_, {})) Finish(call, error);
      }
    }
  }

  void OnDeadline(const CallPtr& call) {
    if (call->finished) return;
    if (Conn* conn = call->conn) {
      conn->streams.erase(call->stream_id);
      call->conn = nullptr;
      auto it = std::find_if(conns_.begin(), conns_.end(),
                             [conn](const ConnPtr& c) { return c.get() == conn; });
      if (it != conns_.end()) {
        ConnPtr shared = *it;
        // A request not yet on the wire is dropped by ReadBody instead
        // (nghttp2 takes no RST_STREAM for a stream it has not opened).
        if (call->response.sent) {
          nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, call->stream_id,
                                    NGHTTP2_CANCEL);
        }
        if (call->response.sent && conn->last_read < call->sent_at) {
          // Not a byte since the request went out: the connection is dead.
          CloseConn(shared, timeout_text_ + " (connection silent, closed)");
        } else {
          Flush(shared);
        }
      }
    } else {
      std::erase(waiting_, call);
    }
    Finish(call, timeout_text_);
  }

  // Queues the answer (or `error`) for Settle to hand over.
  void Finish(const CallPtr& call, std::string error) {
    if (call->finished) return;
    call->finished = true;
    call->deadline.cancel();
    H2Response response = std::move(call->response);
    if (!error.empty()) {
      response.status = 0;
      response.error = std::move(error);
      response.headers.clear();
      response.body.clear();
    }
    ready_.emplace_back(std::move(call->done), std::move(response));
  }

  // nghttp2 callbacks; `user_data` is the Conn.
  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user_data) {
    Call* call = static_cast<Conn*>(user_data)->Find(stream_id);
    if (call == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // timed out: reset
    const std::string& body = call->request.body;
    const size_t n = std::min(length, body.size() - call->body_offset);
    std::copy_n(body.data() + call->body_offset, n, buf);
    call->body_offset += n;
    if (call->body_offset == body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Call* call = static_cast<Conn*>(user_data)->Find(frame->hd.stream_id);
    if (call == nullptr) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), name_len);
    const std::string_view v(reinterpret_cast<const char*>(value), value_len);
    H2Response& response = call->response;
    if (n == ":status") {
      int status = 0;
      for (char c : v) status = c >= '0' && c <= '9' && status < 1000 ? status * 10 + (c - '0') : 0;
      response.status = status;
    } else if (!n.starts_with(':') && response.headers.size() < kMaxResponseHeaders) {
      response.headers.emplace_back(n, v);
    }
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user_data) {
    Call* call = static_cast<Conn*>(user_data)->Find(stream_id);
    if (call == nullptr) return 0;
    std::string& body = call->response.body;
    body.append(reinterpret_cast<const char*>(data),
                std::min(len, kMaxResponseBody - std::min(body.size(), kMaxResponseBody)));
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    auto* conn = static_cast<Conn*>(user_data);
    auto it = conn->streams.find(stream_id);
    if (it == conn->streams.end()) return 0;
    CallPtr call = std::move(it->second);
    conn->streams.erase(it);
    call->conn = nullptr;
    Impl& impl = *conn->impl;
    if (error_code == NGHTTP2_NO_ERROR && call->response.status != 0) {
      impl.Finish(call, "");
    } else if (error_code == NGHTTP2_REFUSED_STREAM && !call->requeued) {
      impl.Requeue(call);
    } else if (error_code == NGHTTP2_NO_ERROR) {
      impl.Finish(call, "stream closed without an answer");
    } else {
      impl.Finish(call, std::string("stream reset: ") + nghttp2_http2_strerror(error_code));
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_GOAWAY) return 0;
    auto* conn = static_cast<Conn*>(user_data);
    conn->accepting = false;
    if (conn->impl->conn_.get() == conn) conn->impl->conn_.reset();
    return 0;
  }

  static int OnFrameSend(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    if (Call* call = static_cast<Conn*>(user_data)->Find(frame->hd.stream_id)) {
      call->response.sent = true;
      call->sent_at = Clock::now();
    }
    return 0;
  }

  static int OnFrameNotSend(nghttp2_session*, const nghttp2_frame* frame, int error,
                            void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    auto* conn = static_cast<Conn*>(user_data);
    auto it = conn->streams.find(frame->hd.stream_id);
    if (it == conn->streams.end()) return 0;
    CallPtr call = std::move(it->second);
    conn->streams.erase(it);
    call->conn = nullptr;
    if (!call->requeued) {
      conn->impl->Requeue(call);
    } else {
      conn->impl->Finish(call, NgError("request not sent", error));
    }
    return 0;
  }

  // A request the server did not process goes first on the next connection.
  void Requeue(const CallPtr& call) {
    call->requeued = true;
    call->response = {};
    waiting_.push_front(call);
  }

  const H2ClientOptions options_;
  const Origin origin_;
  Strand strand_;
  const std::unique_ptr<asio::ssl::context> ssl_;  // null for http://
  const std::chrono::milliseconds timeout_;
  const std::string timeout_text_;

  // All below on the strand.
  bool closed_ = false;
  ConnPtr conn_;                 // where new streams start; null: none yet
  std::vector<ConnPtr> conns_;   // every connection not closed (conn_ and draining ones)
  std::deque<CallPtr> waiting_;  // for a connection or a free stream
  std::vector<std::pair<H2Done, H2Response>> ready_;
};

absl::StatusOr<std::unique_ptr<H2Client>> H2Client::Make(H2ClientOptions options,
                                                         asio::io_context& io) {
  auto origin = ParseOrigin(options.url);
  if (!origin.ok()) return origin.status();
  if (options.timeout_ms <= 0) return absl::InvalidArgumentError("timeout_ms must be positive");
  if (options.max_concurrent_streams < 1) {
    return absl::InvalidArgumentError("max_concurrent_streams must be at least 1");
  }
  std::unique_ptr<asio::ssl::context> ssl;
  if (origin->tls) {
    try {
      ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      SSL_CTX_set_min_proto_version(ssl->native_handle(), TLS1_2_VERSION);
      ssl->set_verify_mode(asio::ssl::verify_peer);
      if (options.tls_ca_file.empty()) {
        ssl->set_default_verify_paths();
      } else {
        ssl->load_verify_file(options.tls_ca_file);
      }
      static constexpr unsigned char kAlpn[] = {2, 'h', '2'};
      if (SSL_CTX_set_alpn_protos(ssl->native_handle(), kAlpn, sizeof kAlpn) != 0) {
        return absl::InternalError("tls: cannot set ALPN");
      }
    } catch (const boost::system::system_error& e) {
      ERR_clear_error();
      return absl::InvalidArgumentError((options.tls_ca_file.empty()
                                             ? std::string("tls: ")
                                             : "tls_ca_file " + options.tls_ca_file + ": ") +
                                        e.code().message());
    }
  }
  auto impl = std::make_shared<Impl>(std::move(options), *std::move(origin), io, std::move(ssl));
  return std::unique_ptr<H2Client>(new H2Client(std::move(impl), io));
}

H2Client::H2Client(std::shared_ptr<Impl> impl, asio::io_context& io)
    : impl_(std::move(impl)), io_(io) {}

H2Client::~H2Client() {
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  asio::post(impl_->strand(), [impl = impl_, finished] {
    impl->Shutdown();
    finished->set_value();
  });
  // An io_context that stopped runs nothing more: shut down here.
  while (future.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    if (io_.stopped()) {
      impl_->Shutdown();
      return;
    }
  }
}

void H2Client::Submit(H2Request request, H2Done done) {
  impl_->Submit(std::move(request), std::move(done));
}

}  // namespace mpim::service::push
