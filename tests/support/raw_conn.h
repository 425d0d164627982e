// A raw TCP connection to a test server, for what a well-behaved client
// would never send (garbage, requests that never finish, connections that
// say nothing), from 127.0.0.1 or another loopback address.
//
// Not thread-safe: one RawConn per thread. Every read takes a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace mpim::testing {

class RawConn {
 public:
  // Connects to 127.0.0.1:`port`, from `source` (an IPv4 address such as
  // "127.0.0.2") when given.
  explicit RawConn(uint16_t port, const std::string& source = "");
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;

  bool connected() const { return connected_; }
  void Send(const std::string& s);
  // Reads until `needle` has arrived; false on close or deadline.
  bool ReadUntil(const std::string& needle, std::chrono::milliseconds deadline);
  // Reads until the peer closes (true) or `deadline` (false); what arrived
  // goes to `out`.
  bool ReadUntilClosed(std::chrono::milliseconds deadline, std::string* out = nullptr);

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// A connection whose GET /healthz was answered (so the server counts it),
// retried until `deadline`: the first may be refused for a moment while the
// server reaps an earlier connection. Null at the deadline.
std::unique_ptr<RawConn> ServedConnection(uint16_t port, std::chrono::milliseconds deadline,
                                          const std::string& source = "");

}  // namespace mpim::testing
