#include "client/ws_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <cctype>
#include <optional>

namespace mpim::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

class WsClient::Impl {
 public:
  explicit Impl(WsOptions options) : options_(options) {}
  ~Impl() { Abort(); }

  core::Status Connect(const std::string& host, uint16_t port, const std::string& target,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
    if (ws_) return absl::FailedPreconditionError("Connect called twice");
    auto deadline = WsClock::now() + options_.handshake_timeout;
    beast::error_code ec;
    tcp::resolver resolver(io_);
    auto endpoints = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return absl::UnavailableError("resolve: " + ec.message());
    ws_.emplace(io_);
    if (auto s = ConnectTcp(endpoints, deadline); !s.ok()) {
      Fail(std::string(s.message()));
      return s;
    }

    ws_->set_option(websocket::stream_base::decorator([headers](websocket::request_type& req) {
      for (const auto& [name, value] : headers) req.set(name, value);
    }));
    ws_->auto_fragment(false);  // one message, one frame: frame limits are what tests probe
    ws_->read_message_max(options_.max_message_bytes);
    ws_->control_callback([this](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) ++pings_received_;
    });

    auto result = Run(
        [&](auto handler) {
          ws_->async_handshake(response_, host + ":" + std::to_string(port), target,
                               std::move(handler));
        },
        deadline);
    handshake_.status = static_cast<int>(response_.result_int());
    for (const auto& field : response_) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      handshake_.headers.emplace_back(std::move(name), std::string(field.value()));
    }
    if (!result) {
      Fail("handshake timed out");
      Abort();
      return absl::UnavailableError("handshake timed out");
    }
    ec = *result;
    if (ec == websocket::error::upgrade_declined) {
      Fail("upgrade declined");
      Abort();
      return absl::FailedPreconditionError("upgrade declined with HTTP " +
                                           std::to_string(handshake_.status));
    }
    if (ec) {
      Fail("handshake: " + ec.message());
      Abort();
      return absl::UnavailableError("handshake: " + ec.message());
    }
    open_ = true;
    return absl::OkStatus();
  }

  core::Status Send(const std::string& payload, bool binary, WsClock::time_point deadline) {
    if (!open_) return absl::UnavailableError("not connected");
    write_buffer_ = payload;  // outlives the operation even if we give up on it
    ws_->binary(binary);
    auto ec = Run(
        [&](auto handler) { ws_->async_write(asio::buffer(write_buffer_), std::move(handler)); },
        deadline);
    return WriteResult(ec, "write");
  }

  core::Status SendRaw(const std::string& bytes, WsClock::time_point deadline) {
    if (!open_) return absl::UnavailableError("not connected");
    write_buffer_ = bytes;
    auto ec = Run(
        [&](auto handler) {
          asio::async_write(ws_->next_layer(), asio::buffer(write_buffer_), std::move(handler));
        },
        deadline);
    return WriteResult(ec, "raw write");
  }

  WsFrame Receive(WsClock::time_point deadline) {
    if (terminal_) return *terminal_;
    if (!ws_) return Fail("not connected");
    StartRead();
    if (!RunUntil(read_done_, deadline)) {
      WsFrame timeout;
      timeout.kind = WsFrame::kTimeout;
      return timeout;
    }
    read_done_ = false;
    WsFrame frame;
    if (!read_ec_) {
      frame.kind = read_text_ ? WsFrame::kText : WsFrame::kBinary;
      frame.data = beast::buffers_to_string(read_buffer_.data());
      read_buffer_.consume(read_buffer_.size());
      return frame;
    }
    // error::closed after a close handshake; another error when a close
    // frame arrived but answering it failed (the server did not wait for
    // our close): a close either way, with the server's code.
    if (read_ec_ == websocket::error::closed || ws_->reason().code != websocket::close_code::none) {
      open_ = false;
      frame.kind = WsFrame::kClosed;
      frame.close_code = static_cast<int>(ws_->reason().code);
      frame.reason.assign(ws_->reason().reason.data(), ws_->reason().reason.size());
      terminal_ = frame;
      return frame;
    }
    return Fail("read: " + read_ec_.message());
  }

  core::Status Close(int code, const std::string& reason, WsClock::time_point deadline) {
    if (!open_) return absl::UnavailableError("not connected");
    websocket::close_reason cr;
    cr.code = static_cast<uint16_t>(code);
    cr.reason = reason;
    auto ec = Run([&](auto handler) { ws_->async_close(cr, std::move(handler)); }, deadline);
    Abort();
    if (!ec) return absl::UnavailableError("close timed out");
    if (*ec) return absl::UnavailableError("close: " + ec->message());
    return absl::OkStatus();
  }

  // Closes the socket and lets pending handlers finish (they reference us).
  void Abort() {
    open_ = false;
    if (!ws_) return;
    beast::error_code ignored;
    beast::get_lowest_layer(*ws_).close(ignored);
    auto deadline = WsClock::now() + std::chrono::seconds(1);
    while (read_pending_ && WsClock::now() < deadline) {
      if (io_.stopped()) io_.restart();
      if (io_.run_one_until(deadline) == 0) break;
    }
    if (!terminal_) {
      terminal_ = WsFrame{};
      terminal_->kind = WsFrame::kError;
      terminal_->error = "closed by the client";
    }
  }

  bool is_open() const { return open_; }
  const WsHandshake& handshake() const { return handshake_; }
  int pings_received() const { return pings_received_; }

 private:
  core::Status ConnectTcp(const tcp::resolver::results_type& endpoints,
                          WsClock::time_point deadline) {
    std::string last_error = "no address";
    for (const auto& entry : endpoints) {
      auto& socket = ws_->next_layer();
      beast::error_code ec;
      socket.close(ec);
      socket.open(entry.endpoint().protocol(), ec);
      if (ec) {
        last_error = "socket: " + ec.message();
        continue;
      }
      if (options_.receive_buffer_bytes > 0) {
        socket.set_option(asio::socket_base::receive_buffer_size(options_.receive_buffer_bytes),
                          ec);
      }
      socket.set_option(tcp::no_delay(true), ec);
      auto result =
          Run([&](auto handler) { socket.async_connect(entry.endpoint(), std::move(handler)); },
              deadline);
      if (!result) return absl::UnavailableError("connect timed out");
      if (!*result) return absl::OkStatus();
      last_error = "connect: " + result->message();
    }
    return absl::UnavailableError(last_error);
  }

  void StartRead() {
    if (read_pending_ || read_done_) return;
    read_pending_ = true;
    ws_->async_read(read_buffer_, [this](beast::error_code ec, std::size_t) {
      read_pending_ = false;
      read_done_ = true;
      read_ec_ = ec;
      read_text_ = ws_->got_text();
    });
  }

  // Starts one operation through `start(handler)` and runs handlers until it
  // completes: its error code, or nullopt when `deadline` came first (the
  // operation may still complete later; its state is shared with the handler).
  template <typename Start>
  std::optional<beast::error_code> Run(Start start, WsClock::time_point deadline) {
    struct Op {
      bool done = false;
      beast::error_code ec;
    };
    auto op = std::make_shared<Op>();
    start([op](beast::error_code ec, auto&&...) {
      op->ec = ec;
      op->done = true;
    });
    if (!RunUntil(op->done, deadline)) return std::nullopt;
    return op->ec;
  }

  core::Status WriteResult(const std::optional<beast::error_code>& ec, const char* what) {
    if (!ec) {
      Fail(std::string(what) + " timed out");
      Abort();
      return absl::UnavailableError(std::string(what) + " timed out");
    }
    if (*ec) return absl::UnavailableError(std::string(what) + ": " + ec->message());
    return absl::OkStatus();
  }

  // Runs handlers until `flag` is set; false when `deadline` came first or
  // nothing was left that could set it.
  bool RunUntil(const bool& flag, WsClock::time_point deadline) {
    while (!flag) {
      if (io_.stopped()) io_.restart();
      if (io_.run_one_until(deadline) == 0 && !flag) {
        if (WsClock::now() >= deadline || io_.stopped()) return false;
      }
    }
    return true;
  }

  WsFrame Fail(std::string error) {
    open_ = false;
    if (!terminal_) {
      terminal_ = WsFrame{};
      terminal_->kind = WsFrame::kError;
      terminal_->error = std::move(error);
    }
    return *terminal_;
  }

  WsOptions options_;
  asio::io_context io_;
  std::optional<websocket::stream<tcp::socket>> ws_;
  websocket::response_type response_;
  WsHandshake handshake_;
  bool open_ = false;
  int pings_received_ = 0;

  beast::flat_buffer read_buffer_;
  bool read_pending_ = false;
  bool read_done_ = false;
  bool read_text_ = false;
  beast::error_code read_ec_;
  std::string write_buffer_;
  std::optional<WsFrame> terminal_;  // set once closed or failed
};

