// A local webhook endpoint for tests and benchmarks of offline push
// (protocol.md section 4): a real HTTP/1.1 server (net::HttpServer) on a
// free loopback port that records every POST it gets and answers with the
// status a policy chooses per request (200 unless told otherwise).
//
// Thread-safe: requests arrive on the server's io thread; the test reads
// what was recorded from its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/http.h"

namespace mpim::testing {

struct ReceivedPush {
  std::string body;
  std::string signature;    // X-MPIM-Signature
  std::string delivery_id;  // X-MPIM-Delivery
  std::string content_type;
  std::chrono::steady_clock::time_point at;
  int answered = 0;  // the status it got
};

class WebhookReceiver {
 public:
  // (the request's body, how many came before it) -> HTTP status to answer.
  using Policy = std::function<int(const std::string& body, size_t index)>;

  WebhookReceiver();
  ~WebhookReceiver();

  // "http://127.0.0.1:<port>/hook"
  std::string url() const;
  void SetPolicy(Policy policy);

  std::vector<ReceivedPush> Received() const;
  size_t count() const;
  // Waits until `pred(received)` holds, at most `deadline`.
  bool WaitFor(const std::function<bool(const std::vector<ReceivedPush>&)>& pred,
               std::chrono::milliseconds deadline = std::chrono::seconds(20)) const;
  // The HTTP connections the server accepted so far (keep-alive reuse).
  size_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Lowercase hex HMAC-SHA256 of `body` with `secret` (what
// X-MPIM-Signature carries after "sha256=").
std::string HmacSha256Hex(const std::string& secret, const std::string& body);

}  // namespace mpim::testing
