#include "edge/grpc_health.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <memory>

#include "edge/h2_io.h"

namespace mpim::edge {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class Check : public std::enable_shared_from_this<Check> {
 public:
  Check(asio::io_context& io, std::string service, std::function<void(bool, std::string)> done)
      : socket_(io), timer_(io), body_(GrpcHealthRequest(service)), done_(std::move(done)) {}
  ~Check() {
    if (session_) nghttp2_session_del(session_);
  }

  void Run(const std::string& host, uint16_t port, int64_t timeout_ms) {
    timer_.expires_after(std::chrono::milliseconds(timeout_ms));
    timer_.async_wait([self = shared_from_this(), timeout_ms](boost::system::error_code ec) {
      if (!ec) self->Finish(false, "no answer within " + std::to_string(timeout_ms) + " ms");
    });
    boost::system::error_code ec;
    auto address = asio::ip::make_address(host, ec);
    if (ec) return Finish(false, "bad address " + host);
    socket_.async_connect(tcp::endpoint(address, port),
                          [self = shared_from_this()](boost::system::error_code cec) {
                            if (cec) return self->Finish(false, "connect: " + cec.message());
                            self->Connected();
                          });
  }

 private:
  void Connected() {
    static const nghttp2_session_callbacks* callbacks =
        NewH2Callbacks({.header = OnHeader, .data = OnData, .stream_close = OnClose});
    nghttp2_session_client_new(&session_, callbacks, this);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
    const nghttp2_nv nv[] = {H2Nv(":method", "POST"),
                             H2Nv(":scheme", "http"),
                             H2Nv(":authority", "health"),
                             H2Nv(":path", "/grpc.health.v1.Health/Check"),
                             H2Nv("content-type", "application/grpc"),
                             H2Nv("te", "trailers")};
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                uint32_t* flags, nghttp2_data_source* source, void*) -> ssize_t {
      Check& c = *static_cast<Check*>(source->ptr);
      const size_t n = std::min(length, c.body_.size() - c.body_sent_);
      std::memcpy(buf, c.body_.data() + c.body_sent_, n);
      c.body_sent_ += n;
      if (c.body_sent_ == c.body_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
      return static_cast<ssize_t>(n);
    };
    nghttp2_submit_request(session_, nullptr, nv, std::size(nv), &provider, nullptr);
    Pump();
    Read();
  }

  // What nghttp2 has to send, sent (a check is small: one write at a time).
  void Pump() {
    if (finished_ || writing_) return;
    out_.clear();
    const ssize_t n = TakeH2Output(session_, out_, 64 << 10);
    if (n < 0) return Finish(false, nghttp2_strerror(static_cast<int>(n)));
    if (out_.empty()) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out_),
                      [self = shared_from_this()](boost::system::error_code ec, size_t) {
                        self->writing_ = false;
                        if (ec) return self->Finish(false, "write: " + ec.message());
                        self->Pump();
                      });
  }

  void Read() {
    socket_.async_read_some(
        asio::buffer(in_), [self = shared_from_this()](boost::system::error_code ec, size_t n) {
          if (self->finished_) return;
          if (ec) return self->Finish(false, "connection closed before the answer");
          const ssize_t rv =
              nghttp2_session_mem_recv(self->session_, reinterpret_cast<uint8_t*>(self->in_), n);
          if (rv < 0) return self->Finish(false, nghttp2_strerror(static_cast<int>(rv)));
          if (self->finished_) return;
          self->Pump();
          self->Read();
        });
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t* name, size_t name_len,
                      const uint8_t* value, size_t value_len, uint8_t, void* user) {
    Check& c = *static_cast<Check*>(user);
    const std::string_view n(reinterpret_cast<const char*>(name), name_len);
    const std::string_view v(reinterpret_cast<const char*>(value), value_len);
    if (n == ":status") c.status_ = std::string(v);
    if (n == "grpc-status") c.grpc_status_ = std::string(v);
    if (n == "grpc-message") c.grpc_message_ = std::string(v);
    return 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t, const uint8_t* data, size_t len,
                    void* user) {
    Check& c = *static_cast<Check*>(user);
    if (c.answer_.size() < 4096) c.answer_.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnClose(nghttp2_session*, int32_t, uint32_t error_code, void* user) {
    Check& c = *static_cast<Check*>(user);
    if (error_code != NGHTTP2_NO_ERROR) {
      c.Finish(false, "stream reset: " + std::string(nghttp2_http2_strerror(error_code)));
    } else if (c.status_ != "200") {
      c.Finish(false, "HTTP status " + c.status_);
    } else if (c.grpc_status_ != "0") {
      c.Finish(false, "grpc-status " + c.grpc_status_ + ": " + c.grpc_message_);
    } else if (!GrpcHealthServing(c.answer_)) {
      c.Finish(false, "not SERVING");
    } else {
      c.Finish(true, "");
    }
    return 0;
  }

  void Finish(bool ok, std::string why) {
    if (finished_) return;
    finished_ = true;
    boost::system::error_code ec;
    timer_.cancel();
    socket_.close(ec);
    auto done = std::move(done_);
    done(ok, std::move(why));
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  nghttp2_session* session_ = nullptr;
  const std::string body_;
  size_t body_sent_ = 0;
  std::string out_;
  char in_[4096];
  bool writing_ = false;
  bool finished_ = false;
  std::string status_, grpc_status_ = "(none)", grpc_message_, answer_;
  std::function<void(bool, std::string)> done_;
};

}  // namespace

std::string GrpcHealthRequest(const std::string& service) {
  std::string message;
  if (!service.empty()) {
    message += '\x0a';  // field 1 (service), length-delimited
    size_t n = service.size();
    while (n >= 0x80) {
      message += static_cast<char>(0x80 | (n & 0x7f));
      n >>= 7;
    }
    message += static_cast<char>(n);
    message += service;
  }
  std::string framed(5, '\0');  // not compressed, then the length (big-endian)
  const uint32_t len = static_cast<uint32_t>(message.size());
  framed[1] = static_cast<char>(len >> 24);
  framed[2] = static_cast<char>(len >> 16);
  framed[3] = static_cast<char>(len >> 8);
  framed[4] = static_cast<char>(len);
  return framed + message;
}

bool GrpcHealthServing(std::string_view body) {
  // One uncompressed message: HealthCheckResponse{status = SERVING (1)} is
  // field 1 as a varint, 0x08 0x01.
  if (body.size() < 5 || body[0] != 0) return false;
  const uint32_t len = (uint32_t{static_cast<uint8_t>(body[1])} << 24) |
                       (uint32_t{static_cast<uint8_t>(body[2])} << 16) |
                       (uint32_t{static_cast<uint8_t>(body[3])} << 8) |
                       uint32_t{static_cast<uint8_t>(body[4])};
  const std::string_view message = body.substr(5);
  if (message.size() != len) return false;
  for (size_t i = 0; i + 1 < message.size(); i += 2) {
    if (message[i] == 0x08) return message[i + 1] == 0x01;
    return false;  // another field first: not this message
  }
  return false;
}

void CheckGrpcHealth(boost::asio::io_context& io, const std::string& host, uint16_t port,
                     const std::string& service, int64_t timeout_ms,
                     std::function<void(bool ok, std::string why)> done) {
  std::make_shared<Check>(io, service, std::move(done))->Run(host, port, timeout_ms);
}

}  // namespace mpim::edge