std::string WsClient::EncodeClientFrame(int opcode, const std::string& payload) {
  std::string out;
  out.push_back(static_cast<char>(0x80 | (opcode & 0x0f)));
  const uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  out.append(reinterpret_cast<const char*>(mask), 4);
  for (uint64_t i = 0; i < n; ++i) {
    out.push_back(static_cast<char>(static_cast<unsigned char>(payload[i]) ^ mask[i % 4]));
  }
  return out;
}

WsClient::WsClient(WsOptions options) : impl_(std::make_unique<Impl>(options)) {}
WsClient::~WsClient() = default;

core::Status WsClient::Connect(const std::string& host, uint16_t port, const std::string& target,
                               const std::vector<std::pair<std::string, std::string>>& headers) {
  return impl_->Connect(host, port, target, headers);
}
core::Status WsClient::SendText(const std::string& text, WsClock::time_point deadline) {
  return impl_->Send(text, false, deadline);
}
core::Status WsClient::SendBinary(const std::string& bytes, WsClock::time_point deadline) {
  return impl_->Send(bytes, true, deadline);
}
core::Status WsClient::SendRaw(const std::string& bytes, WsClock::time_point deadline) {
  return impl_->SendRaw(bytes, deadline);
}
WsFrame WsClient::Receive(WsClock::time_point deadline) { return impl_->Receive(deadline); }
core::Status WsClient::Close(int code, const std::string& reason, WsClock::time_point deadline) {
  return impl_->Close(code, reason, deadline);
}
void WsClient::Abort() { impl_->Abort(); }
bool WsClient::is_open() const { return impl_->is_open(); }
const WsHandshake& WsClient::handshake() const { return impl_->handshake(); }
int WsClient::pings_received() const { return impl_->pings_received(); }

}  // namespace mpim::client
