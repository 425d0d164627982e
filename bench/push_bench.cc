// Offline push at scale (issue 22, "Benchmark"): a group of --members N
// (default 10,000) members, every one offline with a device, gets ONE text
// message; how long until every device's push reached a local receiver.
// One run per provider, each against a fresh `mpim serve` (the real binary,
// tests' ServerProcess, default SQLite store and push settings, cheap
// password hashing):
//   webhook  a local HTTP/1.1 receiver (support/webhook_receiver.h);
//   apns     a local HTTP/2 server over TLS speaking APNs' protocol
//            (support/h2_test_server.h), with a P-256 .p8 key made here.
//
// Setup (users registered and logged in, one device per session, the group
// built in batches; the system messages' fan-out jobs left to drain) is
// timed apart and not part of the result. Measured from just before the
// POST /messages: the first and the last push's arrival, each push's
// arrival (p50/p99), pushes/s, the server's CPU (utime + stime of
// /proc/<pid>/stat) and store commits, and whether every device got
// exactly one push (distinct tokens; for APNs the :path /3/device/<token>).
// Prints figures and a Markdown table; --out FILE appends the table with
// the date and commit. No timing is asserted.
//
//   build/bin/push_bench [--members 10000] [--providers webhook,apns]
//                        [--threads 8] [--deadline-s 60] [--out FILE]
//                        [--label TEXT] [--pause-s S] [--set key=value]...
//
// --set key=value (repeatable) adds a server setting (`mpim serve --set`).
// --pause-s S: after setup, print the server's pid and wait S seconds
// before the send, to attach a profiler (perf record -g -p PID).
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/api_client.h"
#include "support/h2_test_server.h"
#include "support/metrics_text.h"
#include "support/server_process.h"
#include "support/webhook_receiver.h"

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ApiResponse;
using testing::H2TestAnswer;
using testing::H2TestRequest;
using testing::H2TestServer;
using testing::ServerProcess;
using testing::WebhookReceiver;
using Clock = std::chrono::steady_clock;
namespace json = boost::json;

constexpr char kAdminKey[] = "push-bench-admin-key";
constexpr size_t kGroupBatch = 2000;  // ids per POST /groups or /groups/{id}/members
constexpr auto kDrainDeadline = std::chrono::seconds(120);

struct Options {
  int members = 10000;
  std::vector<std::string> providers = {"webhook", "apns"};
  int threads = 8;
  int deadline_s = 60;
  std::string out;
  std::string label;
  int pause_s = 0;                    // after setup: print the server's pid, wait, then send
  std::vector<std::string> settings;  // --set key=value, passed to the server
};

// One push as a receiver saw it.
struct Arrival {
  std::string token;
  Clock::time_point at;
};

struct RunResult {
  std::string provider;
  int members = 0;
  bool ok = false;  // the server started and setup succeeded
  std::string error;
  double setup_s = 0;
  double send_reply_ms = 0;  // POST /messages answered
  size_t received = 0;       // pushes in all, after the queue drained
  size_t distinct = 0;       // distinct device tokens among them
  bool complete = false;     // N pushes within the deadline
  double first_ms = 0;       // send -> first push
  double last_ms = 0;        // send -> last push (end to end)
  double p50_ms = 0;
  double p99_ms = 0;
  double rate_spread = 0;  // N / (last - first)
  double rate_e2e = 0;     // N / (send -> last)
  double server_cpu_s = 0;
  double bench_cpu_s = 0;
  double commits = 0;  // store commits from the send until the queue drained
  double committed_writes = 0;
  double provider_mean_ms = 0;  // mpim_push_provider_seconds sum / count
  double dead = 0;
  std::vector<int> timeline;  // pushes per 250 ms after the send
};

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// 12345678 -> "12,345,678".
std::string Thousands(double v) {
  std::string digits = Fixed(v, 0);
  std::string out;
  const size_t lead = digits.size() % 3;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && i >= lead && (i - lead) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Str(const json::value& v, std::string_view key) {
  if (!v.is_object()) return "";
  const auto* x = v.as_object().if_contains(key);
  return x && x->is_string() ? std::string(x->as_string()) : "";
}

// utime + stime of a process in seconds, from /proc/<pid>/stat.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(stat.substr(paren + 2));
  std::string field;
  double ticks = 0;
  // After "pid (comm) ": state is field 3; utime and stime are 14 and 15.
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n == 14 || n == 15) ticks += std::strtod(field.c_str(), nullptr);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// A 64-hex-digit device token, as APNs' are ([A-Za-z0-9] either way).
std::string TokenFor(int i) {
  char buf[65];
  std::snprintf(buf, sizeof buf, "%032x%032x", 0x9b5ee7u, static_cast<unsigned>(i));
  return buf;
}

