// An asynchronous WebSocket client connection for mpim-bench: thousands per
// io_context, one io_context per thread. Binds a loopback source address
// before connecting (so connections spread over 127.0.0.2, 127.0.0.3, ...),
// authenticates with an `Authorization: Bearer` header, reads frames into a
// listener and writes queued frames in order, many per write. The framing
// (RFC 6455, client side) is async_ws.cc's own: see there why not Beast.
//
// All calls and callbacks run on the connection's io_context thread.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace mpim::bench {

class WsListener {
 public:
  virtual ~WsListener() = default;
  // The upgrade completed (the server's `hello` comes as the first text).
  virtual void OnOpen(uint32_t id) = 0;
  virtual void OnText(uint32_t id, std::string_view text) = 0;
  // The connection failed or ended: `close_code` is the server's close code,
  // 0 when there was no close frame. Not called after Abort().
  virtual void OnClosed(uint32_t id, int close_code, std::string_view error) = 0;
};

struct WsTarget {
  boost::asio::ip::tcp::endpoint server;
  std::string host;  // the Host header, "127.0.0.1:8080"
  // TCP_NODELAY on the client's socket; false: Nagle's algorithm on, as
  // many HTTP stacks leave it (a small frame then waits for the server's
  // TCP acknowledgement of the previous one).
  bool no_delay = true;
};

class AsyncWs {
 public:
  AsyncWs();
  ~AsyncWs();  // aborts
  AsyncWs(AsyncWs&&) noexcept;
  AsyncWs& operator=(AsyncWs&&) noexcept;

  // Starts connecting from `source` (port chosen by the kernel at connect
  // time) and upgrading /ws with `token`. Aborts a previous connection.
  void Connect(boost::asio::io_context& io, WsListener* listener, uint32_t id,
               const WsTarget& target, const boost::asio::ip::address& source,
               std::string_view token);
  // Queues one text frame; written once the upgrade completed, in order.
  // Dropped when the connection is gone (false).
  bool Send(std::string text);
  // Drops the connection (no close frame); no callback follows.
  void Abort();

  bool open() const;
  size_t queued() const;  // frames not yet written

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mpim::bench
