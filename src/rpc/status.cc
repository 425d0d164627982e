#include "rpc/status.h"

#include <string>

#include "absl/strings/ascii.h"
#include "google/rpc/status.pb.h"

namespace mpim::rpc {

grpc::Status ToGrpc(const core::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  google::rpc::Status details;
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    google::protobuf::Any* any = details.add_details();
    any->set_type_url(std::string(url));
    any->set_value(std::string(payload));
  });
  if (details.details_size() == 0) {
    return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
  }
  details.set_code(static_cast<int32_t>(status.code()));
  details.set_message(message);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message,
                      details.SerializeAsString());
}

core::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return core::Status();
  const int code = static_cast<int>(status.error_code());
  // Codes beyond the canonical ones (none today) are unknown.
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::UnknownError(status.error_message());
  }
  core::Status result(static_cast<absl::StatusCode>(code), status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    for (const google::protobuf::Any& any : details.details()) {
      result.SetPayload(any.type_url(), absl::Cord(any.value()));
    }
  }
  return result;
}

std::string CodeLabel(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

}  // namespace mpim::rpc
