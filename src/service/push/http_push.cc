#include "service/push/http_push.h"

#include <utility>

#include "net/http_client.h"

namespace mpim::service::push {

core::StatusOr<std::unique_ptr<net::HttpClient>> MakeProviderClient(const std::string& url,
                                                                    int64_t timeout_ms,
                                                                    int max_connections,
                                                                    const std::string& tls_ca_file,
                                                                    boost::asio::io_context& io) {
  auto parsed = net::ParseHttpUrl(url);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError("url: " + std::string(parsed.status().message()));
  }
  if (timeout_ms < 1) return absl::InvalidArgumentError("timeout_ms must be positive");
  if (max_connections < 1) return absl::InvalidArgumentError("max_connections must be positive");
  auto client = net::HttpClient::Make(
      io, {.max_connections_per_origin = max_connections, .tls_ca_file = tls_ca_file});
  if (!client.ok()) return absl::InvalidArgumentError(client.status().message());
  return client;
}

Result ResultOfAnswer(int status, bool token_gone, std::string_view retry_after, std::string detail,
                      double seconds) {
  Result result{.detail = std::move(detail), .seconds = seconds};
  if (status >= 200 && status < 300) {
    result.outcome = Outcome::kDelivered;
  } else if (token_gone) {
    result.outcome = Outcome::kTokenGone;
  } else if (status == 429 || status >= 500) {
    result.outcome = Outcome::kRetry;
    result.retry_after_ms = net::RetryAfterMs(retry_after);
  } else {
    result.outcome = Outcome::kRejected;
  }
  return result;
}

Result ResultOfError(std::string detail, double seconds) {
  return Result{.outcome = Outcome::kRetry, .detail = std::move(detail), .seconds = seconds};
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::shared_ptr<ResultBatch> ResultBatch::Make(size_t pushes, SendDone done) {
  if (pushes == 0) {
    done({});
    return nullptr;
  }
  return std::shared_ptr<ResultBatch>(new ResultBatch(pushes, std::move(done)));
}

ResultBatch::ResultBatch(size_t pushes, SendDone done)
    : results_(pushes), remaining_(pushes), done_(std::move(done)) {}

void ResultBatch::Set(size_t i, Result result) {
  results_[i] = std::move(result);
  // acq_rel: the last setter sees every other setter's result.
  if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) done_(std::move(results_));
}

}  // namespace mpim::service::push
