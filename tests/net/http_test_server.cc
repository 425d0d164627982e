#include "net/http_test_server.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <system_error>

namespace mpim::testing {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

}  // namespace

std::string_view HttpTestRequest::Header(std::string_view name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return {};
}

TestCertificate MakeSelfSignedCertificate(const std::vector<std::string>& dns_names,
                                          const std::vector<std::string>& ips) {
  TestCertificate out;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  std::string names;
  for (const auto& dns : dns_names) names += (names.empty() ? "DNS:" : ",DNS:") + dns;
  for (const auto& ip : ips) names += (names.empty() ? "IP:" : ",IP:") + ip;
  bool ok = key != nullptr && cert != nullptr && X509_set_version(cert, 2) == 1 &&
            ASN1_INTEGER_set(X509_get_serialNumber(cert), 1) == 1 &&
            X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != nullptr &&
            X509_gmtime_adj(X509_getm_notAfter(cert), 86400) != nullptr &&
            X509_set_pubkey(cert, key) == 1;
  if (ok) {
    X509_NAME* name = X509_get_subject_name(cert);
    ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("mpim test"), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert, name) == 1;
  }
  if (ok && !names.empty()) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, names.c_str());
    ok = ext != nullptr && X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert, key, EVP_sha256()) > 0;
  if (ok) {
    BIO* cert_bio = BIO_new(BIO_s_mem());
    BIO* key_bio = BIO_new(BIO_s_mem());
    if (PEM_write_bio_X509(cert_bio, cert) == 1 &&
        PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1) {
      out.cert_pem = BioText(cert_bio);
      out.key_pem = BioText(key_bio);
    }
    BIO_free(cert_bio);
    BIO_free(key_bio);
  }
  if (out.cert_pem.empty()) ERR_print_errors_fp(stderr);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

struct HttpTestServer::Internals {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::optional<asio::ssl::context> ssl;
};

struct HttpTestServer::Connection {
  int id = 0;
  int fd = -1;
  std::optional<tcp::socket> socket;  // until its thread takes it
  bool idle = false;                  // waiting for its next request; guarded by mu_
};

HttpTestServer::HttpTestServer(Mode mode) : in_(std::make_unique<Internals>()) {
  TestCertificate certificate;
  if (mode == Mode::kTls) {
    certificate = MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
    if (certificate.cert_pem.empty()) {
      error_ = "cannot make a certificate";
      return;
    }
  }
  Start(mode == Mode::kTls, certificate);
}

HttpTestServer::HttpTestServer(TestCertificate certificate) : in_(std::make_unique<Internals>()) {
  Start(true, certificate);
}

void HttpTestServer::Start(bool tls, const TestCertificate& certificate) {
  tls_ = tls;
  try {
    if (tls) {
      std::string pattern =
          (std::filesystem::temp_directory_path() / "mpim-http-test-XXXXXX").string();
      if (mkdtemp(pattern.data()) == nullptr) {
        error_ = "mkdtemp failed";
        return;
      }
      ca_dir_ = pattern;
      ca_file_ = ca_dir_ + "/ca.pem";
      std::ofstream(ca_file_) << certificate.cert_pem;
      in_->ssl.emplace(asio::ssl::context::tls_server);
      in_->ssl->use_certificate_chain(asio::buffer(certificate.cert_pem));
      in_->ssl->use_private_key(asio::buffer(certificate.key_pem), asio::ssl::context::pem);
    }
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    in_->acceptor.open(endpoint.protocol());
    in_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    in_->acceptor.bind(endpoint);
    in_->acceptor.listen();
    port_ = in_->acceptor.local_endpoint().port();
  } catch (const std::exception& e) {
    error_ = e.what();
    return;
  }
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

HttpTestServer::~HttpTestServer() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    ++release_epoch_;
    for (auto& [id, connection] : connections_) ::shutdown(connection->fd, SHUT_RDWR);
  }
  changed_.notify_all();
  if (accept_thread_.joinable()) {
    ::shutdown(in_->acceptor.native_handle(), SHUT_RDWR);
    accept_thread_.join();
  }
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    threads.swap(threads_);
  }
  for (auto& thread : threads) thread.join();
  if (!ca_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(ca_dir_, ec);
  }
}

