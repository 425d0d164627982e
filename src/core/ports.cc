#include "core/ports.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace mpim::core {
namespace {

// Binds a fresh socket to 127.0.0.1:`port`; the port bound, 0 on failure.
uint16_t BindLoopback(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  if (port != 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  uint16_t bound = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    bound = ntohs(addr.sin_port);
  }
  ::close(fd);
  return bound;
}

}  // namespace

uint16_t FreeLoopbackPort() { return BindLoopback(0); }

bool LoopbackPortFree(uint16_t port) { return port != 0 && BindLoopback(port) == port; }

}  // namespace mpim::core
