#include "support/restart_target.h"

#include <signal.h>

#include "support/api_client.h"

namespace mpim::testing {
namespace {

// Restart order: the logic nodes first (a gateway is ready once it reaches
// one), then the task node, then the gateways; stop order the reverse.
constexpr const char* kStartOrder[] = {"logic", "task", "gateway", "edge"};
constexpr const char* kStopOrder[] = {"edge", "gateway", "task", "logic"};

}  // namespace

RestartTarget::RestartTarget(std::vector<std::pair<std::string, std::string>> env,
                             std::vector<std::string> settings) {
  std::vector<std::string> args = ClusterTargetArgs();
  for (std::string& s : settings) {
    args.push_back("--set");
    args.push_back(std::move(s));
  }
  if (ClusterTarget()) {
    cluster_ = std::make_unique<ClusterUpProcess>(
        ClusterUpProcess::Options{.args = std::move(args), .env = std::move(env)});
  } else {
    series_ = std::make_unique<ServerSeries>(
        ServerProcess::Options{.extra_args = std::move(args), .env = std::move(env)});
  }
}

RestartTarget::~RestartTarget() = default;

bool RestartTarget::Start() {
  if (series_) {
    current_ = series_->Start();
    if (current_ != nullptr) last_ = current_;
    if (current_ == nullptr) error_ = series_->error();
    return current_ != nullptr;
  }
  if (!started_) {
    started_ = cluster_->Start();
    if (!started_) error_ = cluster_->error();
    return started_;
  }
  for (const char* role : kStartOrder) {
    for (ClusterUpProcess::Node* n : cluster_->NodesOf(role)) {
      if (!cluster_->Restart(n->name)) {
        error_ = cluster_->error();
        return false;
      }
    }
  }
  return true;
}

bool RestartTarget::Kill() {
  if (series_) {
    if (current_ == nullptr) return true;
    current_->Signal(SIGKILL);
    const bool gone = current_->Wait(std::chrono::seconds(10)) == -SIGKILL;
    current_ = nullptr;
    return gone;
  }
  bool all = true;
  for (ClusterUpProcess::Node& n : cluster_->nodes()) all = cluster_->Kill(n.name) && all;
  return all;
}

std::optional<int> RestartTarget::Terminate(std::chrono::milliseconds deadline) {
  if (series_) {
    if (current_ == nullptr) return 0;
    current_->Signal(SIGTERM);
    auto code = current_->Wait(deadline);
    current_ = nullptr;
    return code;
  }
  int result = 0;
  for (const char* role : kStopOrder) {  // each role's nodes at once
    for (ClusterUpProcess::Node* n : cluster_->NodesOf(role)) cluster_->Signal(n->name, SIGTERM);
    for (ClusterUpProcess::Node* n : cluster_->NodesOf(role)) {
      auto code = cluster_->AwaitExit(n->name, deadline);
      if (!code) return std::nullopt;
      if (result == 0) result = *code;
    }
  }
  return result;
}

std::vector<uint16_t> RestartTarget::ports() const {
  if (series_) return current_ ? std::vector<uint16_t>{current_->port()} : std::vector<uint16_t>{};
  return cluster_->client_ports();
}

uint16_t RestartTarget::port(size_t k) const {
  std::vector<uint16_t> all = ports();
  return all.empty() ? 0 : all[k % all.size()];
}

double RestartTarget::MetricSum(std::string_view series) const {
  if (series_) return current_ ? ApiClient(current_->port()).Metric(series) : 0;
  double sum = 0;
  for (const ClusterUpProcess::Node& n : cluster_->nodes()) sum += ApiClient(n.port).Metric(series);
  return sum;
}

std::string RestartTarget::Logs() const {
  if (series_) return last_ ? last_->Logs() : std::string();
  std::string logs = "mpim cluster up:\n" + cluster_->Stderr();
  for (const ClusterUpProcess::Node& n : cluster_->nodes()) {
    logs += "\n" + n.name + ":\n" + cluster_->NodeLog(n.name, size_t{1} << 26);
  }
  return logs;
}

}  // namespace mpim::testing
