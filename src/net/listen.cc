#include "net/listen.h"

namespace mpim::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

core::StatusOr<uint16_t> Listen(tcp::acceptor& acceptor, const std::string& host, uint16_t port) {
  boost::system::error_code ec;
  tcp::resolver resolver(acceptor.get_executor());
  auto results = resolver.resolve(host, std::to_string(port),
                                  tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return absl::UnavailableError("cannot resolve listen host " + host + ": " + ec.message());
  }
  tcp::endpoint endpoint = results.begin()->endpoint();
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                                  ec.message());
  }
  return acceptor.local_endpoint().port();
}

}  // namespace mpim::net
