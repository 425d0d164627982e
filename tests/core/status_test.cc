#include "core/status.h"

#include <gtest/gtest.h>

namespace mpim::core {
namespace {

TEST(StatusTest, EveryProtocolCodeMapsToItsHttpStatus) {
  struct Case {
    Status status;
    std::string_view code;
    int http;
  };
  const Case cases[] = {
      {absl::InvalidArgumentError("x"), "invalid_argument", 400},
      {absl::UnauthenticatedError("x"), "unauthenticated", 401},
      {absl::PermissionDeniedError("x"), "permission_denied", 403},
      {absl::NotFoundError("x"), "not_found", 404},
      {absl::AlreadyExistsError("x"), "already_exists", 409},
      {PayloadTooLargeError("x"), "payload_too_large", 413},
      {RateLimitedError("x", 250), "rate_limited", 429},
      {absl::UnavailableError("x"), "unavailable", 503},
      {absl::DeadlineExceededError("x"), "unavailable", 503},
      {absl::InternalError("x"), "internal", 500},
      {absl::UnimplementedError("x"), "internal", 500},
      {absl::OkStatus(), "ok", 200},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(ErrorCodeName(c.status), c.code) << c.status;
    EXPECT_EQ(HttpStatusFor(c.status), c.http) << c.status;
  }
}

TEST(StatusTest, ErrorBodyFollowsTheProtocol) {
  EXPECT_EQ(ErrorBodyJson(absl::NotFoundError("group 77 not found")),
            R"({"error":{"code":"not_found","message":"group 77 not found"}})");
  EXPECT_EQ(ErrorObjectJson(RateLimitedError("slow down", 1500)),
            R"({"code":"rate_limited","message":"slow down","retry_after_ms":1500})");
  EXPECT_EQ(RetryAfterMs(RateLimitedError("x", 7)), 7);
  EXPECT_EQ(RetryAfterMs(absl::NotFoundError("x")), std::nullopt);
}

TEST(StatusTest, InternalDetailsNeverReachTheClient) {
  EXPECT_EQ(ErrorBodyJson(absl::InternalError("sqlite: disk image is malformed at /secret/path")),
            R"({"error":{"code":"internal","message":"internal error"}})");
}

}  // namespace
}  // namespace mpim::core
