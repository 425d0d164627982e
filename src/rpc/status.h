// Status across the RPC layer: absl::Status (what services return) and
// grpc::Status (what travels between roles) map one to one: code and
// message (both use the canonical codes of google.rpc.Code), and payloads
// (such as rate_limited's retry_after_ms) as the details of a
// google.rpc.Status in the binary error details (proto/google/rpc); the
// protocol's error codes come from the absl code as before
// (service/errors.h), so a gateway answers a client the same whether the
// service ran in its process or behind gRPC.
//
// Thread-safe: pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include <string>

#include "core/status.h"

namespace google::rpc {
class Status;
}

namespace mpim::rpc {

grpc::Status ToGrpc(const core::Status& status);
core::Status FromGrpc(const grpc::Status& status);

// The same mapping into a google.rpc.Status message (a batch's per-item
// answers: code, message, payloads as details).
void ToProto(const core::Status& status, google::rpc::Status* out);
core::Status FromProto(const google::rpc::Status& status);

// The code as a metrics label: "ok", "unavailable", "deadline_exceeded", ...
std::string CodeLabel(absl::StatusCode code);

}  // namespace mpim::rpc
