#include "discovery/dns_discovery.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <sys/select.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/logging.h"

namespace mpim::discovery {
namespace {

const core::Logger& Log() {
  static const core::Logger log("discovery");
  return log;
}

constexpr int kClassIn = 1;   // C_IN
constexpr int kTypeSrv = 33;  // T_SRV

// c-ares is initialised once per process.
void InitAres() {
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  (void)status;
}

// A channel with our servers and timeout; null on failure.
ares_channel OpenChannel(const DnsDiscoveryOptions& options) {
  ares_options o{};
  o.timeout = static_cast<int>(std::max<int64_t>(100, options.timeout_ms / 2));
  o.tries = 2;
  ares_channel channel = nullptr;
  if (ares_init_options(&channel, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
    return nullptr;
  }
  if (!options.servers.empty()) {
    std::string csv;
    for (const std::string& s : options.servers) csv += (csv.empty() ? "" : ",") + s;
    if (ares_set_servers_ports_csv(channel, csv.c_str()) != ARES_SUCCESS) {
      ares_destroy(channel);
      return nullptr;
    }
  }
  return channel;
}

// Runs the channel until `answered()` (every callback has run) or
// `deadline`. Not "until no socket is open": c-ares can hold no socket while
// a query is still pending (seen with the server gone: each lookup failed
// "Could not contact DNS servers" but, now and then, one returned before
// its callback ran and read as an answer with no records, which emptied the
// role's list).
template <typename Answered>
void Drive(ares_channel channel, Answered answered,
           std::chrono::steady_clock::time_point deadline) {
  while (!answered() && std::chrono::steady_clock::now() < deadline) {
    fd_set readers, writers;
    FD_ZERO(&readers);
    FD_ZERO(&writers);
    int nfds = ares_fds(channel, &readers, &writers);
    timeval max{0, 50'000}, tv{};
    timeval* wait = ares_timeout(channel, &max, &tv);
    select(nfds, &readers, &writers, nullptr, wait);
    ares_process(channel, &readers, &writers);
  }
}

struct SrvAnswer {
  bool answered = false;  // the callback ran; until then, no answer at all
  int status = ARES_ETIMEOUT;
  struct Target {
    std::string host;
    uint16_t port = 0;
    uint16_t weight = 0;
  };
  std::vector<Target> targets;
};

void OnSrv(void* arg, int status, int, unsigned char* abuf, int alen) {
  auto* answer = static_cast<SrvAnswer*>(arg);
  answer->answered = true;
  answer->status = status;
  if (status != ARES_SUCCESS) return;
  ares_srv_reply* reply = nullptr;
  answer->status = ares_parse_srv_reply(abuf, alen, &reply);
  for (ares_srv_reply* r = reply; r; r = r->next) {
    answer->targets.push_back({r->host, r->port, r->weight});
  }
  if (reply) ares_free_data(reply);
}

struct HostAnswer {
  bool answered = false;
  int status = ARES_ETIMEOUT;
  std::string ipv4;
};

void OnHost(void* arg, int status, int, hostent* host) {
  auto* answer = static_cast<HostAnswer*>(arg);
  answer->answered = true;
  answer->status = status;
  if (status != ARES_SUCCESS || !host || !host->h_addr_list || !host->h_addr_list[0]) return;
  char text[INET_ADDRSTRLEN];
  if (inet_ntop(AF_INET, host->h_addr_list[0], text, sizeof text)) answer->ipv4 = text;
}

// "The name has no such records" rather than "the lookup failed".
bool NoSuchRecords(int status) { return status == ARES_ENOTFOUND || status == ARES_ENODATA; }

}  // namespace

DnsDiscovery::DnsDiscovery(DnsDiscoveryOptions options) : options_(std::move(options)) {
  InitAres();
}

DnsDiscovery::~DnsDiscovery() { Stop(); }

std::optional<std::vector<Node>> DnsDiscovery::Resolve(const std::string& role,
                                                       const std::string& name) {
  ares_channel channel = OpenChannel(options_);
  if (!channel) return std::nullopt;
  // Every try of every server, and a second to spare.
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms * 2 + 1000);
  SrvAnswer srv;
  ares_query(channel, name.c_str(), kClassIn, kTypeSrv, OnSrv, &srv);
  Drive(
      channel, [&] { return srv.answered; }, deadline);
  std::optional<std::vector<Node>> nodes;
  if (srv.answered && (srv.status == ARES_SUCCESS || NoSuchRecords(srv.status))) {
    std::vector<HostAnswer> hosts(srv.targets.size());
    for (size_t i = 0; i < srv.targets.size(); ++i) {
      ares_gethostbyname(channel, srv.targets[i].host.c_str(), AF_INET, OnHost, &hosts[i]);
    }
    Drive(
        channel,
        [&] {
          return std::all_of(hosts.begin(), hosts.end(),
                             [](const HostAnswer& h) { return h.answered; });
        },
        deadline);
    nodes.emplace();
    for (size_t i = 0; i < srv.targets.size(); ++i) {
      if (hosts[i].ipv4.empty()) {
        // A target without an address cannot be called; a failed lookup
        // keeps the role's last list instead of dropping the node.
        if (!NoSuchRecords(hosts[i].status)) nodes.reset();
        if (!nodes) break;
        continue;
      }
      Node n;
      n.role = role;
      n.address = hosts[i].ipv4 + ":" + std::to_string(srv.targets[i].port);
      n.name = role + "@" + srv.targets[i].host + ":" + std::to_string(srv.targets[i].port);
      n.weight = std::max<uint32_t>(1, srv.targets[i].weight);
      nodes->push_back(std::move(n));
    }
  }
  if (!nodes) {
    Log().Warn("DNS SRV lookup failed; the last list stays",
               {{"name", name}, {"error", std::string(ares_strerror(srv.status))}});
  }
  ares_destroy(channel);
  return nodes;
}

void DnsDiscovery::Refresh() {
  std::lock_guard round(resolve_mu_);
  std::map<std::string, std::optional<std::vector<Node>>> answers;
  for (const std::string& entry : options_.srv) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos) continue;
    answers[entry] = Resolve(entry.substr(0, eq), entry.substr(eq + 1));
  }
  std::vector<Node> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [entry, nodes] : answers) {
      if (nodes) by_role_[entry] = std::move(*nodes);
    }
    std::map<std::string, Node> by_name;
    for (const auto& [entry, nodes] : by_role_) {
      for (const Node& n : nodes) by_name[n.name] = n;
    }
    // This node by its own registration (its SRV record, if listed, names
    // the same process).
    if (self_) {
      for (auto it = by_name.begin(); it != by_name.end();) {
        it = it->second.address == self_->address && it->second.role == self_->role
                 ? by_name.erase(it)
                 : std::next(it);
      }
      by_name[self_->name] = *self_;
    }
    for (auto& [name, n] : by_name) all.push_back(std::move(n));
  }
  if (watchers_.Set(std::move(all))) {
    Log().Info("nodes changed", {{"nodes", uint64_t{watchers_.Nodes().size()}}});
  }
}

core::StatusOr<int64_t> DnsDiscovery::Register(const Node& self) {
  {
    std::lock_guard lock(mu_);
    self_ = self;
  }
  Refresh();
  std::lock_guard lock(mu_);
  if (!started_ && !stopping_) {
    started_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  return self.node_id;
}

void DnsDiscovery::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(options_.refresh_ms),
                       [this] { return stopping_; })) {
        return;
      }
    }
    Refresh();
  }
}

void DnsDiscovery::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mpim::discovery
