// A unary internal call between two processes at a fixed rate (issue 20:
// "a unary internal call's CPU cost and p99 at 20,000 calls/s"): this
// process calls a child process's rpc::Server (an echo handler that answers
// at once) open-loop at --rate calls/s for --seconds, twice in one run:
//   mpim  through rpc::Client (discovery, balancer, breaker, retry budget,
//         metrics, a pool of 2 channels), as the roles will call;
//   raw   through grpc::GenericStub on one channel: gRPC alone, the peer.
// Latency runs from each call's scheduled start (no coordinated omission);
// CPU is user + system time of each process over the measured window,
// per call.
//
//   build/bin/rpc_bench [--rate 20000] [--seconds 10] [--payload 200]
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/histogram.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "discovery/static_discovery.h"
#include "rpc/client.h"
#include "rpc/server.h"
#include "testing/echo.pb.h"

namespace mpim {
namespace {

using testing::EchoReply;
using testing::EchoRequest;
using Clock = std::chrono::steady_clock;

constexpr char kEcho[] = "/mpim.testing.Echo/Echo";

struct Options {
  int rate = 20000;
  int seconds = 10;
  int payload = 200;
};

// The child: serve until killed, after writing the port to `pipe_fd`.
[[noreturn]] void Serve(int pipe_fd) {
  core::MetricsRegistry metrics;
  auto server =
      rpc::Server::Create({.in_flight = {.max_in_flight = 100000}}, core::SystemClock(), metrics);
  if (!server.ok()) _exit(1);
  (*server)->Handle<EchoRequest, EchoReply>(
      kEcho, [](const rpc::CallContext&, const EchoRequest& request, EchoReply* reply,
                rpc::Server::Done done) {
        reply->set_payload(request.payload());
        done(absl::OkStatus());
      });
  if (!(*server)->Start().ok()) _exit(1);
  int port = (*server)->port();
  if (write(pipe_fd, &port, sizeof port) != sizeof port) _exit(1);
  while (true) pause();
}

// User + system CPU seconds of `pid` (/proc/<pid>/stat fields 14 and 15).
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

struct Result {
  uint64_t done = 0;
  uint64_t errors = 0;
  double seconds = 0;
  double client_cpu = 0;
  double server_cpu = 0;
  bench::Histogram latency_us;
};

// Issues `rate` calls/s for `seconds` through `call(index, on_done)`, each
// on_done(ok) recording the latency from the call's scheduled start.
template <typename Call>
Result OpenLoop(const Options& options, pid_t server, Call call) {
  const uint64_t total = static_cast<uint64_t>(options.rate) * options.seconds;
  std::vector<std::atomic<int64_t>> latency_ns(total);
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
  const auto interval = std::chrono::nanoseconds(1'000'000'000LL / options.rate);
  double client_before = CpuSeconds(getpid());
  double server_before = CpuSeconds(server);
  const auto start = Clock::now();
  for (uint64_t i = 0; i < total; ++i) {
    auto due = start + interval * i;
    auto now = Clock::now();
    if (due > now + std::chrono::microseconds(200)) std::this_thread::sleep_until(due);
    call(i, [&, i, due](bool ok) {
      // A call sent up to 200 us early may finish before it was due: 0.
      latency_ns[i].store(std::max<int64_t>(0, (Clock::now() - due).count()),
                          std::memory_order_relaxed);
      if (!ok) errors.fetch_add(1, std::memory_order_relaxed);
      completed.fetch_add(1, std::memory_order_release);
    });
  }
  while (completed.load(std::memory_order_acquire) < total) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  Result result;
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.client_cpu = CpuSeconds(getpid()) - client_before;
  result.server_cpu = CpuSeconds(server) - server_before;
  result.done = total;
  result.errors = errors.load();
  for (auto& ns : latency_ns) result.latency_us.Record(static_cast<uint64_t>(ns.load()) / 1000);
  return result;
}

void Print(const char* name, const Result& r) {
  auto& h = r.latency_us;
  std::printf("%-5s %9.0f %7llu %7llu %7llu %7llu %8llu %8llu %9.1f %9.1f\n", name,
              static_cast<double>(r.done) / r.seconds, static_cast<unsigned long long>(r.errors),
              static_cast<unsigned long long>(h.Percentile(50)),
              static_cast<unsigned long long>(h.Percentile(90)),
              static_cast<unsigned long long>(h.Percentile(99)),
              static_cast<unsigned long long>(h.Percentile(99.9)),
              static_cast<unsigned long long>(h.max()), r.client_cpu * 1e6 / r.done,
              r.server_cpu * 1e6 / r.done);
}

int Main(const Options& options) {
  int fds[2];
  if (pipe(fds) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(fds[0]);
    Serve(fds[1]);
  }
  close(fds[1]);
  int port = 0;
  if (read(fds[0], &port, sizeof port) != sizeof port) {
    std::fprintf(stderr, "rpc_bench: the server did not start\n");
    return 1;
  }
  std::string address = "127.0.0.1:" + std::to_string(port);
  EchoRequest request;
  request.set_payload(std::string(static_cast<size_t>(options.payload), 'x'));

  std::printf("unary echo, %d B payload, %d calls/s for %d s, server in another process\n",
              options.payload, options.rate, options.seconds);
  std::printf("%-5s %9s %7s %7s %7s %7s %8s %8s %9s %9s\n", "path", "calls/s", "errors", "p50 us",
              "p90 us", "p99 us", "p99.9 us", "max us", "cli us/c", "srv us/c");

  // mpim: through rpc::Client.
  {
    discovery::StaticDiscovery discovery({"logic=" + address});
    core::MetricsRegistry metrics;
    auto client = rpc::Client::Create({.role = "logic"}, discovery, core::SystemClock(), metrics);
    if (!client.ok()) return 1;
    std::vector<EchoReply> replies(static_cast<size_t>(options.rate) * options.seconds);
    // Warm up: connections made, first calls through.
    for (int i = 0; i < 1000; ++i) {
      EchoReply reply;
      (void)(*client)->CallAndWait(kEcho, request, &reply);
    }
    Result r = OpenLoop(options, child, [&](uint64_t i, auto on_done) {
      (*client)->Call(kEcho, request, &replies[i], {},
                      [on_done](core::Status status) { on_done(status.ok()); });
    });
    Print("mpim", r);
  }
  // raw: gRPC's generic stub on one channel.
  {
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    grpc::TemplatedGenericStub<google::protobuf::Message, google::protobuf::Message> stub(channel);
    size_t n = static_cast<size_t>(options.rate) * options.seconds;
    std::vector<EchoReply> replies(n);
    std::vector<std::unique_ptr<grpc::ClientContext>> contexts(n);
    for (int i = 0; i < 1000; ++i) {
      grpc::ClientContext context;
      EchoReply reply;
      std::promise<void> done;
      stub.UnaryCall(&context, kEcho, grpc::StubOptions(), &request, &reply,
                     [&](grpc::Status) { done.set_value(); });
      done.get_future().wait();
    }
    Result r = OpenLoop(options, child, [&](uint64_t i, auto on_done) {
      contexts[i] = std::make_unique<grpc::ClientContext>();
      contexts[i]->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      stub.UnaryCall(contexts[i].get(), kEcho, grpc::StubOptions(), &request, &replies[i],
                     [on_done, &contexts, i](grpc::Status status) {
                       contexts[i].reset();  // as rpc::Client frees its contexts
                       on_done(status.ok());
                     });
    });
    Print("raw", r);
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return 0;
}

}  // namespace
}  // namespace mpim

int main(int argc, char** argv) {
  mpim::Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int value = std::atoi(argv[i + 1]);
    if (flag == "--rate" && value > 0) {
      options.rate = value;
    } else if (flag == "--seconds" && value > 0) {
      options.seconds = value;
    } else if (flag == "--payload" && value >= 0) {
      options.payload = value;
    } else {
      std::fprintf(stderr, "usage: rpc_bench [--rate N] [--seconds N] [--payload BYTES]\n");
      return 2;
    }
  }
  return mpim::Main(options);
}
