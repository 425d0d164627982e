// End-to-end: a real Prometheus (Debian's `prometheus`) scrapes every node
// of the target (`mpim serve`; with MPIM_E2E_TARGET=edge, `mpim cluster up
// --edge 1`: gateways, logic, task and edge nodes) and evaluates the alert
// rules of deploy/prometheus/mpim-alerts.yml against them after some chat:
// every node is up and ready, every rule evaluates without error, and every
// metric a rule names has series, except those that exist only once their
// event happened (listed with the event). Then every query of the Grafana
// dashboards in deploy/grafana (the server's on both targets, the
// cluster's on the cluster) returns series, with the same exception. A
// misspelt metric name in a rule or a panel fails here; so does a metric
// renamed in the code.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/ws_helpers.h"

#ifndef MPIM_SOURCE_DIR
#error "MPIM_SOURCE_DIR must name the source tree (for deploy/prometheus)"
#endif

namespace mpim {
namespace {

using testing::ApiClient;
using testing::ApiResponse;
using testing::Ms;
using testing::TextSend;

namespace json = boost::json;

struct PromConfig {
  static auto Env() { return testing::WsEnv({}); }
};

const std::filesystem::path kDeploy = std::filesystem::path(MPIM_SOURCE_DIR) / "deploy";
const std::filesystem::path kRules = kDeploy / "prometheus" / "mpim-alerts.yml";

// Metrics a rule names that have no series until their event happens
// (their families are registered on first use), with the event.
const std::map<std::string, std::string>& OnlyOnEvent() {
  static const std::map<std::string, std::string> m = {
      {"mpim_rpc_server_shed_total", "a logic node refusing a call over rpc.max_in_flight"},
      {"mpim_delivery_route_failures_total", "a route lookup failing (Redis away)"},
      {"mpim_delivery_forward_failures_total", "a forward to another gateway failing"},
      {"mpim_index_dropped_total", "the search indexer's queue overflowing"},
      {"mpim_cache_errors_total", "a cache engine (Redis) failing"},
      {"mpim_push_deliveries_total", "a push sent (push providers configured)"},
      {"mpim_jobs_total", "a durable job run (large-group fan-out, push)"},
      {"mpim_jobs_oldest_due_seconds", "a durable job queued"},
      {"mpim_jobs_queued", "a durable job queued (by kind, once one was)"},
      {"mpim_edge_tls_certificate_expiry_timestamp_seconds", "an edge with TLS configured"},
      {"mpim_store_writer_checkpoint_seconds", "a SQLite WAL checkpoint"},
      {"mpim_edge_upstream_errors_total", "an upstream failing a request at the edge"},
      {"mpim_edge_retries_total", "a request retried at the edge"},
      {"mpim_ws_closes_total", "a session the server closes (4008, 1008, 1012 on drain)"},
  };
  return m;
}
// Metrics of roles the target may not have.
bool RoleMissing(const std::string& name, bool cluster) {
  if (cluster) return false;
  return name.rfind("mpim_rpc_", 0) == 0 || name.rfind("mpim_edge_", 0) == 0;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every metric name `s` uses (histograms by their family name).
std::set<std::string> MetricsIn(const std::string& s) {
  std::set<std::string> out;
  static const std::regex name(R"(\b((?:mpim|process)_[a-z_]+)\b)");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), name); it != std::sregex_iterator();
       ++it) {
    std::string n = (*it)[1];
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      const size_t k = std::strlen(suffix);
      if (n.size() > k && n.compare(n.size() - k, k, suffix) == 0) n.resize(n.size() - k);
    }
    out.insert(n);
  }
  return out;
}

// The queries of a Grafana dashboard's panels, with Grafana's
// $__rate_interval made a range Prometheus takes.
std::vector<std::string> DashboardQueries(const std::filesystem::path& path) {
  std::vector<std::string> out;
  json::value board = json::parse(ReadFile(path));
  for (const auto& panel : board.at("panels").as_array()) {
    const auto& p = panel.as_object();
    if (!p.contains("targets")) continue;
    for (const auto& t : p.at("targets").as_array()) {
      std::string expr(t.at("expr").as_string());
      for (size_t at; (at = expr.find("$__rate_interval")) != std::string::npos;) {
        expr.replace(at, std::strlen("$__rate_interval"), "30s");
      }
      out.push_back(expr);
    }
  }
  return out;
}

