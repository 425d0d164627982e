// The edge's active check of a gRPC upstream (clusters with protocol "h2",
// docs/edge.md "HTTP/2 and gRPC"): grpc.health.v1.Health/Check over a
// fresh cleartext HTTP/2 connection (prior knowledge, nghttp2), as gRPC's
// own health checking protocol says: passed when the answer is SERVING
// (HTTP 200, grpc-status 0, HealthCheckResponse.status = 1). Anything else
// (NOT_SERVING, an unknown service, no connection, no answer within the
// timeout) fails, with why.
//
// `done` runs once, on `io`'s thread; not when `io` stops first.
#pragma once

#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <string>

namespace mpim::edge {

// `done(ok, why)`: why is empty when ok.
void CheckGrpcHealth(boost::asio::io_context& io, const std::string& host, uint16_t port,
                     const std::string& service, int64_t timeout_ms,
                     std::function<void(bool ok, std::string why)> done);

// The gRPC message (5-byte length prefix and a protobuf HealthCheckRequest)
// a check sends, and whether an answer's body says SERVING: exposed for
// tests.
std::string GrpcHealthRequest(const std::string& service);
bool GrpcHealthServing(std::string_view body);

}  // namespace mpim::edge
