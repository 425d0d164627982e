// Errors in MPIM: absl::Status / absl::StatusOr<T> on every fallible path.
//
// Each protocol error code (docs/protocol.md section 1) is one
// absl::StatusCode; the mapping is one-to-one for the codes MPIM produces:
//
//   protocol code       absl::StatusCode       HTTP
//   invalid_argument    kInvalidArgument       400
//   unauthenticated     kUnauthenticated       401
//   permission_denied   kPermissionDenied      403
//   not_found           kNotFound              404
//   already_exists      kAlreadyExists         409
//   payload_too_large   kOutOfRange            413
//   rate_limited        kResourceExhausted     429 (+ retry_after_ms payload)
//   unavailable         kUnavailable           503
//   internal            kInternal              500
//
// Codes MPIM does not produce itself but a library may (kDeadlineExceeded,
// kAborted, kCancelled) count as `unavailable` (safe to retry); every other
// code counts as `internal`.
//
// All functions here are thread-safe and allocation-light.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mpim::core {

using Status = absl::Status;
template <typename T>
using StatusOr = absl::StatusOr<T>;

// Constructors for the two codes absl has no helper for.
Status PayloadTooLargeError(std::string_view message);
Status RateLimitedError(std::string_view message, int64_t retry_after_ms);

// The retry hint attached by RateLimitedError, if any.
std::optional<int64_t> RetryAfterMs(const Status& status);

// `unauthenticated` that also says the call revoked session `session_id`
// (a reused refresh token), so that a gateway that checks tokens itself
// refuses the session's tokens at once (the payload crosses gRPC; clients
// never see it).
Status SessionRevokedError(std::string_view message, int64_t session_id);
// The session SessionRevokedError named, if any.
std::optional<int64_t> RevokedSession(const Status& status);

// The protocol's name for the status's code, e.g. "not_found". "ok" for OK.
std::string_view ErrorCodeName(const Status& status);

// The HTTP status for an error (200 for OK).
int HttpStatusFor(const Status& status);

// The message a client may see. For `internal` errors this is a fixed text:
// details belong in the log, never in the reply.
std::string PublicMessage(const Status& status);

// {"code":"...","message":"..."} plus "retry_after_ms" when rate limited:
// the `error` object shared by HTTP bodies and WebSocket replies.
std::string ErrorObjectJson(const Status& status);

// The HTTP error body: {"error":{...}}.
std::string ErrorBodyJson(const Status& status);

}  // namespace mpim::core
