#include "rpc/status.h"

#include <string>

#include "absl/strings/ascii.h"
#include "google/rpc/status.pb.h"

namespace mpim::rpc {

namespace {

// Codes beyond the canonical ones (none today) are unknown.
bool Canonical(int code) {
  return code >= 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated);
}

void AddPayloads(const core::Status& status, google::rpc::Status* out) {
  status.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    google::protobuf::Any* any = out->add_details();
    any->set_type_url(std::string(url));
    any->set_value(std::string(payload));
  });
}

void TakePayloads(const google::rpc::Status& details, core::Status* status) {
  for (const google::protobuf::Any& any : details.details()) {
    status->SetPayload(any.type_url(), absl::Cord(any.value()));
  }
}

}  // namespace

grpc::Status ToGrpc(const core::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message());
  google::rpc::Status details;
  AddPayloads(status, &details);
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
  if (!Canonical(code)) return absl::UnknownError(status.error_message());
  core::Status result(static_cast<absl::StatusCode>(code), status.error_message());
  google::rpc::Status details;
  if (!status.error_details().empty() && details.ParseFromString(status.error_details())) {
    TakePayloads(details, &result);
  }
  return result;
}

void ToProto(const core::Status& status, google::rpc::Status* out) {
  out->Clear();
  if (status.ok()) return;
  out->set_code(static_cast<int32_t>(status.code()));
  out->set_message(std::string(status.message()));
  AddPayloads(status, out);
}

core::Status FromProto(const google::rpc::Status& status) {
  if (status.code() == 0) return core::Status();
  if (!Canonical(status.code())) return absl::UnknownError(status.message());
  core::Status result(static_cast<absl::StatusCode>(status.code()), status.message());
  TakePayloads(status, &result);
  return result;
}

std::string CodeLabel(absl::StatusCode code) {
  return absl::AsciiStrToLower(absl::StatusCodeToString(code));
}

}  // namespace mpim::rpc
