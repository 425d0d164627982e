// absl::Status <-> grpc::Status (rpc/status.h): every code, the message and
// the payloads cross one to one.
#include "rpc/status.h"

#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace mpim::rpc {
namespace {

TEST(RpcStatus, EveryCodeAndMessageCrossUnchanged) {
  for (int code = 0; code <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++code) {
    core::Status before(static_cast<absl::StatusCode>(code),
                        code == 0 ? "" : "why " + std::to_string(code));
    grpc::Status wire = ToGrpc(before);
    EXPECT_EQ(static_cast<int>(wire.error_code()), code);
    EXPECT_EQ(FromGrpc(wire), before) << code;
  }
}

TEST(RpcStatus, RateLimitedKeepsItsRetryAfter) {
  core::Status before = core::RateLimitedError("slow down", 1234);
  grpc::Status wire = ToGrpc(before);
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(wire.error_details().empty());
  core::Status after = FromGrpc(wire);
  EXPECT_EQ(after.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(after.message(), "slow down");
  EXPECT_EQ(core::RetryAfterMs(after), 1234);
}

TEST(RpcStatus, ARevokedSessionCrossesWithItsId) {
  core::Status after = FromGrpc(ToGrpc(core::SessionRevokedError("reused", 987654321)));
  EXPECT_EQ(after.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(after.message(), "reused");
  EXPECT_EQ(core::RevokedSession(after), 987654321);
  EXPECT_EQ(core::RevokedSession(absl::UnauthenticatedError("bad token")), std::nullopt);
  EXPECT_EQ(core::ErrorBodyJson(after),
            R"({"error":{"code":"unauthenticated","message":"reused"}})");
}

TEST(RpcStatus, BadDetailsAreIgnored) {
  core::Status garbled = FromGrpc(grpc::Status(grpc::StatusCode::UNAVAILABLE, "down", "\xff\xff"));
  EXPECT_EQ(garbled.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(garbled.message(), "down");
  EXPECT_FALSE(core::RetryAfterMs(garbled).has_value());
}

TEST(RpcStatus, CodeLabelsAreLowerSnakeCase) {
  EXPECT_EQ(CodeLabel(absl::StatusCode::kOk), "ok");
  EXPECT_EQ(CodeLabel(absl::StatusCode::kDeadlineExceeded), "deadline_exceeded");
}

// A batch's per-item answers (google.rpc.Status messages) map the same way.
TEST(RpcStatus, TheProtoFormKeepsCodesMessagesAndPayloads) {
  for (int code = 0; code <= static_cast<int>(absl::StatusCode::kUnauthenticated); ++code) {
    core::Status before(static_cast<absl::StatusCode>(code),
                        code == 0 ? "" : "why " + std::to_string(code));
    google::rpc::Status proto;
    ToProto(before, &proto);
    EXPECT_EQ(proto.code(), code);
    EXPECT_EQ(FromProto(proto), before) << code;
  }
  google::rpc::Status proto;
  ToProto(core::RateLimitedError("slow down", 77), &proto);
  core::Status after = FromProto(proto);
  EXPECT_EQ(after.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(core::RetryAfterMs(after), 77);
  ToProto(absl::OkStatus(), &proto);
  EXPECT_EQ(proto.code(), 0);
  EXPECT_EQ(proto.details_size(), 0) << "reused message cleared";
  proto.set_code(99);
  proto.set_message("from the future");
  EXPECT_EQ(FromProto(proto).code(), absl::StatusCode::kUnknown);
}

}  // namespace
}  // namespace mpim::rpc
