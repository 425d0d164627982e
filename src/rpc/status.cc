#include "rpc/status.h"

namespace mpim::rpc {

grpc::Status ToGrpc(const core::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

core::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return core::Status();
  const int code = static_cast<int>(status.error_code());
  // Codes beyond the canonical ones (none today) are unknown.
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(status.error_message());
  }
  return core::Status(static_cast<absl::StatusCode>(code), status.error_message());
}

}  // namespace mpim::rpc
