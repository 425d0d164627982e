// The edge beside HAProxy and nginx (issue 23; docs/benchmarks.md, "Edge"):
// the same upstreams (one nginx worker answering "ok" on 10 loopback
// ports), the same client, each proxy with two threads or workers on this
// 2-core box, one after the other:
//
//   - latency at fixed rates (open loop: request i is due at start + i/rate
//     whatever came before, and its latency counts from when it was due, so
//     a stall is not hidden): p50, p95, p99, and the p95 the proxy adds over
//     the upstreams reached directly at the same rate;
//   - the most requests a second each proxy answers (closed loop, 64
//     keep-alive connections);
//   - each proxy's CPU per request at 10,000/s and its resident memory;
//   - how evenly 100,000 users spread over 10 upstreams for the edge's
//     hashing balancers (max / mean);
//   - each proxy's memory with N idle WebSockets joined through it to a
//     WebSocket server in this process (default 9,000: two descriptors a
//     tunnel at the proxy, within the box's 20,000 per process);
//   - over HTTP/2 (h2load, nghttp2's load generator: cleartext with prior
//     knowledge, 8 connections of 16 streams each) to the same HTTP/1.1
//     upstreams: requests a second, mean latency and CPU per request of
//     each proxy (HAProxy and nginx on a port of their own for h2c; the
//     edge on its one port).
//
//   edge_bench [--seconds 8] [--only NAME] [--websockets N] [--out FILE.md]
//   (the mpim it was built with; --only: the upstreams and the targets whose
//   name contains NAME)
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/histogram.h"
#include "bench/setup.h"
#include "core/metrics.h"
#include "edge/upstreams.h"
#include "net/io_pool.h"
#include "support/server_process.h"

namespace mpim {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr int kUpstreams = 10;
constexpr int kConnections = 64;

struct Target {
  std::string name;
  uint16_t port = 0;
  pid_t pid = -1;        // the proxy's process (-1: the upstreams directly)
  uint16_t h2_port = 0;  // where it takes HTTP/2 in cleartext (0: the same port)
};

struct Result {
  uint64_t p50_us = 0, p95_us = 0, p99_us = 0;
  uint64_t done = 0, failed = 0;
  double seconds = 0;
};

// One keep-alive client connection of the load.
class Conn : public std::enable_shared_from_this<Conn> {
 public:
  struct Shared {
    bench::Histogram latency;  // microseconds
    uint64_t done = 0, failed = 0;
    bool closed_loop = false;
    Clock::time_point end;
    bool record = false;  // past the warm-up
  };

  Conn(asio::io_context& io, uint16_t port, Shared& shared)
      : stream_(io), timer_(io), port_(port), shared_(shared) {
    req_.method(http::verb::get);
    req_.target("/bench");
    req_.version(11);
    req_.set(http::field::host, "127.0.0.1");
    req_.keep_alive(true);
  }

  void Connect(std::function<void()> done) {
    stream_.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
                          [self = shared_from_this(), done](beast::error_code ec) {
                            if (!ec) {
                              self->stream_.socket().set_option(tcp::no_delay(true));
                            }
                            done();
                          });
  }

  // Open loop: a request is due at `at`.
  void Due(Clock::time_point at) {
    due_.push_back(at);
    if (!busy_) Next();
  }

  void StartClosedLoop() { Send(Clock::now()); }

 private:
  void Next() {
    if (due_.empty()) return;
    const Clock::time_point at = due_.front();
    if (at > Clock::now()) {
      busy_ = true;
      timer_.expires_at(at);
      timer_.async_wait([self = shared_from_this()](beast::error_code) {
        self->busy_ = false;
        self->Next();
      });
      return;
    }
    due_.pop_front();
    Send(at);
  }

