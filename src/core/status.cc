#include "core/status.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

namespace mpim::core {
namespace {

constexpr absl::string_view kRetryAfterUrl = "mpim/retry_after_ms";
constexpr absl::string_view kRevokedSessionUrl = "mpim/revoked_session";

Status WithIntegerPayload(Status s, absl::string_view url, int64_t value) {
  s.SetPayload(url, absl::Cord(std::to_string(value)));
  return s;
}

std::optional<int64_t> IntegerPayload(const Status& status, absl::string_view url) {
  auto payload = status.GetPayload(url);
  if (!payload) return std::nullopt;
  std::string text(*payload);
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// Debian's Abseil is built with its own string_view type, not std's.
absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

Status PayloadTooLargeError(std::string_view message) {
  return absl::OutOfRangeError(ToAbsl(message));
}

Status RateLimitedError(std::string_view message, int64_t retry_after_ms) {
  return WithIntegerPayload(absl::ResourceExhaustedError(ToAbsl(message)), kRetryAfterUrl,
                            retry_after_ms);
}

std::optional<int64_t> RetryAfterMs(const Status& status) {
  return IntegerPayload(status, kRetryAfterUrl);
}

Status SessionRevokedError(std::string_view message, int64_t session_id) {
  return WithIntegerPayload(absl::UnauthenticatedError(ToAbsl(message)), kRevokedSessionUrl,
                            session_id);
}

std::optional<int64_t> RevokedSession(const Status& status) {
  return IntegerPayload(status, kRevokedSessionUrl);
}

namespace {

struct CodeInfo {
  std::string_view name;
  int http;
};

CodeInfo InfoFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return {"ok", 200};
    case absl::StatusCode::kInvalidArgument:
      return {"invalid_argument", 400};
    case absl::StatusCode::kUnauthenticated:
      return {"unauthenticated", 401};
    case absl::StatusCode::kPermissionDenied:
      return {"permission_denied", 403};
    case absl::StatusCode::kNotFound:
      return {"not_found", 404};
    case absl::StatusCode::kAlreadyExists:
      return {"already_exists", 409};
    case absl::StatusCode::kOutOfRange:
      return {"payload_too_large", 413};
    case absl::StatusCode::kResourceExhausted:
      return {"rate_limited", 429};
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kCancelled:
      return {"unavailable", 503};
    default:
      return {"internal", 500};
  }
}

}  // namespace

std::string_view ErrorCodeName(const Status& status) { return InfoFor(status.code()).name; }

int HttpStatusFor(const Status& status) { return InfoFor(status.code()).http; }

std::string PublicMessage(const Status& status) {
  if (ErrorCodeName(status) == "internal") return "internal error";
  return std::string(status.message());
}

namespace {

boost::json::object ErrorObject(const Status& status) {
  boost::json::object obj;
  obj["code"] = ErrorCodeName(status);
  obj["message"] = PublicMessage(status);
  if (auto retry = RetryAfterMs(status)) obj["retry_after_ms"] = *retry;
  return obj;
}

}  // namespace

std::string ErrorObjectJson(const Status& status) {
  return boost::json::serialize(ErrorObject(status));
}

std::string ErrorBodyJson(const Status& status) {
  boost::json::object body;
  body["error"] = ErrorObject(status);
  return boost::json::serialize(body);
}

}  // namespace mpim::core
