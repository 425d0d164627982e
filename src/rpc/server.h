// The server side of calls between roles: one gRPC server per node (the
// address other nodes reach it at, discovery's Node::address) with the
// node's services registered as typed handlers by full method name. Every
// call passes one admission point before its handler runs:
//   - a rate limit (GCRA, policy/rate_limiter.h), when configured, refuses
//     with `resource_exhausted` carrying retry_after_ms (the protocol's
//     rate_limited);
//   - a limit on calls in flight (policy/concurrency_limiter.h) refuses with
//     `unavailable` ("overloaded"), which clients retry on another node;
// so the server sheds load at once instead of queueing without bound. It
// serves grpc.health.v1 (gRPC's default health service; SetServing), and
// counts calls by method and code, latency, calls in flight and calls shed
// (mpim_rpc_server_*).
//
// Handlers run on gRPC's threads and must not block: they start the work
// (a service call that takes a callback) and call `done` once, from any
// thread. The caller's deadline is in CallContext; pass it on as
// CallOptions::deadline to every call the handler makes (rpc/client.h).
#pragma once

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/proto_utils.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "core/status.h"
#include "core/trace.h"
#include "rpc/policy/concurrency_limiter.h"
#include "rpc/policy/rate_limiter.h"

namespace mpim::rpc {

struct ServerConfig {
  std::string listen = "127.0.0.1:0";  // HOST:PORT; port 0: the system's choice (port())
  policy::ConcurrencyLimiterConfig in_flight{.max_in_flight = 1000};
  std::optional<policy::RateLimiterConfig> rate;  // none: no rate limit
  int max_message_bytes = 4 << 20;

  [[nodiscard]] core::Status Validate() const;
};

struct CallContext {
  std::string method;
  std::string peer;
  // The caller's deadline, if it set one.
  std::optional<std::chrono::steady_clock::time_point> deadline;
  // The caller's trace (its `traceparent` metadata); invalid when none.
  core::trace::SpanContext trace;
};

class Server {
 public:
  using Done = std::function<void(core::Status)>;
  template <typename Request, typename Response>
  using Handler = std::function<void(const CallContext& context, const Request& request,
                                     Response* response, Done done)>;

  // kInvalidArgument for a bad config. Register handlers, then Start().
  static core::StatusOr<std::unique_ptr<Server>> Create(ServerConfig config, core::Clock& clock,
                                                        core::MetricsRegistry& metrics);
  ~Server();  // Shutdown()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves `method` ("/package.Service/Method") with `handler`. Before
  // Start() only.
  template <typename Request, typename Response>
  void Handle(const std::string& method, Handler<Request, Response> handler);

  // Binds and serves. kUnavailable when the address cannot be bound.
  core::Status Start();
  // The bound port (after Start).
  int port() const { return port_; }
  std::string address() const;

  // What grpc.health.v1 Check answers: SERVING or NOT_SERVING (a draining
  // node says NOT_SERVING first, so clients move off it).
  void SetServing(bool serving);

  // Stops taking calls; calls in flight get `grace` to finish, then are
  // cancelled. Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds(0));

  // For metrics and tests: calls in flight now; calls shed so far.
  int64_t in_flight() const { return limiter_->in_flight(); }
  int64_t shed() const;

  class Reactor;  // server.cc

 private:
  // A handler on serialized messages: parse, run, serialize.
  using RawDone = std::function<void(core::Status, grpc::ByteBuffer)>;
  using RawHandler =
      std::function<void(const CallContext&, grpc::ByteBuffer& request, RawDone done)>;

  Server(ServerConfig config, core::Clock& clock, core::MetricsRegistry& metrics);
  void AddRaw(const std::string& method, RawHandler handler);

  const ServerConfig config_;
  core::Clock& clock_;
  std::unique_ptr<policy::ConcurrencyLimiter> limiter_;
  std::unique_ptr<policy::RateLimiter> rate_;
  std::map<std::string, RawHandler, std::less<>> handlers_;

  core::CounterFamily& calls_;
  core::HistogramFamily& latency_;
  core::CounterFamily& shed_;
  core::Gauge& in_flight_gauge_;

  std::unique_ptr<grpc::CallbackGenericService> generic_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
};

template <typename Request, typename Response>
void Server::Handle(const std::string& method, Handler<Request, Response> handler) {
  AddRaw(method, [handler = std::move(handler)](const CallContext& context, grpc::ByteBuffer& bytes,
                                                RawDone done) {
    auto request = std::make_shared<Request>();
    grpc::Status parsed = grpc::SerializationTraits<Request>::Deserialize(&bytes, request.get());
    if (!parsed.ok()) {
      done(absl::InvalidArgumentError("cannot parse the request of " + context.method), {});
      return;
    }
    auto response = std::make_shared<Response>();
    handler(context, *request, response.get(),
            [request, response, done = std::move(done)](core::Status status) {
              grpc::ByteBuffer out;
              if (status.ok()) {
                bool own = false;
                grpc::Status wrote =
                    grpc::SerializationTraits<Response>::Serialize(*response, &out, &own);
                if (!wrote.ok()) status = absl::InternalError("cannot serialize the response");
              }
              done(std::move(status), std::move(out));
            });
  });
}

}  // namespace mpim::rpc