  void Send(Clock::time_point due) {
    busy_ = true;
    due_at_ = due;
    http::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Failed();
      self->res_ = {};
      http::async_read(self->stream_, self->buffer_, self->res_,
                       [self](beast::error_code rec, size_t) {
                         if (rec || self->res_.result_int() != 200) return self->Failed();
                         self->Done();
                       });
    });
  }

  void Done() {
    const auto now = Clock::now();
    if (shared_.record) {
      shared_.latency.Record(static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::microseconds>(now - due_at_).count()));
      ++shared_.done;
    }
    busy_ = false;
    if (now >= shared_.end) return;
    if (shared_.closed_loop) return Send(now);
    Next();
  }

  void Failed() {
    if (shared_.record) ++shared_.failed;
    busy_ = false;
    beast::error_code ec;
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  uint16_t port_;
  Shared& shared_;
  http::request<http::empty_body> req_;
  http::response<http::string_body> res_;
  beast::flat_buffer buffer_;
  std::deque<Clock::time_point> due_;
  Clock::time_point due_at_;
  bool busy_ = false;
};

// `rate` requests a second (0: closed loop, as fast as answered) for
// `seconds` after a 1 s warm-up, over kConnections connections to `ports`
// (round robin over them: the direct run spreads like the proxies do).
Result Load(const std::vector<uint16_t>& ports, double rate, double seconds) {
  asio::io_context io(1);
  Conn::Shared shared;
  shared.closed_loop = rate <= 0;
  std::vector<std::shared_ptr<Conn>> conns;
  int connected = 0;
  for (int i = 0; i < kConnections; ++i) {
    conns.push_back(std::make_shared<Conn>(io, ports[i % ports.size()], shared));
    conns.back()->Connect([&connected] { ++connected; });
  }
  while (connected < kConnections && io.run_one() > 0) {
  }
  const auto start = Clock::now();
  const auto warm = start + std::chrono::seconds(1);
  shared.end =
      warm + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  asio::steady_timer record(io);
  record.expires_at(warm);
  record.async_wait([&shared](beast::error_code) { shared.record = true; });
  // Open loop: requests are handed out in slices of 1 ms ahead of their time.
  asio::steady_timer slicer(io);
  uint64_t next = 0;
  std::function<void()> slice = [&] {
    const auto horizon = Clock::now() + std::chrono::milliseconds(1);
    for (;;) {
      const auto at = start + std::chrono::duration_cast<Clock::duration>(
                                  std::chrono::duration<double>(static_cast<double>(next) / rate));
      if (at > horizon || at >= shared.end) break;
      conns[next % conns.size()]->Due(at);
      ++next;
    }
    if (horizon < shared.end) {
      slicer.expires_at(horizon);
      slicer.async_wait([&slice](beast::error_code) { slice(); });
    }
  };
  if (shared.closed_loop) {
    for (auto& c : conns) c->StartClosedLoop();
  } else {
    slice();
  }
  io.restart();  // the connect loop may have run out of work, which stops it
  io.run_until(shared.end + std::chrono::seconds(5));
  Result r;
  r.p50_us = shared.latency.Percentile(50);
  r.p95_us = shared.latency.Percentile(95);
  r.p99_us = shared.latency.Percentile(99);
  r.done = shared.done;
  r.failed = shared.failed;
  r.seconds = seconds;
  return r;
}

std::string Write(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
  return path.string();
}

// The upstreams: one nginx worker answering 200 "ok" on each port.
std::string UpstreamsConf(const std::filesystem::path& dir, const std::vector<uint16_t>& ports) {
  std::ostringstream c;
  c << "worker_processes 1;\ndaemon off;\nerror_log " << (dir / "up-error.log").string()
    << ";\npid " << (dir / "up.pid").string()
    << ";\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n"
       "  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n";
  for (uint16_t p : ports) {
    c << "  server { listen 127.0.0.1:" << p << "; location / { return 200 \"ok\\n\"; } }\n";
  }
  c << "}\n";
  return c.str();
}

// Each proxy: GET / to the nginx upstreams; /ws-bench (WebSocket upgrades)
// to the WebSocket server of this process on `ws`.
constexpr char kWsPath[] = "/ws-bench";