// Writes a new P-256 key as a PKCS#8 PEM (Apple's .p8 format), mode 0600.
bool WriteP8Key(const std::filesystem::path& path, std::string* error) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) {
    *error = "EVP_EC_gen failed";
    return false;
  }
  BIO* bio = BIO_new(BIO_s_mem());
  const bool written =
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  const std::string pem = written ? std::string(data, static_cast<size_t>(len)) : "";
  BIO_free(bio);
  EVP_PKEY_free(key);
  if (pem.empty()) {
    *error = "PEM_write_bio_PrivateKey failed";
    return false;
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0 || ::write(fd, pem.data(), pem.size()) != static_cast<ssize_t>(pem.size())) {
    *error = "cannot write " + path.string();
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  return ::chmod(path.c_str(), 0600) == 0;
}

// The series of GET /metrics we compare before and after.
struct MetricsSnapshot {
  double commits = 0;
  double committed_writes = 0;
  double provider_seconds_sum = 0;
  double provider_seconds_count = 0;
};

MetricsSnapshot ReadMetrics(ApiClient& api, const std::string& provider) {
  ApiResponse r = api.Call("GET", "/metrics");
  MetricsSnapshot m;
  if (r.status != 200) return m;
  m.commits = testing::SeriesValue(r.body, "mpim_store_commits_total");
  m.committed_writes = testing::SeriesValue(r.body, "mpim_store_committed_writes_total");
  const std::string label = "{provider=\"" + provider + "\"}";
  m.provider_seconds_sum = testing::SeriesValue(r.body, "mpim_push_provider_seconds_sum" + label);
  m.provider_seconds_count =
      testing::SeriesValue(r.body, "mpim_push_provider_seconds_count" + label);
  return m;
}

