#include "client/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace mpim::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::string HttpResult::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

class HttpClient::Impl {
 public:
  Impl(std::string host, uint16_t port, std::chrono::milliseconds timeout)
      : host_(std::move(host)), port_(port), timeout_(timeout) {}

  core::StatusOr<HttpResult> Request(const std::string& method, const std::string& target,
                                     const std::string& body,
                                     const std::vector<std::pair<std::string, std::string>>& hdrs) {
    // One retry on a fresh connection: the server may have closed an idle one.
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = !stream_;
      if (!stream_) {
        if (auto s = Connect(); !s.ok()) return s;
      }
      auto result = Once(method, target, body, hdrs);
      if (result.ok() || fresh) return result;
      stream_.reset();
    }
    return absl::UnavailableError("request failed");
  }

 private:
  core::Status Connect() {
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host_, std::to_string(port_), ec);
    if (ec) return absl::UnavailableError("resolve: " + ec.message());
    stream_.emplace(io_);
    stream_->expires_after(timeout_);
    stream_->connect(endpoints, ec);  // blocking: tcp_stream's timeout covers async ops only
    if (ec) {
      stream_.reset();
      return absl::UnavailableError("connect: " + ec.message());
    }
    return absl::OkStatus();
  }

  core::StatusOr<HttpResult> Once(const std::string& method, const std::string& target,
                                  const std::string& body,
                                  const std::vector<std::pair<std::string, std::string>>& hdrs) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, host_);
    for (const auto& [k, v] : hdrs) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);

    beast::error_code ec;
    http::write(*stream_, req, ec);
    if (ec) return absl::UnavailableError("write: " + ec.message());
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    SetReceiveTimeout();
    http::read(*stream_, buffer_, parser, ec);
    if (ec) {
      stream_.reset();
      buffer_.clear();
      return absl::UnavailableError("read: " + ec.message());
    }
    auto res = parser.release();
    HttpResult out;
    out.status = static_cast<int>(res.result_int());
    out.body = std::move(res.body());
    for (const auto& field : res) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    if (!res.keep_alive()) {
      stream_.reset();
      buffer_.clear();
    }
    return out;
  }

  // Blocking reads honour SO_RCVTIMEO, so a hung server cannot hang a test.
  void SetReceiveTimeout() {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout_.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout_.count() % 1000) * 1000);
    ::setsockopt(stream_->socket().native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(stream_->socket().native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  std::string host_;
  uint16_t port_;
  std::chrono::milliseconds timeout_;
  asio::io_context io_;
  std::optional<beast::tcp_stream> stream_;
  beast::flat_buffer buffer_;
};

HttpClient::HttpClient(std::string host, uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>(std::move(host), port, timeout)) {}
HttpClient::~HttpClient() = default;

core::StatusOr<HttpResult> HttpClient::Request(
    const std::string& method, const std::string& target, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->Request(method, target, body, headers);
}

}  // namespace mpim::client