std::string NginxProxyConf(const std::filesystem::path& dir, uint16_t port, uint16_t h2_port,
                           const std::vector<uint16_t>& ups, uint16_t ws) {
  std::ostringstream c;
  c << "worker_processes 2;\nworker_rlimit_nofile 20000;\ndaemon off;\nerror_log "
    << (dir / "px-error.log").string() << ";\npid " << (dir / "px.pid").string()
    << ";\nevents { worker_connections 19000; }\nhttp {\n  access_log off;\n"
       "  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n  upstream be {\n";
  for (uint16_t p : ups) c << "    server 127.0.0.1:" << p << ";\n";
  c << "    keepalive 64;\n  }\n  server {\n    listen 127.0.0.1:" << port
    << ";\n    listen 127.0.0.1:" << h2_port << " http2;\n    http2_max_requests 100000000;\n"
    << "    location / { proxy_pass http://be; proxy_http_version 1.1; "
       "proxy_set_header Connection \"\"; }\n"
    << "    location " << kWsPath << " { proxy_pass http://127.0.0.1:" << ws
    << "; proxy_http_version 1.1; proxy_set_header Upgrade $http_upgrade; "
       "proxy_set_header Connection \"upgrade\"; proxy_read_timeout 300s; }\n  }\n}\n";
  return c.str();
}

std::string HaproxyConf(uint16_t port, uint16_t h2_port, const std::vector<uint16_t>& ups,
                        uint16_t ws) {
  std::ostringstream c;
  c << "global\n  maxconn 9500\n  nbthread 2\n"
       "defaults\n  mode http\n  timeout connect 2s\n  timeout client 300s\n"
       "  timeout server 300s\n  timeout tunnel 300s\n  option http-keep-alive\n"
       "  http-reuse always\nfrontend fe\n  bind 127.0.0.1:"
    << port << "\n  bind 127.0.0.1:" << h2_port
    << " proto h2\n  maxconn 9500\n  use_backend ws if { path_beg " << kWsPath
    << " }\n  default_backend be\nbackend ws\n  server w 127.0.0.1:" << ws
    << " maxconn 9500\nbackend be\n  balance roundrobin\n";
  for (size_t i = 0; i < ups.size(); ++i) {
    c << "  server s" << i << " 127.0.0.1:" << ups[i] << "\n";
  }
  return c.str();
}

std::string EdgeRoutes(const std::vector<uint16_t>& ups, uint16_t ws) {
  std::ostringstream c;
  c << "[upstreams.bench]\naddresses = [";
  for (size_t i = 0; i < ups.size(); ++i) c << (i ? ", " : "") << "\"127.0.0.1:" << ups[i] << "\"";
  c << "]\nbalancer = \"round_robin\"\nhealth_path = \"\"\n"
    << "[upstreams.ws]\naddresses = [\"127.0.0.1:" << ws << "\"]\nhealth_path = \"\"\n"
    << "[[routes]]\npath_prefix = \"" << kWsPath << "\"\nupstream = \"ws\"\n"
    << "[[routes]]\nupstream = \"bench\"\n";
  return c.str();
}

using Ws = websocket::stream<tcp::socket>;

// The WebSocket server behind the proxies: accepts, then waits for a frame
// that never comes (each session ends when its client goes).
class WsUpstream {
 public:
  WsUpstream() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    Accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~WsUpstream() {
    io_.stop();
    thread_.join();
  }
  uint16_t port() const { return acceptor_.local_endpoint().port(); }

 private:
  void Accept() {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;
      auto ws = std::make_shared<Ws>(std::move(socket));
      ws->async_accept([ws](beast::error_code aec) {
        if (aec) return;
        auto buffer = std::make_shared<beast::flat_buffer>();
        ws->async_read(*buffer, [ws, buffer](beast::error_code, size_t) {});
      });
      Accept();
    });
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
};