// GET /admin/stats until no job is ready or leased; the dead count then
// (-1 if the queue did not drain by `deadline`).
double WaitQueueDrained(ApiClient& api, std::chrono::seconds deadline) {
  const auto until = Clock::now() + deadline;
  while (Clock::now() < until) {
    ApiResponse r = api.Call("GET", "/api/v1/admin/stats", "", kAdminKey);
    if (r.status == 200 && r.json.is_object()) {
      const auto* jobs = r.json.as_object().if_contains("jobs");
      if (jobs && jobs->is_object()) {
        const json::object& j = jobs->as_object();
        auto num = [&](const char* k) {
          const auto* v = j.if_contains(k);
          return v && v->is_int64() ? v->as_int64() : -1;
        };
        if (num("ready") == 0 && num("leased") == 0) return static_cast<double>(num("dead"));
      }
    }
    // The admin API has no wait: poll it (setup and after the measurement only).
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return -1;
}

// A registered, logged-in member with a device.
struct Member {
  std::string user_id;
  std::string token;  // the device token
};

// Calls `call` until it answers (a transport error is retried twice).
template <typename F>
ApiResponse WithRetry(F call) {
  ApiResponse r;
  for (int attempt = 0; attempt < 3; ++attempt) {
    r = call();
    if (r.status != 0) break;
  }
  return r;
}

// Registers, logs in and gives a device to member `i`; "" or what failed.
std::string SetUpMember(ApiClient& api, int i, const std::string& platform, Member* out) {
  const std::string name = "pb" + std::to_string(i);
  ApiResponse r = WithRetry([&] { return api.RegisterRaw(name, testing::kPassword); });
  if (r.status != 201) return "register " + name + ": " + r.Describe();
  r = WithRetry([&] { return api.LoginRaw(name, testing::kPassword); });
  const std::string access = Str(r.json, "access_token");
  if (r.status != 200 || access.empty()) return "login " + name + ": " + r.Describe();
  out->user_id = Str(r.json, "user_id");
  out->token = TokenFor(i);
  r = WithRetry([&] {
    return api.Post("/devices",
                    "{\"platform\":\"" + platform + "\",\"token\":\"" + out->token + "\"}", access);
  });
  if (r.status != 201) return "device " + name + ": " + r.Describe();
  return "";
}

// The members, set up by `threads` clients at once; "" or the first error.
std::string SetUpMembers(uint16_t port, int n, int threads, const std::string& platform,
                         std::vector<Member>* members) {
  members->assign(static_cast<size_t>(n), Member{});
  std::atomic<int> next{0};
  std::atomic<int> done{0};
  std::mutex mu;  // guards first_error
  std::string first_error;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      ApiClient api(port);
      for (int i = next++; i < n; i = next++) {
        std::string error = SetUpMember(api, i, platform, &(*members)[static_cast<size_t>(i)]);
        if (!error.empty()) {
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = error;
          next = n;  // stop everyone
          return;
        }
        const int d = ++done;
        if (d % 2000 == 0) std::fprintf(stderr, "  %d/%d members set up\n", d, n);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  return first_error;
}

// The owner's group with every member; its group id, or nullopt (error set).
std::optional<std::string> MakeGroup(ApiClient& api, const std::string& owner_token,
                                     const std::vector<Member>& members, std::string* error) {
  auto ids = [&](size_t from, size_t to) {
    json::array a;
    for (size_t i = from; i < to; ++i) a.emplace_back(members[i].user_id);
    return a;
  };
  const size_t first = std::min(members.size(), kGroupBatch);
  json::object create{{"name", "push bench"}, {"members", ids(0, first)}};
  ApiResponse r = api.Post("/groups", json::serialize(create), owner_token);
  const std::string group_id = Str(r.json, "group_id");
  if (r.status != 201 || group_id.empty()) {
    *error = "POST /groups: " + r.Describe().substr(0, 300);
    return std::nullopt;
  }
  for (size_t from = first; from < members.size(); from += kGroupBatch) {
    json::object add{{"user_ids", ids(from, std::min(members.size(), from + kGroupBatch))}};
    r = api.Post("/groups/" + group_id + "/members", json::serialize(add), owner_token);
    if (r.status != 200) {
      *error = "POST /groups/" + group_id + "/members: " + r.Describe().substr(0, 300);
      return std::nullopt;
    }
  }
  return group_id;
}

// The receiving end of one provider: starts, gives the server its settings,
// and reports what arrived.
class Receiver {
 public:
  virtual ~Receiver() = default;
  virtual std::string error() const = 0;
  virtual std::vector<std::string> Settings(const std::filesystem::path& dir) = 0;
  virtual bool WaitFor(size_t n, std::chrono::milliseconds deadline) = 0;
  virtual std::vector<Arrival> Arrivals() const = 0;
};

class WebhookSide : public Receiver {
 public:
  std::string error() const override { return ""; }
  std::vector<std::string> Settings(const std::filesystem::path&) override {
    return {"push.webhook_url=" + receiver_.url(), "push.webhook_secret=x"};
  }
  bool WaitFor(size_t n, std::chrono::milliseconds deadline) override {
    return receiver_.WaitFor([n](const auto& all) { return all.size() >= n; }, deadline);
  }
  std::vector<Arrival> Arrivals() const override {
    std::vector<Arrival> out;
    for (const testing::ReceivedPush& p : receiver_.Received()) {
      boost::system::error_code ec;
      json::value body = json::parse(p.body, ec);
      std::string token;
      if (!ec && body.is_object()) {
        if (const auto* d = body.as_object().if_contains("device")) token = Str(*d, "token");
      }
      out.push_back({std::move(token), p.at});
    }
    return out;
  }

 private:
  WebhookReceiver receiver_;
};

class ApnsSide : public Receiver {
 public:
  ApnsSide() : server_(H2TestServer::Mode::kTls) {
    // The handler runs on the server's thread until server_ is gone, which
    // is destroyed first (declared last).
    server_.SetHandler([this](const H2TestRequest& req) {
      Arrival a{.token = req.path, .at = Clock::now()};
      constexpr std::string_view kPrefix = "/3/device/";
      if (a.token.starts_with(kPrefix)) a.token.erase(0, kPrefix.size());
      {
        std::lock_guard lock(mu_);
        arrivals_.push_back(std::move(a));
      }
      H2TestAnswer answer;
      answer.headers = {{"apns-id", "00000000-0000-0000-0000-000000000000"}};
      return answer;
    });
  }
  std::string error() const override { return server_.ok() ? "" : server_.error(); }
  std::vector<std::string> Settings(const std::filesystem::path& dir) override {
    const std::filesystem::path key = dir / "AuthKey_ABC123DEFG.p8";
    std::string error;
    if (!WriteP8Key(key, &error)) std::fprintf(stderr, "apns key: %s\n", error.c_str());
    return {"push.apns_url=" + server_.url(),    "push.apns_key_file=" + key.string(),
            "push.apns_key_id=ABC123DEFG",       "push.apns_team_id=TEAM123456",
            "push.apns_topic=com.example.bench", "push.tls_ca_file=" + server_.ca_file()};
  }
  bool WaitFor(size_t n, std::chrono::milliseconds deadline) override {
    return server_.WaitForRequests(n, deadline);
  }
  std::vector<Arrival> Arrivals() const override {
    std::lock_guard lock(mu_);
    return arrivals_;
  }

 private:
  mutable std::mutex mu_;  // guards arrivals_ (the handler runs on the server's thread)
  std::vector<Arrival> arrivals_;
  H2TestServer server_;
};

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(rank, sorted.size() - 1)];
}

