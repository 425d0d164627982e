#include "rpc/server.h"

#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "rpc/status.h"

namespace mpim::rpc {

namespace {

// The caller's deadline on the steady clock; none when it set none (gRPC
// reports an infinite one).
std::optional<std::chrono::steady_clock::time_point> CallerDeadline(
    const grpc::GenericCallbackServerContext& context) {
  auto wall = context.deadline();
  auto now = std::chrono::system_clock::now();
  if (wall >= now + std::chrono::hours(24 * 365)) return std::nullopt;
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(wall - now);
}

}  // namespace

// One call: read the request, admit it, run the handler, write the answer.
class Server::Reactor final : public grpc::ServerGenericBidiReactor {
 public:
  Reactor(Server* server, grpc::GenericCallbackServerContext* context)
      : server_(server), context_(context), started_ms_(server->clock_.SteadyMs()) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Complete(absl::InvalidArgumentError("the call carried no request"));
      return;
    }
    auto handler = server_->handlers_.find(context_->method());
    if (handler == server_->handlers_.end()) {
      Complete(absl::UnimplementedError(absl::StrCat("no method ", context_->method())));
      return;
    }
    method_ = context_->method();
    if (server_->rate_) {
      policy::RateLimiter::Decision decision = server_->rate_->Allow();
      if (!decision.allowed) {
        server_->shed_.With({"rate"}).Inc();
        Complete(
            core::RateLimitedError("this node is over its call rate", decision.retry_after_ms));
        return;
      }
    }
    permit_ = server_->limiter_->TryAcquire();
    if (!permit_) {
      server_->shed_.With({"in_flight"}).Inc();
      Complete(absl::UnavailableError("overloaded: too many calls in flight on this node"));
      return;
    }
    server_->in_flight_gauge_.Inc();
    CallContext call{
        .method = method_, .peer = context_->peer(), .deadline = CallerDeadline(*context_)};
    if (core::trace::Enabled()) {
      const auto& metadata = context_->client_metadata();
      if (auto it = metadata.find("traceparent"); it != metadata.end()) {
        auto parsed =
            core::trace::SpanContext::Parse(std::string_view(it->second.data(), it->second.size()));
        if (parsed) call.trace = *parsed;
      }
    }
    handler->second(call, request_, [this](core::Status status, grpc::ByteBuffer response) {
      permit_.Release();
      server_->in_flight_gauge_.Dec();
      if (!status.ok()) {
        Complete(status);
        return;
      }
      code_ = absl::StatusCode::kOk;
      response_ = std::move(response);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    });
  }

  void OnDone() override {
    server_->calls_.With({method_, CodeLabel(code_)}).Inc();
    server_->latency_.With({method_}).Observe(
        static_cast<double>(server_->clock_.SteadyMs() - started_ms_) / 1000.0);
    delete this;
  }

 private:
  void Complete(const core::Status& status) {
    code_ = status.code();
    Finish(ToGrpc(status));
  }

  Server* const server_;
  grpc::GenericCallbackServerContext* const context_;
  const int64_t started_ms_;
  std::string method_ = "unknown";  // the metrics label: known methods only
  absl::StatusCode code_ = absl::StatusCode::kUnknown;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
  policy::ConcurrencyLimiter::Permit permit_;
};

namespace {

class GenericService final : public grpc::CallbackGenericService {
 public:
  explicit GenericService(
      std::function<grpc::ServerGenericBidiReactor*(grpc::GenericCallbackServerContext*)> make)
      : make_(std::move(make)) {}
  grpc::ServerGenericBidiReactor* CreateReactor(
      grpc::GenericCallbackServerContext* context) override {
    return make_(context);
  }

 private:
  std::function<grpc::ServerGenericBidiReactor*(grpc::GenericCallbackServerContext*)> make_;
};

}  // namespace

core::Status ServerConfig::Validate() const {
  if (listen.empty()) return absl::InvalidArgumentError("rpc server: listen is empty");
  if (core::Status s = in_flight.Validate(); !s.ok()) return s;
  if (rate) {
    if (core::Status s = rate->Validate(); !s.ok()) return s;
  }
  if (max_message_bytes < 1024) {
    return absl::InvalidArgumentError("rpc server: max_message_bytes must be >= 1024");
  }
  return absl::OkStatus();
}

core::StatusOr<std::unique_ptr<Server>> Server::Create(ServerConfig config, core::Clock& clock,
                                                       core::MetricsRegistry& metrics) {
  if (core::Status valid = config.Validate(); !valid.ok()) return valid;
  std::unique_ptr<Server> server(new Server(std::move(config), clock, metrics));
  auto limiter = policy::ConcurrencyLimiter::Create(server->config_.in_flight);
  if (!limiter.ok()) return limiter.status();
  server->limiter_ = std::move(*limiter);
  if (server->config_.rate) {
    auto rate = policy::RateLimiter::Create(*server->config_.rate, clock);
    if (!rate.ok()) return rate.status();
    server->rate_ = std::move(*rate);
  }
  return server;
}

Server::Server(ServerConfig config, core::Clock& clock, core::MetricsRegistry& metrics)
    : config_(std::move(config)),
      clock_(clock),
      calls_(metrics.Counter("mpim_rpc_server_calls_total",
                             "Calls from other nodes by method and outcome code.",
                             {"method", "code"})),
      latency_(metrics.Histogram("mpim_rpc_server_latency_seconds",
                                 "Calls from other nodes, request read to answer written.",
                                 {"method"})),
      shed_(metrics.Counter("mpim_rpc_server_shed_total",
                            "Calls refused at admission: reason in_flight or rate.", {"reason"})),
      in_flight_gauge_(
          metrics.Gauge("mpim_rpc_server_in_flight", "Calls from other nodes in flight here.")
              .With({})) {}

Server::~Server() { Shutdown(); }

void Server::AddRaw(const std::string& method, RawHandler handler) {
  handlers_[method] = std::move(handler);
}

core::Status Server::Start() {
  grpc::EnableDefaultHealthCheckService(true);
  generic_ = std::make_unique<GenericService>(
      [this](grpc::GenericCallbackServerContext* context) { return new Reactor(this, context); });
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterCallbackGenericService(generic_.get());
  // One server per port: without this, gRPC's SO_REUSEPORT would let a
  // second node bind the port of a running one.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(config_.max_message_bytes);
  builder.SetMaxSendMessageSize(config_.max_message_bytes);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("rpc server: cannot listen on ", config_.listen));
  }
  return absl::OkStatus();
}

std::string Server::address() const {
  std::string host = config_.listen.substr(0, config_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

void Server::SetServing(bool serving) {
  if (server_) server_->GetHealthCheckService()->SetServingStatus(serving);
}

void Server::Shutdown(std::chrono::milliseconds grace) {
  if (!server_ || stopped_.exchange(true)) return;
  server_->Shutdown(std::chrono::system_clock::now() + grace);
}

int64_t Server::shed() const { return limiter_->shed() + (rate_ ? rate_->shed() : 0); }

}  // namespace mpim::rpc