class PrometheusE2eTest : public testing::WsServerTest<PromConfig> {
 protected:
  void TearDown() override {
    if (prometheus_ > 0) {
      ::kill(prometheus_, SIGTERM);
      if (!testing::WaitForExit(prometheus_, Ms(10000))) {
        ::kill(prometheus_, SIGKILL);
        testing::WaitForExit(prometheus_, Ms(5000));
      }
    }
    if (HasFailure() && !dir_.empty()) {
      std::ifstream log(dir_ / "prometheus.log");
      std::stringstream text;
      text << log.rdbuf();
      const std::string s = text.str();
      std::printf("prometheus log (tail):\n%s\n",
                  s.substr(s.size() > 4000 ? s.size() - 4000 : 0).c_str());
    }
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // The /metrics addresses of every node of the target.
  std::vector<std::string> Targets() const {
    std::vector<std::string> out;
    if (!cluster_) return {"127.0.0.1:" + std::to_string(port())};
    for (const auto& n : cluster_->nodes()) out.push_back(n.http);
    return out;
  }

  bool StartPrometheus(const std::vector<std::string>& targets) {
    dir_ = testing::FreshTempDir("mpim-prometheus-");
    prom_port_ = testing::FreePort();
    std::ofstream cfg(dir_ / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "rule_files:\n  - " << kRules.string() << "\n"
        << "scrape_configs:\n  - job_name: mpim\n    static_configs:\n      - targets: [";
    for (size_t i = 0; i < targets.size(); ++i) cfg << (i ? ", " : "") << "'" << targets[i] << "'";
    cfg << "]\n";
    cfg.close();
    std::string error;
    prometheus_ =
        testing::SpawnEngine({"prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                              "--storage.tsdb.path=" + (dir_ / "data").string(),
                              "--web.listen-address=127.0.0.1:" + std::to_string(prom_port_)},
                             (dir_ / "prometheus.log").string(), &error);
    if (prometheus_ <= 0) {
      ADD_FAILURE() << "prometheus: " << error;
      return false;
    }
    return true;
  }

  // GET on Prometheus' HTTP API: the "data" of a success, else null.
  json::value Api(const std::string& path) {
    ApiResponse r = ApiClient(prom_port_).Call("GET", path);
    if (r.status != 200 || !r.json.is_object()) return nullptr;
    const auto& o = r.json.as_object();
    if (!o.contains("status") || o.at("status") != "success") return nullptr;
    return o.at("data");
  }
  // The number of series of an instant query (-1 if it failed).
  int Series(const std::string& query) {
    std::string q;
    for (char c : query) {
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
        q += c;
      } else {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
        q += buf;
      }
    }
    json::value d = Api("/api/v1/query?query=" + q);
    if (!d.is_object() || !d.as_object().contains("result")) return -1;
    return static_cast<int>(d.at("result").as_array().size());
  }

  // Until `done` holds, `limit` at most.
  template <typename Pred>
  bool Await(Pred done, std::chrono::seconds limit = std::chrono::seconds(60)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (done()) return true;
      std::this_thread::sleep_for(Ms(250));
    }
    return done();
  }

  std::filesystem::path dir_;
  uint16_t prom_port_ = 0;
  pid_t prometheus_ = -1;
};