double SelfCpuSeconds() {
  return ProcessCpuSeconds(::getpid());  // the receivers' threads included
}

RunResult Run(const std::string& provider, const Options& opt) {
  RunResult res{.provider = provider, .members = opt.members};
  const auto n = static_cast<size_t>(opt.members);
  std::unique_ptr<Receiver> receiver;
  if (provider == "webhook") {
    receiver = std::make_unique<WebhookSide>();
  } else {
    receiver = std::make_unique<ApnsSide>();
  }
  if (!receiver->error().empty()) {
    res.error = "receiver: " + receiver->error();
    return res;
  }
  const std::filesystem::path dir = testing::FreshTempDir("push-bench-");
  std::vector<std::string> settings = receiver->Settings(dir);
  settings.push_back(std::string("admin.api_key=") + kAdminKey);
  settings.insert(settings.end(), opt.settings.begin(), opt.settings.end());
  if (opt.members + 1 > 100000) {
    settings.push_back("limits.group_max_members=" + std::to_string(opt.members + 1));
  }
  ServerProcess::Options server_options{.env = testing::FastAuthEnv()};
  for (const std::string& s : settings) {
    server_options.extra_args.push_back("--set");
    server_options.extra_args.push_back(s);
  }
  ServerProcess server(std::move(server_options));
  auto finish = [&](std::string error) {
    res.error = std::move(error);
    std::fprintf(stderr, "%s run failed: %s\nserver log (end):\n%s\n", provider.c_str(),
                 res.error.c_str(), server.LogTail(3000).c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return res;
  };
  if (!server.Start()) return finish("server: " + server.error());

  // Setup, timed apart.
  const auto setup_start = Clock::now();
  ApiClient api(server.port());
  if (api.RegisterRaw("pbowner", testing::kPassword).status != 201) {
    return finish("owner not registered");
  }
  ApiResponse login = api.LoginRaw("pbowner", testing::kPassword);
  const std::string owner_token = Str(login.json, "access_token");
  if (owner_token.empty()) return finish("owner login: " + login.Describe());
  std::vector<Member> members;
  std::fprintf(stderr, "%s: setting up %d members on %d threads\n", provider.c_str(), opt.members,
               opt.threads);
  std::string error = SetUpMembers(server.port(), opt.members, opt.threads, provider, &members);
  if (!error.empty()) return finish(error);
  std::optional<std::string> group = MakeGroup(api, owner_token, members, &error);
  if (!group) return finish(error);
  // The membership's system messages go through fan-out jobs (never
  // pushed): let them finish so they do not share the measured seconds.
  if (WaitQueueDrained(api, kDrainDeadline) < 0) return finish("the job queue did not drain");
  res.setup_s = Ms(Clock::now() - setup_start) / 1000;
  std::fprintf(stderr, "%s: setup took %.1f s\n", provider.c_str(), res.setup_s);
  if (opt.pause_s > 0) {
    std::fprintf(stderr, "%s: server pid %d; sending in %d s\n", provider.c_str(),
                 static_cast<int>(server.pid()), opt.pause_s);
    std::this_thread::sleep_for(std::chrono::seconds(opt.pause_s));  // time to attach a profiler
  }

  // The measurement.
  const MetricsSnapshot before = ReadMetrics(api, provider);
  const double cpu_before = ProcessCpuSeconds(server.pid());
  const double self_before = SelfCpuSeconds();
  json::object send{{"to", json::object{{"group", *group}}},
                    {"client_msg_id", "push-bench-1"},
                    {"type", "text"},
                    {"body", json::object{{"text", "offline push benchmark: are you there?"}}}};
  const std::string send_body = json::serialize(send);
  const auto t0 = Clock::now();
  ApiResponse sent = api.Post("/messages", send_body, owner_token);
  res.send_reply_ms = Ms(Clock::now() - t0);
  if (sent.status != 200) return finish("POST /messages: " + sent.Describe());
  res.complete = receiver->WaitFor(n, std::chrono::seconds(opt.deadline_s));
  res.server_cpu_s = ProcessCpuSeconds(server.pid()) - cpu_before;
  res.bench_cpu_s = SelfCpuSeconds() - self_before;
  // What came later than the N-th (duplicates) arrives before the queue is empty.
  res.dead = WaitQueueDrained(api, kDrainDeadline);
  const MetricsSnapshot after = ReadMetrics(api, provider);
  res.commits = after.commits - before.commits;
  res.committed_writes = after.committed_writes - before.committed_writes;
  const double answers = after.provider_seconds_count - before.provider_seconds_count;
  if (answers > 0) {
    res.provider_mean_ms =
        1000 * (after.provider_seconds_sum - before.provider_seconds_sum) / answers;
  }

  std::vector<Arrival> arrivals = receiver->Arrivals();
  res.received = arrivals.size();
  std::set<std::string> tokens;
  std::vector<double> after_send;
  for (const Arrival& a : arrivals) {
    tokens.insert(a.token);
    after_send.push_back(Ms(a.at - t0));
  }
  std::set<std::string> expected;
  for (const Member& m : members) expected.insert(m.token);
  size_t matched = 0;
  for (const std::string& t : tokens) matched += expected.count(t);
  res.distinct = matched;
  std::sort(after_send.begin(), after_send.end());
  if (!after_send.empty()) {
    // The N-th push is the end when more came (duplicates are reported apart).
    const size_t last = std::min(after_send.size(), n) - 1;
    res.first_ms = after_send.front();
    res.last_ms = after_send[last];
    std::vector<double> counted(after_send.begin(),
                                after_send.begin() + static_cast<ptrdiff_t>(last + 1));
    res.p50_ms = Percentile(counted, 0.50);
    res.p99_ms = Percentile(counted, 0.99);
    const double spread = res.last_ms - res.first_ms;
    if (spread > 0) res.rate_spread = static_cast<double>(last + 1) / (spread / 1000);
    if (res.last_ms > 0) res.rate_e2e = static_cast<double>(last + 1) / (res.last_ms / 1000);
    for (double ms : counted) {
      const auto bucket = static_cast<size_t>(ms / 250);
      if (res.timeline.size() <= bucket) res.timeline.resize(bucket + 1, 0);
      ++res.timeline[bucket];
    }
  }
  res.ok = true;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return res;
}

bool ExactlyOnce(const RunResult& r) {
  return r.received == static_cast<size_t>(r.members) &&
         r.distinct == static_cast<size_t>(r.members);
}

void PrintDetails(const RunResult& r) {
  std::printf("\n%s: %d offline members with a device each\n", r.provider.c_str(), r.members);
  if (!r.ok) {
    std::printf("  failed: %s\n", r.error.c_str());
    return;
  }
  std::printf("  setup (not measured): %.1f s; POST /messages answered in %.1f ms\n", r.setup_s,
              r.send_reply_ms);
  std::printf("  pushes received: %zu (%zu distinct devices of %d)%s; dead letters after: %.0f\n",
              r.received, r.distinct, r.members, r.complete ? "" : " -- DEADLINE MISSED", r.dead);
  std::printf("  send -> first push %.1f ms, -> last push %.1f ms; p50 %.1f ms, p99 %.1f ms\n",
              r.first_ms, r.last_ms, r.p50_ms, r.p99_ms);
  std::printf("  pushes/s: %.0f first->last, %.0f send->last\n", r.rate_spread, r.rate_e2e);
  std::printf("  server CPU %.2f s (%.0f us per push); this process (receiver) %.2f s\n",
              r.server_cpu_s, r.members > 0 ? 1e6 * r.server_cpu_s / r.members : 0, r.bench_cpu_s);
  const double secs = r.last_ms / 1000;
  std::printf(
      "  store: %.0f commits (%.0f/s over send->last), %.0f writes (%.1f per commit) until the "
      "queue drained; provider answer mean %.2f ms\n",
      r.commits, secs > 0 ? r.commits / secs : 0, r.committed_writes,
      r.commits > 0 ? r.committed_writes / r.commits : 0, r.provider_mean_ms);
  std::printf("  pushes per 250 ms after the send:");
  for (int c : r.timeline) std::printf(" %d", c);
  std::printf("\n");
}

std::string Table(const std::vector<RunResult>& results) {
  std::string t =
      "| provider | devices | pushes (distinct) | exactly once | send -> first push | send -> last "
      "push | pushes/s first->last | pushes/s send->last | p50 / p99 after send | server CPU | "
      "store commits | setup | <= 5 s |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RunResult& r : results) {
    if (!r.ok) {
      t += "| " + r.provider + " | " + Thousands(r.members) + " | failed: " + r.error +
           " |||||||||||\n";
      continue;
    }
    t += "| " + r.provider + " | " + Thousands(r.members) + " | " +
         Thousands(static_cast<double>(r.received)) + " (" +
         Thousands(static_cast<double>(r.distinct)) + ") | " + (ExactlyOnce(r) ? "yes" : "no") +
         " | " + Thousands(r.first_ms) + " ms | " + Thousands(r.last_ms) + " ms | " +
         Thousands(r.rate_spread) + " | " + Thousands(r.rate_e2e) + " | " + Thousands(r.p50_ms) +
         " / " + Thousands(r.p99_ms) + " ms | " + Fixed(r.server_cpu_s, 2) + " s | " +
         Thousands(r.commits) + " | " + Fixed(r.setup_s, 1) + " s | " +
         (r.complete && r.last_ms <= 5000 ? "met" : "missed") + " |\n";
  }
  return t;
}

