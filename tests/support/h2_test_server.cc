#include "support/h2_test_server.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "support/temp_dir.h"

namespace mpim::testing {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using Action = H2TestAnswer::Action;

constexpr size_t kWriteChunk = size_t{64} << 10;
constexpr uint32_t kMaxStreams = 10000;
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 16 << 20;

std::string OpenSslError(std::string_view what) {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  char text[256] = {};
  if (code != 0) ERR_error_string_n(code, text, sizeof text);
  return std::string(what) + ": " + (code != 0 ? text : "failed");
}

struct KeyAndCertificate {
  ~KeyAndCertificate() {
    EVP_PKEY_free(key);
    X509_free(cert);
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

// A P-256 key and a self-signed certificate for 127.0.0.1 and localhost
// (CA:TRUE, so that the client can trust it as its own anchor).
std::string MakeCertificate(KeyAndCertificate& out) {
  out.key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (out.key == nullptr) return OpenSslError("key");
  X509* x = out.cert = X509_new();
  if (x == nullptr) return OpenSslError("certificate");
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), static_cast<long>(time(nullptr)));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 7L * 86400);
  X509_set_pubkey(x, out.key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("mpim h2 test server"), -1, -1,
                             0);
  X509_set_issuer_name(x, name);
  const std::pair<int, const char*> extensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
      {NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost"},
  };
  for (const auto& [nid, value] : extensions) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (ext == nullptr) return OpenSslError("certificate extension");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  if (X509_sign(x, out.key, EVP_sha256()) == 0) return OpenSslError("sign");
  return "";
}

std::string PemOf(X509* cert) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(bio, cert);
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