TEST_F(PrometheusE2eTest, ScrapesEveryNodeAndEvaluatesEveryAlertRule) {
  // Some chat, so that the message path's series exist: a pair sends both
  // ways, acks, reads, and one side leaves.
  auto pair = NewPair("prom");
  auto a = OpenWs(Login(pair.a).access_token);
  auto b = OpenWs(Login(pair.b).access_token);
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(a->Request(TextSend(pair.b.id(), "p" + std::to_string(i), "hi")));
    ASSERT_TRUE(b->Request(TextSend(pair.a.id(), "q" + std::to_string(i), "hello")));
  }
  ASSERT_TRUE(b->Ack(pair.conv, 10));
  EXPECT_EQ(api_->Get("/conversations", Login(pair.a).access_token).status, 200);
  b.reset();

  const std::vector<std::string> targets = Targets();
  ASSERT_TRUE(StartPrometheus(targets));
  // Every node scraped and up.
  ASSERT_TRUE(Await([&] {
    return Series("up{job=\"mpim\"} == 1") == static_cast<int>(targets.size());
  })) << "targets: "
      << json::serialize(Api("/api/v1/targets"));
  EXPECT_TRUE(Await([&] { return Series("mpim_ready == 1") == static_cast<int>(targets.size()); }))
      << "every node ready, as its /readyz says";

  // Every rule loaded and evaluated without error.
  std::vector<std::string> unhealthy;
  size_t rules = 0;
  ASSERT_TRUE(Await([&] {
    json::value d = Api("/api/v1/rules");
    if (!d.is_object()) return false;
    unhealthy.clear();
    rules = 0;
    for (const auto& g : d.at("groups").as_array()) {
      for (const auto& r : g.at("rules").as_array()) {
        ++rules;
        const auto& o = r.as_object();
        if (o.at("health") != "ok") {
          unhealthy.push_back(
              std::string(o.at("name").as_string()) + ": " +
              json::serialize(o.contains("lastError") ? o.at("lastError") : o.at("health")));
        }
      }
    }
    return rules > 0 && unhealthy.empty();
  })) << "rules "
      << rules << ", not ok: " << ::testing::PrintToString(unhealthy);
  EXPECT_GE(rules, 20u);

  // Every metric the rules name has series, or is one that waits for its event.
  const bool cluster = cluster_ != nullptr;
  std::vector<std::string> missing;
  for (const std::string& name : MetricsIn(ReadFile(kRules))) {
    if (RoleMissing(name, cluster) || OnlyOnEvent().count(name)) continue;
    const std::string query = "{__name__=~\"" + name + "|" + name + "_bucket\"}";
    if (!Await([&] { return Series(query) > 0; }, std::chrono::seconds(5))) missing.push_back(name);
  }
  EXPECT_TRUE(missing.empty()) << "named by rules but without series: "
                               << ::testing::PrintToString(missing);
  // The new latency metrics count what happened: 10 messages stored and
  // handed to a live session.
  EXPECT_TRUE(Await([&] { return Series("sum(mpim_store_commit_writes_sum) >= 10") == 1; },
                    std::chrono::seconds(10)));
  EXPECT_TRUE(Await([&] { return Series("sum(mpim_message_delivery_seconds_count) >= 10") == 1; },
                    std::chrono::seconds(10)));
  // Every dashboard query returns series, unless it waits for an event.
  std::vector<std::filesystem::path> boards = {kDeploy / "grafana" / "mpim-server.json"};
  if (cluster) boards.push_back(kDeploy / "grafana" / "mpim-cluster.json");
  for (const auto& board : boards) {
    SCOPED_TRACE(board.filename().string());
    std::vector<std::string> empty;
    size_t checked = 0;
    for (const std::string& expr : DashboardQueries(board)) {
      bool waits = false;
      for (const std::string& name : MetricsIn(expr)) {
        waits = waits || RoleMissing(name, cluster) || OnlyOnEvent().count(name) > 0;
      }
      if (waits) continue;
      ++checked;
      if (!Await([&] { return Series(expr) > 0; }, std::chrono::seconds(5))) empty.push_back(expr);
    }
    std::printf("%s: %zu queries returned series, the others wait for their events\n",
                board.filename().c_str(), checked);
    EXPECT_GE(checked, 15u);
    EXPECT_TRUE(empty.empty()) << "panel queries without series: "
                               << ::testing::PrintToString(empty);
  }
  // And nothing fires on a healthy target.
  EXPECT_EQ(Series("ALERTS{alertstate=\"firing\"}"), 0) << json::serialize(Api("/api/v1/alerts"));
}

}  // namespace
}  // namespace mpim