std::string Heading(const Options& opt) {
  char when[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%F %H:%M UTC", std::gmtime(&now));
  int code = 0;
  std::string commit = testing::RunCommand("git rev-parse --short HEAD 2>/dev/null", &code);
  while (!commit.empty() && (commit.back() == '\n' || commit.back() == ' ')) commit.pop_back();
  int dirty = 0;
  testing::RunCommand("git diff --quiet HEAD -- src 2>/dev/null", &dirty);
  std::string loadavg;
  std::ifstream("/proc/loadavg") >> loadavg;
  std::string h = "### push_bench, " + std::string(when) + ", commit " +
                  (commit.empty() ? "unknown" : commit) + (dirty != 0 ? " (src modified)" : "");
  if (!opt.label.empty()) h += ", " + opt.label;
  for (const std::string& setting : opt.settings) h += ", `" + setting + "`";
  h += "\n\n" + Thousands(opt.members) +
       " offline members with a device each, one text message to their group; `mpim serve` "
       "(SQLite, default push settings unless set above), receivers and generator on this " +
       std::to_string(std::thread::hardware_concurrency()) +
       "-core box; 1-minute load average at the start " + loadavg + ".\n\n";
  return h;
}

int Usage() {
  std::fprintf(stderr,
               "usage: push_bench [--members N] [--providers webhook,apns] [--threads T]\n"
               "                  [--deadline-s S] [--out FILE] [--label TEXT] [--pause-s S]\n"
               "                  [--set key=value]...\n");
  return 2;
}

}  // namespace
}  // namespace mpim