// Opens `n` WebSockets to `port` (at most 256 handshakes at once) and
// keeps them idle; Close ends them.
class IdleWebSockets {
 public:
  size_t Open(uint16_t port, int n) {
    port_ = port;
    left_ = n;
    for (int i = 0; i < 256 && left_ > 0; ++i) Next();
    const auto deadline = Clock::now() + std::chrono::seconds(120);
    while (pending_ > 0 && Clock::now() < deadline) io_.run_for(std::chrono::milliseconds(100));
    return open_.size();
  }
  size_t failed() const { return failed_; }
  void Close() {
    for (auto& ws : open_) {
      beast::error_code ec;
      ws->next_layer().close(ec);
    }
    open_.clear();
    io_.run_for(std::chrono::milliseconds(200));
  }

 private:
  void Next() {
    if (left_ <= 0) return;
    --left_;
    ++pending_;
    auto ws = std::make_shared<Ws>(io_);
    ws->next_layer().async_connect(
        tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_),
        [this, ws](beast::error_code ec) {
          if (ec) return Done(nullptr);
          ws->async_handshake("127.0.0.1", kWsPath,
                              [this, ws](beast::error_code hec) { Done(hec ? nullptr : ws); });
        });
  }
  void Done(const std::shared_ptr<Ws>& ws) {
    --pending_;
    if (ws) {
      open_.push_back(ws);
    } else {
      ++failed_;
    }
    Next();
  }
  asio::io_context io_;
  uint16_t port_ = 0;
  int left_ = 0;
  int pending_ = 0;
  size_t failed_ = 0;
  std::vector<std::shared_ptr<Ws>> open_;
};

// A process and its children (nginx's workers), for CPU and memory.
std::vector<pid_t> Tree(pid_t pid) {
  std::vector<pid_t> out = {pid};
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  pid_t child;
  while (in >> child) out.push_back(child);
  return out;
}
double TreeCpuSeconds(pid_t pid) {
  double s = 0;
  for (pid_t p : Tree(pid)) s += bench::CpuSeconds(p);
  return s;
}
uint64_t TreeRssKib(pid_t pid) {
  uint64_t k = 0;
  for (pid_t p : Tree(pid)) k += bench::RssKib(p);
  return k;
}

// One h2load run: what it printed, parsed.
struct H2Result {
  double rps = 0;
  uint64_t succeeded = 0, failed = 0;
  std::string mean_latency;  // as h2load prints it ("1.23ms")
  double cpu_per_request_us = 0;
  bool ran = false;
};

// h2load against `port` for `seconds` (after a second's warm-up), and the
// proxy's CPU meanwhile.
H2Result H2Load(uint16_t port, pid_t pid, double seconds) {
  H2Result r;
  const double cpu0 = TreeCpuSeconds(pid);
  int code = 0;
  const std::string text = testing::RunCommand(
      "h2load -c 8 -m 16 -t 1 --warm-up-time=1 -D " + std::to_string(static_cast<int>(seconds)) +
          " http://127.0.0.1:" + std::to_string(port) + "/bench 2>&1",
      &code);
  const double cpu = TreeCpuSeconds(pid) - cpu0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("finished in", 0) == 0) {
      const size_t comma = line.find(", ");
      if (comma != std::string::npos) r.rps = std::atof(line.c_str() + comma + 2);
      r.ran = true;
    } else if (line.rfind("requests:", 0) == 0) {
      unsigned long long total = 0, started = 0, done = 0, ok = 0, failed = 0;
      std::sscanf(line.c_str(),
                  "requests: %llu total, %llu started, %llu done, %llu succeeded, %llu failed",
                  &total, &started, &done, &ok, &failed);
      r.succeeded = ok;
      r.failed = failed;
    } else if (line.rfind("time for request:", 0) == 0) {
      std::istringstream f(line.substr(17));
      std::string min, max, mean;
      f >> min >> max >> mean;
      r.mean_latency = mean;
    }
  }
  if (!r.ran) std::fprintf(stderr, "edge_bench: h2load failed (%d): %s\n", code, text.c_str());
  // The warm-up second's requests count toward the CPU too, at about the
  // same rate.
  if (r.succeeded > 0) r.cpu_per_request_us = cpu * 1e6 / (r.rps * (seconds + 1));
  return r;
}

