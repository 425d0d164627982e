// Status across the RPC layer: absl::Status (what services return) and
// grpc::Status (what travels between roles) map one to one, code and
// message, since both use the canonical codes of google.rpc.Code; the
// protocol's error codes come from the absl code as before
// (service/errors.h), so a gateway answers a client the same whether the
// service ran in its process or behind gRPC.
//
// Thread-safe: pure functions.
#pragma once

#include <grpcpp/support/status.h>

#include "core/status.h"

namespace mpim::rpc {

grpc::Status ToGrpc(const core::Status& status);
core::Status FromGrpc(const grpc::Status& status);

}  // namespace mpim::rpc