std::string HttpTestServer::url() const {
  return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

void HttpTestServer::SetHandler(Handler handler) {
  std::lock_guard lock(mu_);
  handler_ = std::move(handler);
}

HttpTestServer::Handler HttpTestServer::Always(HttpTestAnswer::Action action) {
  return [action](const HttpTestRequest&) { return HttpTestAnswer{.action = action}; };
}

void HttpTestServer::AcceptLoop() {
  for (;;) {
    tcp::socket socket(in_->io);
    ErrorCode ec;
    in_->acceptor.accept(socket, ec);
    std::lock_guard lock(mu_);
    if (stopping_ || ec) return;
    socket.set_option(tcp::no_delay(true), ec);
    auto connection = std::make_shared<Connection>();
    connection->id = ++accepted_;
    connection->fd = socket.native_handle();
    connection->socket.emplace(std::move(socket));
    connections_[connection->id] = connection;
    max_open_ = std::max(max_open_, static_cast<int>(connections_.size()));
    threads_.emplace_back([this, connection] { Serve(connection); });
    changed_.notify_all();
  }
}

void HttpTestServer::Serve(std::shared_ptr<Connection> connection) {
  tcp::socket socket = std::move(*connection->socket);
  std::optional<asio::ssl::stream<tcp::socket&>> tls;
  if (tls_) {
    tls.emplace(socket, *in_->ssl);
    ErrorCode ec;
    tls->handshake(asio::ssl::stream_base::server, ec);
    if (!ec) ServeRequests(*tls, *connection);
  } else {
    ServeRequests(socket, *connection);
  }
  {
    // Forgotten before its descriptor closes, so that no shutdown() from
    // CloseIdle can reach a descriptor number reused meanwhile.
    std::lock_guard lock(mu_);
    connections_.erase(connection->id);
  }
  changed_.notify_all();
  tls.reset();
  ErrorCode ignored;
  socket.close(ignored);
}

template <typename Stream>
void HttpTestServer::ServeRequests(Stream& stream, Connection& connection) {
  boost::beast::flat_buffer buffer;
  for (int index = 0;; ++index) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      connection.idle = buffer.size() == 0;
    }
    changed_.notify_all();
    ErrorCode ec;
    http::read(stream, buffer, parser, ec);
    Handler handler;
    HttpTestRequest request;
    {
      std::lock_guard lock(mu_);
      connection.idle = false;
      if (ec || stopping_) return;
      auto& message = parser.get();
      request.connection = connection.id;
      request.index = index;
      request.method = std::string(message.method_string());
      request.target = std::string(message.target());
      for (const auto& field : message) {
        request.headers.emplace_back(Lower(field.name_string()), std::string(field.value()));
      }
      request.body = message.body();
      requests_.push_back(request);
      handler = handler_;
    }
    changed_.notify_all();
    HttpTestAnswer answer = handler ? handler(request) : HttpTestAnswer{};
    if (answer.action == HttpTestAnswer::Action::kHold) {
      std::unique_lock lock(mu_);
      ++held_;
      changed_.notify_all();
      uint64_t epoch = release_epoch_;
      changed_.wait(lock, [&] { return release_epoch_ != epoch || stopping_; });
      --held_;
    }
    if (answer.action == HttpTestAnswer::Action::kClose) return;
    if (answer.action == HttpTestAnswer::Action::kRaw) {
      asio::write(stream, asio::buffer(answer.body), ec);
      return;
    }
    http::response<http::string_body> response{static_cast<http::status>(answer.status), 11};
    bool has_type = false;
    for (const auto& [name, value] : answer.headers) {
      has_type = has_type || Lower(name) == "content-type";
      response.insert(name, value);
    }
    if (!has_type) response.set(http::field::content_type, "application/json");
    response.body() = std::move(answer.body);
    response.keep_alive(!answer.close && parser.get().keep_alive());
    response.prepare_payload();
    http::write(stream, response, ec);
    if (ec || !response.keep_alive()) return;
  }
}

std::vector<HttpTestRequest> HttpTestServer::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

size_t HttpTestServer::request_count() const {
  std::lock_guard lock(mu_);
  return requests_.size();
}

int HttpTestServer::connections_accepted() const {
  std::lock_guard lock(mu_);
  return accepted_;
}

int HttpTestServer::open_connections() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(connections_.size());
}

int HttpTestServer::max_open_connections() const {
  std::lock_guard lock(mu_);
  return max_open_;
}

size_t HttpTestServer::held_count() const {
  std::lock_guard lock(mu_);
  return held_;
}

template <typename Pred>
bool HttpTestServer::WaitFor(std::chrono::milliseconds timeout, Pred pred) const {
  std::unique_lock lock(mu_);
  return changed_.wait_for(lock, timeout, pred);
}

bool HttpTestServer::WaitForRequests(size_t n, std::chrono::milliseconds timeout) const {
  return WaitFor(timeout, [&] { return requests_.size() >= n; });
}

bool HttpTestServer::WaitForHeld(size_t n, std::chrono::milliseconds timeout) const {
  return WaitFor(timeout, [&] { return held_ >= n; });
}

bool HttpTestServer::WaitForOpenConnections(int n, std::chrono::milliseconds timeout) const {
  return WaitFor(timeout, [&] { return static_cast<int>(connections_.size()) == n; });
}

bool HttpTestServer::WaitForIdleConnections(int n, std::chrono::milliseconds timeout) const {
  return WaitFor(timeout, [&] {
    return std::count_if(connections_.begin(), connections_.end(),
                         [](const auto& entry) { return entry.second->idle; }) >= n;
  });
}

void HttpTestServer::ReleaseHeld() {
  {
    std::lock_guard lock(mu_);
    ++release_epoch_;
  }
  changed_.notify_all();
}

void HttpTestServer::CloseIdle() {
  std::lock_guard lock(mu_);
  for (auto& [id, connection] : connections_) {
    if (connection->idle) ::shutdown(connection->fd, SHUT_RDWR);
  }
}

}  // namespace mpim::testing
