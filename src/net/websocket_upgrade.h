// Internal to src/net: how the HTTP server hands an upgrade to a WebSocket
// connection. Includes Beast; only http_server.cc and websocket.cc use it.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>

#include "net/websocket.h"

namespace mpim::net::internal {

// Takes over `socket` after an upgrade request: calls `accept` (which
// installs the handler), then runs the handshake and the read loop on the
// socket's executor. `guard` is released when the connection is gone (the
// HTTP server's accounting). Returns the connection (for draining).
std::shared_ptr<WsConnection> StartWebSocket(
    boost::asio::ip::tcp::socket socket,
    boost::beast::http::request<boost::beast::http::string_body> upgrade, HttpRequest request,
    const WsOptions& options, const WsAcceptFn& accept, std::shared_ptr<void> guard);

}  // namespace mpim::net::internal