int SelectH2(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
             unsigned int in_len, void*) {
  for (unsigned i = 0; i < in_len;) {
    const unsigned len = in[i];
    if (i + 1 + len > in_len) break;
    if (len == 2 && in[i + 1] == 'h' && in[i + 2] == '2') {
      *out = in + i + 1;
      *out_len = 2;
      return SSL_TLSEXT_ERR_OK;
    }
    i += 1 + len;
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

}  // namespace

std::string_view H2TestRequest::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

class H2TestServer::Impl {
 public:
  explicit Impl(Mode mode) : mode_(mode), acceptor_(io_), work_(io_.get_executor()) {}

  // Returns what failed, "" once listening.
  std::string Start(uint16_t* port, std::string* ca_file) {
    if (mode_ == Mode::kTls) {
      if (std::string error = MakeTls(ca_file); !error.empty()) return error;
    }
    ErrorCode ec;
    const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(at.protocol(), ec);
    if (!ec) acceptor_.bind(at, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return "listen: " + ec.message();
    *port = acceptor_.local_endpoint().port();
    Accept();
    thread_ = std::thread([this] { io_.run(); });
    return "";
  }

  // Closes everything and lets the thread run out of work.
  void Stop() {
    if (!thread_.joinable()) return;
    asio::post(io_, [this] {
      ErrorCode ignored;
      acceptor_.close(ignored);
      for (auto& [id, conn] : std::unordered_map(conns_)) Close(conn);
      held_.clear();
    });
    work_.reset();
    thread_.join();
  }

  void SetHandler(Handler handler) {
    std::lock_guard lock(mu_);
    handler_ = std::move(handler);
  }
  std::vector<H2TestRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t request_count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  size_t held_count() const {
    std::lock_guard lock(mu_);
    return held_count_;
  }
  int64_t connections_accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  int64_t connections_open() const {
    std::lock_guard lock(mu_);
    return open_;
  }
  int max_open_streams() const {
    std::lock_guard lock(mu_);
    return max_open_streams_;
  }
  template <typename Predicate>
  bool WaitFor(std::chrono::milliseconds timeout, Predicate done) const {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, timeout, done);
  }
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) const {
    return WaitFor(timeout, [&] { return requests_.size() >= n; });
  }
  bool WaitForHeld(size_t n, std::chrono::milliseconds timeout) const {
    return WaitFor(timeout, [&] { return held_count_ >= n; });
  }
  bool WaitForConnectionsOpen(int64_t n, std::chrono::milliseconds timeout) const {
    return WaitFor(timeout, [&] { return open_ == n; });
  }

  void ReleaseHeld() {
    asio::post(io_, [this] {
      for (auto& held : std::exchange(held_, {})) {
        auto conn = held.conn.lock();
        if (conn && !conn->closed && conn->streams.contains(held.stream_id)) {
          Respond(*conn, held.stream_id, held.answer);
          Flush(conn);
        }
      }
      Changed([&] { held_count_ = 0; });
    });
  }

  void CloseConnections() {
    asio::post(io_, [this] {
      for (auto& [id, conn] : std::unordered_map(conns_)) Close(conn);
    });
  }

  void GoAway() {
    asio::post(io_, [this] {
      for (auto& [id, conn] : std::unordered_map(conns_)) {
        nghttp2_submit_goaway(conn->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(conn->session),
                              NGHTTP2_NO_ERROR, nullptr, 0);
        Flush(conn);
      }
    });
  }

 private:
  struct Stream {
    H2TestRequest request;
    std::string response_body;
    size_t offset = 0;
  };
  struct Conn {
    Conn(Impl* owner, int64_t conn_id, tcp::socket socket, asio::ssl::context* ssl)
        : impl(owner), id(conn_id) {
      if (ssl != nullptr) {
        tls.emplace(std::move(socket), *ssl);
      } else {
        plain.emplace(std::move(socket));
      }
    }
    ~Conn() {
      if (session != nullptr) nghttp2_session_del(session);
    }
    tcp::socket& Socket() { return tls ? tls->next_layer() : *plain; }

    Impl* impl;
    int64_t id;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    std::optional<tcp::socket> plain;
    nghttp2_session* session = nullptr;
    bool closed = false;
    bool writing = false;
    bool close_now = false;  // a handler asked for it
    std::unordered_map<int32_t, Stream> streams;
    std::string out;
    std::array<uint8_t, size_t{16} << 10> in{};
  };
  using ConnPtr = std::shared_ptr<Conn>;
  struct Held {
    std::weak_ptr<Conn> conn;
    int32_t stream_id;
    H2TestAnswer answer;
  };

  template <typename Change>
  void Changed(Change change) {
    {
      std::lock_guard lock(mu_);
      change();
    }
    changed_.notify_all();
  }

  std::string MakeTls(std::string* ca_file) {
    KeyAndCertificate kc;
    if (std::string error = MakeCertificate(kc); !error.empty()) return error;
    if (dir_.path().empty()) return "no temp dir";
    *ca_file = dir_.File("ca.pem");
    std::ofstream(*ca_file) << PemOf(kc.cert);
    ssl_.emplace(asio::ssl::context::tls_server);
    SSL_CTX* ctx = ssl_->native_handle();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate(ctx, kc.cert) != 1 || SSL_CTX_use_PrivateKey(ctx, kc.key) != 1) {
      return OpenSslError("tls context");
    }
    SSL_CTX_set_alpn_select_cb(ctx, &SelectH2, nullptr);
    return "";
  }

  void Accept() {
    acceptor_.async_accept([this](ErrorCode ec, tcp::socket socket) {
      if (ec) {
        if (acceptor_.is_open()) Accept();
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);
      int64_t id = 0;
      Changed([&] {
        id = ++accepted_;
        ++open_;
      });
      auto conn = std::make_shared<Conn>(this, id, std::move(socket), ssl_ ? &*ssl_ : nullptr);
      conns_.emplace(id, conn);
      if (conn->tls) {
        conn->tls->async_handshake(asio::ssl::stream_base::server, [this, conn](ErrorCode ec) {
          ERR_clear_error();
          if (ec) {
            Close(conn);
          } else {
            Open(conn);
          }
        });
      } else {
        Open(conn);
      }
      Accept();
    });
  }

  void Open(const ConnPtr& conn) {
    if (conn->closed) return;
    nghttp2_session_callbacks* callbacks = nullptr;
    nghttp2_session_callbacks_new(&callbacks);
    nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Impl::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(callbacks, &Impl::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Impl::OnData);
    nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Impl::OnFrameRecv);
    nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Impl::OnStreamClose);
    nghttp2_session_server_new(&conn->session, callbacks, conn.get());
    nghttp2_session_callbacks_del(callbacks);
    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, kMaxStreams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
    };
    nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, std::size(settings));
    nghttp2_session_set_local_window_size(conn->session, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    Read(conn);
    Flush(conn);
  }

  void Read(const ConnPtr& conn) {
    auto on_read = [this, conn](ErrorCode ec, size_t n) {
      if (conn->closed) return;
      if (ec || nghttp2_session_mem_recv(conn->session, conn->in.data(), n) < 0 ||
          conn->close_now) {
        Close(conn);
        return;
      }
      Flush(conn);
      if (!conn->closed) Read(conn);
    };
    if (conn->tls) {
      conn->tls->async_read_some(asio::buffer(conn->in), std::move(on_read));
    } else {
      conn->plain->async_read_some(asio::buffer(conn->in), std::move(on_read));
    }
  }

  void Flush(const ConnPtr& conn) {
    if (conn->closed || conn->writing) return;
    while (conn->out.size() < kWriteChunk) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(conn->session, &data);
      if (n < 0) {
        Close(conn);
        return;
      }
      if (n == 0) break;
      conn->out.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (conn->out.empty()) {
      if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session)) {
        Close(conn);
      }
      return;
    }
    conn->writing = true;
    auto on_written = [this, conn](ErrorCode ec, size_t) {
      conn->writing = false;
      if (conn->closed) return;
      if (ec) {
        Close(conn);
        return;
      }
      conn->out.clear();
      Flush(conn);
    };
    if (conn->tls) {
      asio::async_write(*conn->tls, asio::buffer(conn->out), std::move(on_written));
    } else {
      asio::async_write(*conn->plain, asio::buffer(conn->out), std::move(on_written));
    }
  }

  void Close(const ConnPtr& conn) {
    if (conn->closed) return;
    conn->closed = true;
    ErrorCode ignored;
    conn->Socket().close(ignored);
    conns_.erase(conn->id);
    Changed([&] { --open_; });
  }

  // A complete request: recorded, then answered as the handler says.
  void OnRequest(Conn& conn, int32_t stream_id) {
    auto it = conn.streams.find(stream_id);
    if (it == conn.streams.end()) return;
    H2TestRequest& request = it->second.request;
    request.connection = conn.id;
    request.stream_id = stream_id;
    Handler handler;
    Changed([&] {
      requests_.push_back(request);
      handler = handler_;
    });
    const H2TestAnswer answer = handler ? handler(request) : H2TestAnswer{};
    switch (answer.action) {
      case Action::kAnswer:
        Respond(conn, stream_id, answer);
        break;
      case Action::kHold:
        held_.push_back({conns_.at(conn.id), stream_id, answer});
        Changed([&] { ++held_count_; });
        break;
      case Action::kCloseConnection:
        conn.close_now = true;
        break;
      case Action::kReset:
        nghttp2_submit_rst_stream(conn.session, NGHTTP2_FLAG_NONE, stream_id,
                                  NGHTTP2_INTERNAL_ERROR);
        break;
    }
  }

  void Respond(Conn& conn, int32_t stream_id, const H2TestAnswer& answer) {
    Stream& stream = conn.streams.at(stream_id);
    stream.response_body = answer.body;
    const std::string status = std::to_string(answer.status);
    std::vector<nghttp2_nv> nva;
    auto add = [&nva](std::string_view name, std::string_view value) {
      nva.push_back({const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                     const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                     name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    };
    add(":status", status);
    for (const auto& [name, value] : answer.headers) add(name, value);
    nghttp2_data_provider body{};
    body.read_callback = &Impl::ReadBody;
    nghttp2_submit_response(conn.session, stream_id, nva.data(), nva.size(),
                            answer.body.empty() ? nullptr : &body);
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                          uint32_t* flags, nghttp2_data_source*, void* user_data) {
    auto* conn = static_cast<Conn*>(user_data);
    auto it = conn->streams.find(stream_id);
    if (it == conn->streams.end()) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    Stream& stream = it->second;
    const size_t n = std::min(length, stream.response_body.size() - stream.offset);
    std::copy_n(stream.response_body.data() + stream.offset, n, buf);
    stream.offset += n;
    if (stream.offset == stream.response_body.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    auto* conn = static_cast<Conn*>(user_data);
    conn->streams.try_emplace(frame->hd.stream_id);
    const int open = static_cast<int>(conn->streams.size());
    conn->impl->Changed(
        [&] { conn->impl->max_open_streams_ = std::max(conn->impl->max_open_streams_, open); });
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_len, const uint8_t* value, size_t value_len, uint8_t,
                      void* user_data) {
    auto* conn = static_cast<Conn*>(user_data);
    auto it = conn->streams.find(frame->hd.stream_id);
    if (it == conn->streams.end()) return 0;
    H2TestRequest& request = it->second.request;
    std::string n(reinterpret_cast<const char*>(name), name_len);
    std::string v(reinterpret_cast<const char*>(value), value_len);
    if (n == ":method") {
      request.method = std::move(v);
    } else if (n == ":scheme") {
      request.scheme = std::move(v);
    } else if (n == ":authority") {
      request.authority = std::move(v);
    } else if (n == ":path") {
      request.path = std::move(v);
    } else {
      request.headers.emplace_back(std::move(n), std::move(v));
    }
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                    void* user_data) {
    auto* conn = static_cast<Conn*>(user_data);
    auto it = conn->streams.find(stream_id);
    if (it != conn->streams.end()) {
      it->second.request.body.append(reinterpret_cast<const char*>(data), len);
    }
    return 0;
  }

  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    const bool request_part = frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA;
    if (request_part && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
      auto* conn = static_cast<Conn*>(user_data);
      conn->impl->OnRequest(*conn, frame->hd.stream_id);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t, void* user_data) {
    static_cast<Conn*>(user_data)->streams.erase(stream_id);
    return 0;
  }

  const Mode mode_;
  TempDir dir_;
  asio::io_context io_;
  std::optional<asio::ssl::context> ssl_;
  tcp::acceptor acceptor_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::thread thread_;

  // On the server's thread.
  std::unordered_map<int64_t, ConnPtr> conns_;
  std::vector<Held> held_;

  mutable std::mutex mu_;  // guards what follows; changed_ signals a change
  mutable std::condition_variable changed_;
  Handler handler_;
  std::vector<H2TestRequest> requests_;
  size_t held_count_ = 0;
  int64_t accepted_ = 0;
  int64_t open_ = 0;
  int max_open_streams_ = 0;
};

H2TestServer::H2TestServer(Mode mode) : impl_(std::make_shared<Impl>(mode)), mode_(mode) {
  error_ = impl_->Start(&port_, &ca_file_);
}

H2TestServer::~H2TestServer() { impl_->Stop(); }

std::string H2TestServer::url() const {
  return (mode_ == Mode::kTls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_);
}

void H2TestServer::SetHandler(Handler handler) { impl_->SetHandler(std::move(handler)); }
std::vector<H2TestRequest> H2TestServer::requests() const { return impl_->requests(); }
size_t H2TestServer::request_count() const { return impl_->request_count(); }
bool H2TestServer::WaitForRequests(size_t n, std::chrono::milliseconds timeout) const {
  return impl_->WaitForRequests(n, timeout);
}
size_t H2TestServer::held_count() const { return impl_->held_count(); }
bool H2TestServer::WaitForHeld(size_t n, std::chrono::milliseconds timeout) const {
  return impl_->WaitForHeld(n, timeout);
}
void H2TestServer::ReleaseHeld() { impl_->ReleaseHeld(); }
void H2TestServer::CloseConnections() { impl_->CloseConnections(); }
void H2TestServer::GoAway() { impl_->GoAway(); }
int64_t H2TestServer::connections_accepted() const { return impl_->connections_accepted(); }
int64_t H2TestServer::connections_open() const { return impl_->connections_open(); }
bool H2TestServer::WaitForConnectionsOpen(int64_t n, std::chrono::milliseconds timeout) const {
  return impl_->WaitForConnectionsOpen(n, timeout);
}
int H2TestServer::max_open_streams() const { return impl_->max_open_streams(); }

}  // namespace mpim::testing
