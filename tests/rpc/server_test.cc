// The RPC server (src/rpc/server.h) called by the RPC client over real
// gRPC: typed handlers, errors and payloads one to one, the caller's
// deadline in the handler, admission by calls in flight and by rate, bad
// requests, unknown methods, health, shutdown and metrics.
#include "rpc/server.h"

#include <grpcpp/generic/generic_stub.h>

#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "rpc/client.h"
#include "support/fakes/fake_discovery.h"
#include "support/metrics_text.h"
#include "testing/echo.pb.h"

namespace mpim::rpc {
namespace {

using testing::EchoReply;
using testing::EchoRequest;

constexpr char kEcho[] = "/mpim.testing.Echo/Echo";

class ServerTest : public ::testing::Test {
 protected:
  // A server with the Echo method answered by `handler`, listed in
  // discovery as the one logic node, and a client of it.
  void Serve(Server::Handler<EchoRequest, EchoReply> handler, ServerConfig config = {}) {
    auto server = Server::Create(std::move(config), core::SystemClock(), metrics_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    server_->Handle<EchoRequest, EchoReply>(kEcho, std::move(handler));
    ASSERT_TRUE(server_->Start().ok());
    discovery_.Set({{.name = "logic-0", .role = "logic", .address = server_->address()}});
    auto client = Client::Create({.role = "logic", .health_interval_ms = 50}, discovery_,
                                 core::SystemClock(), metrics_);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(*client);
  }

  core::StatusOr<std::string> Echo(const std::string& payload, CallOptions options = {}) {
    EchoRequest request;
    request.set_payload(payload);
    EchoReply reply;
    core::Status status = client_->CallAndWait(kEcho, request, &reply, std::move(options));
    if (!status.ok()) return status;
    return reply.payload();
  }

  // Handlers that hold their calls until Release().
  Server::Handler<EchoRequest, EchoReply> Holding() {
    return [this](const CallContext&, const EchoRequest& request, EchoReply* reply,
                  Server::Done done) {
      reply->set_payload(request.payload());
      std::lock_guard lock(mu_);
      held_.push_back(std::move(done));
    };
  }
  size_t Held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  void Release() {
    std::vector<Server::Done> held;
    {
      std::lock_guard lock(mu_);
      held.swap(held_);
    }
    for (auto& done : held) done(absl::OkStatus());
  }

  core::MetricsRegistry metrics_;
  testing::FakeDiscovery discovery_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_;
  std::mutex mu_;
  std::vector<Server::Done> held_;
};

Server::Handler<EchoRequest, EchoReply> Echoing() {
  return [](const CallContext& context, const EchoRequest& request, EchoReply* reply,
            Server::Done done) {
    reply->set_payload(request.payload());
    reply->set_server(context.method);
    done(absl::OkStatus());
  };
}

TEST_F(ServerTest, AnswersThroughTheTypedHandler) {
  Serve(Echoing());
  EXPECT_EQ(*Echo("hello"), "hello");
  // An answer from another thread, later.
  server_.reset();
  Serve([](const CallContext&, const EchoRequest& request, EchoReply* reply, Server::Done done) {
    std::thread([request, reply, done = std::move(done)] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      reply->set_payload(request.payload() + "!");
      done(absl::OkStatus());
    }).detach();
  });
  EXPECT_EQ(*Echo("later"), "later!");
}

TEST_F(ServerTest, ErrorsAndTheirPayloadsReachTheCallerUnchanged) {
  std::vector<core::Status> answers = {
      absl::NotFoundError("no such user"), absl::PermissionDeniedError("not a member"),
      absl::InvalidArgumentError("text too long"), core::RateLimitedError("slow down", 750),
      absl::FailedPreconditionError("blocked")};
  size_t next = 0;
  Serve([&](const CallContext&, const EchoRequest&, EchoReply*, Server::Done done) {
    done(answers[next++]);
  });
  for (const core::Status& expected : answers) {
    auto answered = Echo("x");
    ASSERT_FALSE(answered.ok());
    EXPECT_EQ(answered.status(), expected);
  }
  EXPECT_EQ(core::RetryAfterMs(answers[3]), 750);
}

TEST_F(ServerTest, TheHandlerSeesTheCallersDeadline) {
  std::optional<std::chrono::steady_clock::time_point> seen;
  Serve([&](const CallContext& context, const EchoRequest&, EchoReply*, Server::Done done) {
    seen = context.deadline;
    done(absl::OkStatus());
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  ASSERT_TRUE(Echo("x", {.deadline = deadline}).ok());
  ASSERT_TRUE(seen.has_value());
  // The same instant, give or take the clocks' conversion and the trip.
  EXPECT_LT(std::chrono::abs(*seen - deadline), std::chrono::milliseconds(100));
}

TEST_F(ServerTest, CallsBeyondTheInFlightLimitAreShedWithUnavailable) {
  Serve(Holding(), {.in_flight = {.max_in_flight = 2}});
  EchoRequest request;
  std::vector<EchoReply> replies(2);
  std::atomic<int> ok{0};
  for (auto& reply : replies) {
    client_->Call(kEcho, request, &reply, {}, [&](core::Status s) { ok += s.ok() ? 1 : 0; });
  }
  for (int i = 0; i < 200 && Held() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_EQ(Held(), 2U);
  EXPECT_EQ(server_->in_flight(), 2);
  auto shed = Echo("third");
  EXPECT_EQ(shed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(shed.status().message().find("overloaded"), std::string_view::npos);
  Release();
  for (int i = 0; i < 200 && ok.load() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(ok.load(), 2);
  // Room again.
  std::thread release([this] {
    for (int i = 0; i < 200 && Held() == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    Release();
  });
  EXPECT_TRUE(Echo("fourth").ok());
  release.join();
  EXPECT_EQ(testing::SeriesValue(metrics_.Exposition(),
                                 R"(mpim_rpc_server_shed_total{reason="in_flight"})"),
            1);
}

TEST_F(ServerTest, CallsOverTheRateAreRefusedAsRateLimitedWithRetryAfter) {
  Serve(Echoing(), {.rate = policy::RateLimiterConfig{.rate_per_sec = 1, .burst = 3}});
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(Echo("x").ok()) << i;
  auto refused = Echo("x");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  auto retry_after = core::RetryAfterMs(refused.status());
  ASSERT_TRUE(retry_after.has_value());
  EXPECT_GE(*retry_after, 1);
  EXPECT_LE(*retry_after, 1000);
  EXPECT_EQ(server_->shed(), 1);
}

TEST_F(ServerTest, UnknownMethodsAndUnparsableRequestsGetTheirCodes) {
  Serve(Echoing());
  EchoRequest request;
  EchoReply reply;
  core::Status unknown = client_->CallAndWait("/mpim.testing.Echo/Nope", request, &reply);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kUnimplemented);

  // Bytes that are no EchoRequest (field 1 as a varint of 10 bytes of 0xff).
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  std::string garbage(11, '\xff');
  garbage[0] = '\x08';
  grpc::Slice slice(garbage);
  grpc::ByteBuffer bytes(&slice, 1);
  grpc::ByteBuffer out;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> result;
  stub.UnaryCall(&context, kEcho, grpc::StubOptions(), &bytes, &out,
                 [&](grpc::Status status) { result.set_value(status); });
  grpc::Status status = result.get_future().get();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  // The server goes on.
  EXPECT_EQ(*Echo("still here"), "still here");
}

TEST_F(ServerTest, NotServingTakesTheNodeOutOfItsClientsBalancers) {
  Serve(Echoing());
  ASSERT_TRUE(client_->Endpoints()[0].healthy);
  server_->SetServing(false);
  for (int i = 0; i < 100 && client_->Endpoints()[0].healthy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(client_->Endpoints()[0].healthy);
  server_->SetServing(true);
  for (int i = 0; i < 100 && !client_->Endpoints()[0].healthy; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(client_->Endpoints()[0].healthy);
}

TEST_F(ServerTest, CountsCallsByMethodAndCode) {
  Serve(Echoing());
  ASSERT_TRUE(Echo("a").ok());
  ASSERT_TRUE(Echo("b").ok());
  // OnDone, which counts (calls, then latency), may run just after the
  // caller has its answer.
  std::string calls =
      std::string(R"(mpim_rpc_server_calls_total{method=")") + kEcho + R"(",code="ok"})";
  std::string latency =
      std::string(R"(mpim_rpc_server_latency_seconds_count{method=")") + kEcho + "\"}";
  std::string exposition;
  for (int i = 0; i < 200; ++i) {
    exposition = metrics_.Exposition();
    if (testing::SeriesValue(exposition, calls) == 2 &&
        testing::SeriesValue(exposition, latency) == 2) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(testing::SeriesValue(exposition, calls), 2);
  EXPECT_EQ(testing::SeriesValue(exposition, latency), 2);
}

TEST_F(ServerTest, RefusesBadConfigsAndAnAddressInUse) {
  EXPECT_FALSE(Server::Create({.listen = ""}, core::SystemClock(), metrics_).ok());
  EXPECT_FALSE(
      Server::Create({.in_flight = {.max_in_flight = 0}}, core::SystemClock(), metrics_).ok());
  Serve(Echoing());
  auto second = Server::Create({.listen = server_->address()}, core::SystemClock(), metrics_);
  ASSERT_TRUE(second.ok());
  core::Status started = (*second)->Start();
  EXPECT_EQ(started.code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mpim::rpc
