// The bus on Redis under load, on a redis-server of its own (no
// persistence, loopback): how many messages a second go through, and how
// long one takes, per engine.
//
//   streams        Append -> consumer handler -> Ack (one XACK per batch):
//                  kMessages entries through one consumer (XREADGROUP COUNT
//                  kBatch), appends pipelined with at most kWindow in flight.
//   pubsub topic   Publish -> subscriber (PUBLISH / SUBSCRIBE).
//   streams topic  Publish -> subscriber (XADD / XREAD BLOCK).
// Topics keep at most kWindow messages published and not yet received.
// Latency: from the Append/Publish call to the handler; throughput: messages
// over the time from the first call to the last ack (streams) or receipt.
// Prints figures only; nothing here fails on timing.
//
//   build/bin/bus_bench [messages]
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bus/redis_bus.h"
#include "support/redis_server.h"

namespace mpim::bus {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr size_t kWindow = 4000;  // calls in flight at most
constexpr size_t kBatch = 512;    // entries per consumer handler call
constexpr size_t kPayload = 100;  // bytes

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string Payload(size_t i) {
  std::string p(kPayload, 'x');
  auto r = std::to_chars(p.data(), p.data() + 20, i);
  *r.ptr = ' ';
  return p;
}

size_t IndexOf(std::string_view p) {
  size_t i = 0;
  std::from_chars(p.data(), p.data() + std::min<size_t>(p.size(), 20), i);
  return i;
}

// Limits the calls in flight.
class Window {
 public:
  void Acquire() {
    std::unique_lock lock(mu_);
    // A message lost (at most once) must not stall the run.
    cv_.wait_for(lock, 1s, [this] { return in_flight_ < kWindow; });
    ++in_flight_;
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      if (in_flight_ > 0) --in_flight_;
    }
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t in_flight_ = 0;
};

struct Run {
  explicit Run(size_t n) : sent(n, 0), received(n, 0) {}
  std::vector<int64_t> sent, received;
  std::atomic<size_t> got{0}, done{0}, failed{0}, duplicates{0};
  int64_t start = 0;
  std::atomic<int64_t> end{0};

  void Receive(size_t i) {
    if (i >= received.size()) return;
    if (received[i] != 0) {
      ++duplicates;
      return;
    }
    received[i] = Now();
  }
  void Report(const char* engine, size_t n) {
    std::vector<int64_t> lat;
    for (size_t i = 0; i < n; ++i) {
      if (received[i] != 0 && sent[i] != 0) lat.push_back(received[i] - sent[i]);
    }
    std::sort(lat.begin(), lat.end());
    auto pct = [&](double q) {
      return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(q * lat.size()))] / 1e6;
    };
    const double secs = (end.load() - start) / 1e9;
    std::printf("%-16s %8zu msgs  %9.0f msgs/s  p50 %7.2f ms  p99 %7.2f ms  lost %zu  failed %zu  dup %zu\n",
                engine, n, lat.size() / secs, pct(0.50), pct(0.99), n - lat.size(), failed.load(),
                duplicates.load());
  }
};

void WaitFor(const std::function<bool()>& done, std::chrono::seconds deadline) {
  const auto until = Clock::now() + deadline;
  while (!done() && Clock::now() < until) std::this_thread::sleep_for(1ms);
}

std::unique_ptr<RedisBus> Open(const testing::RedisServer& server, RedisBusOptions::Topics t,
                               const std::string& prefix) {
  RedisBusOptions o;
  o.topics = t;
  o.url = server.Url();
  o.prefix = prefix;
  o.timeout = 5000ms;
  o.stream_max_len = 1'000'000;
  auto bus = RedisBus::Open(o);
  if (!bus.ok()) {
    std::fprintf(stderr, "bus: %s\n", std::string(bus.status().message()).c_str());
    std::exit(1);
  }
  WaitFor([&] { return (*bus)->connected(); }, 10s);
  return std::move(*bus);
}

// Sleeps so that message i leaves at start + i / rate (rate 0: at once).
void Pace(int64_t start, size_t i, double rate) {
  if (rate <= 0 || i % 50 != 0) return;
  const int64_t at = start + static_cast<int64_t>(i / rate * 1e9);
  const int64_t wait = at - Now();
  if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
}

