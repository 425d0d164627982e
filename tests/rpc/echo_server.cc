#include "rpc/echo_server.h"

#include <grpcpp/health_check_service_interface.h>

#include <chrono>
#include <thread>

#include "testing/echo.grpc.pb.h"

namespace mpim::testing {

class EchoServer::Service final : public mpim::testing::Echo::CallbackService {
 public:
  Service(std::string name, std::atomic<int64_t>& calls) : name_(std::move(name)), calls_(calls) {}

  struct Mode {
    grpc::StatusCode code = grpc::StatusCode::OK;
    int64_t stall_ms = 0;
  };

  void Set(Mode mode) {
    std::lock_guard lock(mu_);
    mode_ = mode;
  }

  grpc::ServerUnaryReactor* Echo(grpc::CallbackServerContext* context, const EchoRequest* request,
                                 EchoReply* reply) override {
    calls_.fetch_add(1);
    Mode mode;
    {
      std::lock_guard lock(mu_);
      mode = mode_;
    }
    reply->set_payload(request->payload());
    reply->set_server(name_);
    auto* reactor = new Reactor();
    if (mode.stall_ms > 0) {
      // Finishes after the stall, or at once when the caller cancels (its
      // deadline passed): whichever comes first.
      std::thread([reactor, ms = mode.stall_ms, context] {
        auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        while (std::chrono::steady_clock::now() < until && !context->IsCancelled()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        reactor->Finish(context->IsCancelled() ? grpc::Status::CANCELLED : grpc::Status::OK);
      }).detach();
      return reactor;
    }
    reactor->Finish(mode.code == grpc::StatusCode::OK
                        ? grpc::Status::OK
                        : grpc::Status(mode.code, "injected by EchoServer " + name_));
    return reactor;
  }

  grpc::ServerBidiReactor<EchoRequest, EchoReply>* Chat(grpc::CallbackServerContext*) override {
    calls_.fetch_add(1);
    return new ChatReactor(name_);
  }

 private:
  class Reactor final : public grpc::ServerUnaryReactor {
    void OnDone() override { delete this; }
  };

  // Reads one request, writes its echo, reads the next: one of each in
  // flight at most.
  class ChatReactor final : public grpc::ServerBidiReactor<EchoRequest, EchoReply> {
   public:
    explicit ChatReactor(std::string name) : name_(std::move(name)) { StartRead(&request_); }
    void OnReadDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::OK);  // the caller is done
      reply_.set_payload(request_.payload());
      reply_.set_server(name_);
      StartWrite(&reply_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok) return Finish(grpc::Status::CANCELLED);
      StartRead(&request_);
    }
    void OnDone() override { delete this; }

   private:
    const std::string name_;
    EchoRequest request_;
    EchoReply reply_;
  };

  const std::string name_;
  std::atomic<int64_t>& calls_;
  std::mutex mu_;
  Mode mode_;
};

EchoServer::EchoServer(std::string name)
    : name_(std::move(name)), service_(std::make_unique<Service>(name_, calls_)) {
  Start();
}

EchoServer::~EchoServer() { Stop(); }

void EchoServer::Answer() { service_->Set({}); }
void EchoServer::Fail(grpc::StatusCode code) { service_->Set({.code = code}); }
void EchoServer::Stall(int64_t ms) { service_->Set({.stall_ms = ms}); }

void EchoServer::SetServing(bool serving) {
  if (server_) server_->GetHealthCheckService()->SetServingStatus(serving);
}

void EchoServer::Start() {
  if (server_) return;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port_), grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port == 0) throw std::runtime_error("EchoServer: cannot listen");
  port_ = port;
}

void EchoServer::Stop() {
  if (!server_) return;
  // Calls still stalled are cancelled at once rather than waited for.
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
}

}  // namespace mpim::testing
