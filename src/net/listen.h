// Opens a listening socket on HOST:PORT (a name or an address; port 0: any
// free port) for the HTTP server and the edge's proxy.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace mpim::net {

// Binds `acceptor` (SO_REUSEADDR) and listens; the bound port, or
// unavailable saying why (the host does not resolve, the port is taken).
core::StatusOr<uint16_t> Listen(boost::asio::ip::tcp::acceptor& acceptor, const std::string& host,
                                uint16_t port);

}  // namespace mpim::net