void Streams(testing::RedisServer& server, size_t n, double rate, const char* label) {
  auto bus = Open(server, RedisBusOptions::Topics::kStreams, std::string("bench:") + label + ":");
  Run run(n);
  std::atomic<size_t> acked{0};
  ConsumerOptions options{"g", "c1", kBatch, 60s, 5};
  Bus* b = bus.get();
  auto consumer = bus->Consume("jobs", options, [&](std::vector<Entry> entries) {
    std::vector<std::string> ids;
    ids.reserve(entries.size());
    for (Entry& e : entries) {
      run.Receive(IndexOf(e.payload));
      ids.push_back(std::move(e.id));
    }
    const size_t count = ids.size();
    b->Ack("jobs", "g", std::move(ids), [&, count](core::Status s) {
      if (!s.ok()) run.failed += count;
      if ((acked += count) >= n) run.end = Now();
    });
  });
  // The group exists once the consumer reads: a first entry through it.
  std::atomic<bool> warm{false};
  bus->Append("warm", "x", [&](core::StatusOr<std::string>) { warm = true; });
  WaitFor([&] { return warm.load(); }, 10s);
  std::this_thread::sleep_for(200ms);  // the consumer's XGROUP CREATE and first XREADGROUP

  Window window;
  run.start = Now();
  for (size_t i = 0; i < n; ++i) {
    Pace(run.start, i, rate);
    window.Acquire();
    run.sent[i] = Now();
    bus->Append("jobs", Payload(i), [&](core::StatusOr<std::string> id) {
      if (!id.ok()) ++run.failed;
      window.Release();
    });
  }
  WaitFor([&] { return acked.load() + run.failed.load() >= n; }, 120s);
  if (run.end == 0) run.end = Now();
  run.Report(label, n);
  const std::string pending =
      server.Command({"XPENDING", std::string("bench:") + label + ":jobs", "g"});
  std::printf("%-16s pending after the run: %s\n", "", pending.substr(0, pending.find('\n')).c_str());
}

void Topic(const testing::RedisServer& server, RedisBusOptions::Topics t, const char* name,
           size_t n, double rate) {
  auto bus = Open(server, t, std::string("bench:") + name + ":");
  Run run(n);
  // The window closes on receipt: Pub/Sub has no flow control, and a
  // subscriber that falls behind by Redis's client-output-buffer-limit
  // (pubsub 32 MB) is disconnected.
  Window window;
  auto sub = bus->Subscribe("t", [&](std::string_view payload) {
    run.Receive(IndexOf(payload));
    window.Release();
    if (++run.got >= n) run.end = Now();
  }, nullptr);
  // Subscribed (and, for streams, reading) once a probe arrives.
  std::atomic<bool> ready{false};
  auto probe = bus->Subscribe("probe", [&](std::string_view) { ready = true; }, nullptr);
  WaitFor([&] {
    bus->Publish("probe", "x", nullptr);
    std::this_thread::sleep_for(20ms);
    return ready.load();
  }, 10s);
  std::this_thread::sleep_for(100ms);

  run.start = Now();
  for (size_t i = 0; i < n; ++i) {
    Pace(run.start, i, rate);
    window.Acquire();
    run.sent[i] = Now();
    bus->Publish("t", Payload(i), [&](core::Status s) {
      if (!s.ok()) ++run.failed;
    });
  }
  WaitFor([&] { return run.got.load() >= n; }, 30s);
  if (run.end == 0) run.end = Now();
  run.Report(name, n);
}

}  // namespace
}  // namespace mpim::bus

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 300'000;
  mpim::testing::RedisServer server;
  if (!server.Start()) {
    std::fprintf(stderr, "redis-server: %s\n", server.error().c_str());
    return 1;
  }
  std::printf("bus_bench: %zu messages of %zu bytes each, window %zu, batch %zu, redis-server on "
              "127.0.0.1:%u\n",
              n, mpim::bus::kPayload, mpim::bus::kWindow, mpim::bus::kBatch, server.port());
  using mpim::bus::RedisBusOptions;
  std::printf("as fast as possible (throughput; latency includes the queue of %zu in flight):\n",
              mpim::bus::kWindow);
  mpim::bus::Streams(server, n, 0, "streams");
  mpim::bus::Topic(server, RedisBusOptions::Topics::kPubSub, "pubsub topic", n, 0);
  mpim::bus::Topic(server, RedisBusOptions::Topics::kStreams, "streams topic", n, 0);
  constexpr double kRate = 20'000;
  const size_t paced = static_cast<size_t>(kRate);  // one second each
  std::printf("paced at %.0f msgs/s (latency unloaded):\n", kRate);
  mpim::bus::Streams(server, paced, kRate, "streams-paced");
  mpim::bus::Topic(server, RedisBusOptions::Topics::kPubSub, "pubsub topic", paced, kRate);
  mpim::bus::Topic(server, RedisBusOptions::Topics::kStreams, "streams topic", paced, kRate);
  return 0;
}
