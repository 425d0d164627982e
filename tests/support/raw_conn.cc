#include "support/raw_conn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace mpim::testing {

using std::chrono::milliseconds;

RawConn::RawConn(uint16_t port, const std::string& source) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (!source.empty()) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
        ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

RawConn::~RawConn() { ::close(fd_); }

void RawConn::Send(const std::string& s) { (void)::send(fd_, s.data(), s.size(), MSG_NOSIGNAL); }

bool RawConn::ReadUntil(const std::string& needle, milliseconds deadline) {
  std::string got;
  auto until = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  while (got.find(needle) == std::string::npos) {
    auto left = std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return true;
}

bool RawConn::ReadUntilClosed(milliseconds deadline, std::string* out) {
  auto until = std::chrono::steady_clock::now() + deadline;
  char buf[4096];
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd_, POLLIN, 0};
    int left = static_cast<int>(
        std::chrono::duration_cast<milliseconds>(until - std::chrono::steady_clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return true;
    if (out) out->append(buf, static_cast<size_t>(n));
  }
  return false;
}

std::unique_ptr<RawConn> ServedConnection(uint16_t port, milliseconds deadline,
                                          const std::string& source) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    auto conn = std::make_unique<RawConn>(port, source);
    conn->Send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    if (conn->ReadUntil("{\"status\":\"ok\"}", milliseconds(2000))) return conn;
  }
  return nullptr;
}

}  // namespace mpim::testing
