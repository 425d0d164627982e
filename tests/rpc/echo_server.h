// A real gRPC server of mpim.testing.Echo (proto/testing/echo.proto) for the
// RPC layer's tests, with faults on demand: answer, fail with a code, stall
// (answer after a delay, or when the caller gives up), or stop serving
// altogether. It serves grpc.health.v1 too (gRPC's default health service),
// so a test can also turn it NOT_SERVING.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace mpim::testing {

class EchoServer {
 public:
  // Serves on 127.0.0.1 at a port of the system's choosing; replies name
  // the server by `name`.
  explicit EchoServer(std::string name);
  ~EchoServer();

  const std::string& name() const { return name_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // How the next calls are answered.
  void Answer();                     // OK, echoing the payload
  void Fail(grpc::StatusCode code);  // this code at once
  void Stall(int64_t ms);            // OK after `ms`, or CANCELLED if the caller gives up first
  void SetServing(bool serving);     // grpc.health.v1 status

  // Stops serving (the port refuses connections); Start() serves again on
  // the same port.
  void Stop();
  void Start();

  // Echo calls and Chat streams that reached this server, whatever their
  // outcome.
  int64_t calls() const { return calls_.load(); }

  class Service;

 private:
  std::string name_;
  int port_ = 0;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int64_t> calls_{0};
};

}  // namespace mpim::testing
