// What the HTTP/1.1 push providers (webhook_provider.h, fcm_provider.h) share:
// the outcome of an answer by its status (provider.h's contract), and the
// gathering of a Send's results, one per push, into one `done`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "service/push/provider.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace mpim::net {
class HttpClient;
}  // namespace mpim::net

namespace mpim::service::push {

// The HTTP client a provider sends with (on `io`), after checking the
// options it shares with the others: invalid_argument for a `url` that is
// not http(s), a timeout or a connection cap below 1, or a CA file that
// cannot be loaded.
core::StatusOr<std::unique_ptr<net::HttpClient>> MakeProviderClient(const std::string& url,
                                                                    int64_t timeout_ms,
                                                                    int max_connections,
                                                                    const std::string& tls_ca_file,
                                                                    boost::asio::io_context& io);

// 2xx delivered; `token_gone` token gone; 429 and 5xx retry, with the
// Retry-After header's delay; every other status rejected.
Result ResultOfAnswer(int status, bool token_gone, std::string_view retry_after, std::string detail,
                      double seconds);

// No answer (a timeout, a refused or broken connection): retry.
Result ResultOfError(std::string detail, double seconds);

// Seconds since `start`, for Result::seconds.
double SecondsSince(std::chrono::steady_clock::time_point start);

// One Result per push, set from any thread in any order; `done` runs once,
// on the thread that sets the last, with them in the order of the pushes.
class ResultBatch {
 public:
  // Calls `done` at once for no pushes (and returns null).
  static std::shared_ptr<ResultBatch> Make(size_t pushes, SendDone done);
  void Set(size_t i, Result result);

 private:
  ResultBatch(size_t pushes, SendDone done);
  std::vector<Result> results_;
  std::atomic<size_t> remaining_;
  SendDone done_;
};

}  // namespace mpim::service::push