int main(int argc, char** argv) {
  mpim::Options opt;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return mpim::Usage();
    const std::string value = argv[++i];
    if (flag == "--members") {
      opt.members = std::atoi(value.c_str());
    } else if (flag == "--threads") {
      opt.threads = std::atoi(value.c_str());
    } else if (flag == "--deadline-s") {
      opt.deadline_s = std::atoi(value.c_str());
    } else if (flag == "--out") {
      opt.out = value;
    } else if (flag == "--label") {
      opt.label = value;
    } else if (flag == "--set") {
      opt.settings.push_back(value);
    } else if (flag == "--pause-s") {
      opt.pause_s = std::atoi(value.c_str());
    } else if (flag == "--providers") {
      opt.providers.clear();
      std::stringstream list(value);
      for (std::string p; std::getline(list, p, ',');) {
        if (p != "webhook" && p != "apns") return mpim::Usage();
        opt.providers.push_back(p);
      }
    } else {
      return mpim::Usage();
    }
  }
  if (opt.members < 1 || opt.threads < 1 || opt.deadline_s < 1 || opt.providers.empty()) {
    return mpim::Usage();
  }
  const std::string heading = mpim::Heading(opt);
  std::vector<mpim::RunResult> results;
  for (const std::string& provider : opt.providers) {
    results.push_back(mpim::Run(provider, opt));
    mpim::PrintDetails(results.back());
  }
  const std::string table = mpim::Table(results);
  std::printf("\n%s%s", heading.c_str(), table.c_str());
  if (!opt.out.empty()) {
    std::ofstream out(opt.out, std::ios::app);
    out << heading << table << "\n";
    if (!out) {
      std::fprintf(stderr, "cannot write %s\n", opt.out.c_str());
      return 1;
    }
  }
  for (const mpim::RunResult& r : results) {
    if (!r.ok) return 1;
  }
  return 0;
}