bool WaitListening(uint16_t port) {
  for (int i = 0; i < 200; ++i) {
    asio::io_context io;
    tcp::socket s(io);
    beast::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
    if (!ec) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

// Max / mean of the users each upstream gets from `balancer`.
double Spread(const std::string& balancer) {
  net::IoPool pool(1);
  core::MetricsRegistry metrics;
  edge::UpstreamOptions o;
  o.balancer = balancer;
  o.health_interval_ms = 0;
  auto made = edge::Upstreams::Make(pool.At(0), o, metrics);
  if (!made.ok()) return 0;
  std::vector<edge::Upstreams::Entry> entries;
  for (int i = 0; i < kUpstreams; ++i)
    entries.push_back({"10.0.0." + std::to_string(i + 1) + ":80"});
  (*made)->Update(entries);
  std::map<std::string, int> count;
  constexpr int kUsers = 100000;
  for (int u = 0; u < kUsers; ++u) {
    edge::Picked p = (*made)->Pick(std::to_string(1000000 + u));
    if (p) ++count[p.upstream->address];
    (*made)->Release(p);
  }
  int max = 0;
  for (const auto& [a, n] : count) max = std::max(max, n);
  return static_cast<double>(max) / (static_cast<double>(kUsers) / kUpstreams);
}

int Main(int argc, char** argv) {
  std::string out, only;
  double seconds = 8;
  int websockets = 9000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--seconds") seconds = std::atof(argv[i + 1]);
    if (a == "--out") out = argv[i + 1];
    if (a == "--only") only = argv[i + 1];
    if (a == "--websockets") websockets = std::atoi(argv[i + 1]);
  }
  rlimit nofile{20000, 20000};
  setrlimit(RLIMIT_NOFILE, &nofile);
  const auto dir = testing::FreshTempDir("mpim-edge-bench-");
  std::vector<uint16_t> ups;
  for (int i = 0; i < kUpstreams; ++i) ups.push_back(testing::FreePort());
  std::string error;
  const pid_t upstreams =
      testing::SpawnEngine({"nginx", "-p", dir.string(), "-e", (dir / "up-error.log").string(),
                            "-c", Write(dir / "up.conf", UpstreamsConf(dir, ups))},
                           (dir / "up.out").string(), &error);
  if (upstreams < 0 || !WaitListening(ups.back())) {
    std::fprintf(stderr, "edge_bench: nginx upstreams did not start: %s\n", error.c_str());
    return 1;
  }

  WsUpstream ws_upstream;
  const uint16_t ws = ws_upstream.port();

  std::vector<Target> targets;
  targets.push_back({"upstreams directly", 0, -1});
  // The edge: `mpim serve --role edge`, two io threads, no access log.
  testing::ServerProcess edge(testing::ServerProcess::Options{
      .extra_args = {"--role", "edge", "--set",
                     "edge.routes_file=" + Write(dir / "routes.toml", EdgeRoutes(ups, ws)), "--set",
                     "server.io_threads=2", "--set", "log.level=warn", "--set",
                     "limits.requests_per_sec_address=0", "--set",
                     "limits.connections_per_address=0"}});
  if (!edge.Start()) {
    std::fprintf(stderr, "edge_bench: the edge did not start: %s\n", edge.error().c_str());
    return 1;
  }
  targets.push_back({"MPIM edge", edge.port(), edge.pid()});
  const uint16_t haproxy_port = testing::FreePort();
  const uint16_t haproxy_h2_port = testing::FreePort();
  const pid_t haproxy = testing::SpawnEngine(
      {"haproxy", "-db", "-f",
       Write(dir / "haproxy.cfg", HaproxyConf(haproxy_port, haproxy_h2_port, ups, ws))},
      (dir / "haproxy.out").string(), &error);
  if (haproxy > 0 && WaitListening(haproxy_port)) {
    targets.push_back({"HAProxy 2.6", haproxy_port, haproxy, haproxy_h2_port});
  } else {
    std::fprintf(stderr, "edge_bench: haproxy did not start: %s\n", error.c_str());
  }
  const uint16_t nginx_port = testing::FreePort();
  const uint16_t nginx_h2_port = testing::FreePort();
  const pid_t nginx = testing::SpawnEngine(
      {"nginx", "-p", dir.string(), "-e", (dir / "px-error.log").string(), "-c",
       Write(dir / "px.conf", NginxProxyConf(dir, nginx_port, nginx_h2_port, ups, ws))},
      (dir / "nginx.out").string(), &error);
  if (nginx > 0 && WaitListening(nginx_port)) {
    targets.push_back({"nginx 1.22", nginx_port, nginx, nginx_h2_port});
  } else {
    std::fprintf(stderr, "edge_bench: nginx proxy did not start: %s\n", error.c_str());
  }

  std::ostringstream md;
  md << "# Edge beside HAProxy and nginx\n\nOne client thread, " << kConnections
     << " keep-alive connections, GET of a 3-byte answer from " << kUpstreams
     << " upstream ports (one nginx worker); each proxy with 2 threads or workers; " << seconds
     << " s per run after 1 s of warm-up; latency from when each request was due "
     << "(open loop).\n\n";
  const std::vector<double> rates = {1000, 5000, 10000};
  std::map<std::string, std::map<double, Result>> by;
  std::map<std::string, double> cpu_per_request_us;
  std::erase_if(targets, [&](const Target& t) {
    return t.pid > 0 && !only.empty() && t.name.find(only) == std::string::npos;
  });
  for (const Target& t : targets) {
    for (double rate : rates) {
      std::vector<uint16_t> ports = t.pid < 0 ? ups : std::vector<uint16_t>{t.port};
      const double cpu0 = t.pid > 0 ? TreeCpuSeconds(t.pid) : 0;
      Result r = Load(ports, rate, seconds);
      if (t.pid > 0 && rate == 10000) {  // the warm-up second's requests included
        cpu_per_request_us[t.name] = (TreeCpuSeconds(t.pid) - cpu0) * 1e6 / (rate * (seconds + 1));
      }
      by[t.name][rate] = r;
      std::printf("%-20s %6.0f/s  p50 %5lu us  p95 %6lu us  p99 %6lu us  done %lu failed %lu\n",
                  t.name.c_str(), rate, static_cast<unsigned long>(r.p50_us),
                  static_cast<unsigned long>(r.p95_us), static_cast<unsigned long>(r.p99_us),
                  static_cast<unsigned long>(r.done), static_cast<unsigned long>(r.failed));
      std::fflush(stdout);
    }
    std::vector<uint16_t> ports = t.pid < 0 ? ups : std::vector<uint16_t>{t.port};
    by[t.name][0] = Load(ports, 0, seconds);
    std::printf("%-20s max %8.0f/s (failed %lu)\n", t.name.c_str(),
                static_cast<double>(by[t.name][0].done) / seconds,
                static_cast<unsigned long>(by[t.name][0].failed));
    std::fflush(stdout);
  }

  md << "| target | rate/s | p50 us | p95 us | p99 us | p95 added us | failed |\n"
     << "|---|---|---|---|---|---|---|\n";
  for (const Target& t : targets) {
    for (double rate : rates) {
      const Result& r = by[t.name][rate];
      const auto& direct = by[targets[0].name][rate];
      md << "| " << t.name << " | " << rate << " | " << r.p50_us << " | " << r.p95_us << " | "
         << r.p99_us << " | "
         << (t.pid < 0 ? std::string("-")
                       : std::to_string(static_cast<int64_t>(r.p95_us) -
                                        static_cast<int64_t>(direct.p95_us)))
         << " | " << r.failed << " |\n";
    }
  }
  md << "\n| target | max requests/s | CPU per request at 10,000/s (us) | RSS after (MiB) |\n"
     << "|---|---|---|---|\n";
  for (const Target& t : targets) {
    const Result& r = by[t.name][0];
    md << "| " << t.name << " | " << static_cast<int64_t>(static_cast<double>(r.done) / seconds)
       << " | "
       << (t.pid < 0 ? std::string("-")
                     : std::to_string(static_cast<int64_t>(cpu_per_request_us[t.name])))
       << " | " << (t.pid < 0 ? std::string("-") : std::to_string(TreeRssKib(t.pid) / 1024))
       << " |\n";
  }
  md << "\n(CPU and RSS: the proxy's processes, nginx's master and workers together. Each "
        "target's max is measured with the client and the upstreams on the same 2 cores.)\n";
  int h2load_code = 0;
  testing::RunCommand("command -v h2load >/dev/null", &h2load_code);
  if (h2load_code == 0) {
    md << "\n| proxy | HTTP/2 requests/s (h2load: h2c, 8 connections x 16 streams) | mean "
          "latency | CPU per request (us) | failed |\n"
       << "|---|---|---|---|---|\n";
    for (const Target& t : targets) {
      if (t.pid < 0) continue;
      const H2Result r = H2Load(t.h2_port ? t.h2_port : t.port, t.pid, seconds);
      std::printf("%-20s HTTP/2 %8.0f/s mean %s cpu %.1f us/request failed %lu\n", t.name.c_str(),
                  r.rps, r.mean_latency.c_str(), r.cpu_per_request_us,
                  static_cast<unsigned long>(r.failed));
      std::fflush(stdout);
      char cpu[32];
      std::snprintf(cpu, sizeof cpu, "%.1f", r.cpu_per_request_us);
      md << "| " << t.name << " | " << static_cast<int64_t>(r.rps) << " | " << r.mean_latency
         << " | " << cpu << " | " << r.failed << " |\n";
    }
    md << "\n(HTTP/2 in cleartext from the client to the proxy, HTTP/1.1 keep-alive from the "
          "proxy to the upstreams; h2load on the same 2 cores.)\n";
  } else {
    md << "\n(HTTP/2: h2load is not installed, nghttp2-client; skipped.)\n";
  }
  md << "\n| balancer | users per upstream, max / mean (100,000 users, 10 upstreams) |\n"
     << "|---|---|\n";
  for (const char* b : {"ring_hash", "bounded_load", "maglev"}) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3f", Spread(b));
    md << "| " << b << " | " << buf << " |\n";
  }
  if (websockets > 0) {
    md << "\n| proxy | RSS before (MiB) | RSS with " << websockets
       << " idle WebSockets (MiB) | per WebSocket (KiB) | opened | failed |\n"
       << "|---|---|---|---|---|---|\n";
    for (const Target& t : targets) {
      if (t.pid < 0) continue;
      const uint64_t before = TreeRssKib(t.pid);
      IdleWebSockets idle;
      const size_t opened = idle.Open(t.port, websockets);
      std::this_thread::sleep_for(std::chrono::seconds(2));
      const uint64_t with = TreeRssKib(t.pid);
      idle.Close();
      const double per =
          opened ? static_cast<double>(with - std::min(with, before)) / static_cast<double>(opened)
                 : 0;
      char per_text[32];
      std::snprintf(per_text, sizeof per_text, "%.1f", per);
      std::printf("%-20s %zu idle WebSockets: RSS %lu -> %lu KiB (%s KiB each), failed %zu\n",
                  t.name.c_str(), opened, static_cast<unsigned long>(before),
                  static_cast<unsigned long>(with), per_text, idle.failed());
      std::fflush(stdout);
      md << "| " << t.name << " | " << before / 1024 << " | " << with / 1024 << " | " << per_text
         << " | " << opened << " | " << idle.failed() << " |\n";
      std::this_thread::sleep_for(std::chrono::seconds(1));  // the tunnels wind down
    }
    md << "\n(Each WebSocket: a client connection and an upstream connection at the proxy, "
          "idle after the handshake; RSS of the proxy's processes.)\n";
  }
  std::printf("\n%s", md.str().c_str());
  if (!out.empty()) std::ofstream(out) << md.str();
  for (pid_t p : {upstreams, haproxy, nginx}) {
    if (p <= 0) continue;
    for (pid_t q : Tree(p)) ::kill(q, SIGKILL);  // nginx's workers outlive a killed master
  }
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace mpim

int main(int argc, char** argv) { return mpim::Main(argc, argv); }
