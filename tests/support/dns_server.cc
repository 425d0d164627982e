#include "support/dns_server.h"

#include <signal.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "support/server_process.h"

namespace mpim::testing {

DnsServer::~DnsServer() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

void DnsServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  WaitForExit(pid_, std::chrono::seconds(10));
  pid_ = -1;
}

bool DnsServer::Start(const std::vector<Srv>& srv, const std::vector<Host>& hosts) {
  Kill();
  if (dir_.empty()) dir_ = FreshTempDir("mpim-dns-");
  if (port_ == 0) port_ = FreePort();
  std::vector<std::string> args = {"dnsmasq",
                                   "--keep-in-foreground",
                                   "--conf-file=/dev/null",
                                   "--no-resolv",
                                   "--no-hosts",
                                   "--no-negcache",
                                   "--local=/test/",
                                   "--listen-address=127.0.0.1",
                                   "--bind-interfaces",
                                   "--pid-file=",
                                   "--log-facility=-",
                                   "--port=" + std::to_string(port_)};
  for (const Srv& s : srv) {
    args.push_back("--srv-host=" + s.name + "," + s.target + "," + std::to_string(s.port) + ",0," +
                   std::to_string(s.weight));
  }
  for (const Host& h : hosts) args.push_back("--host-record=" + h.name + "," + h.ipv4);
  const std::string out = (dir_ / "dnsmasq.out").string();
  pid_ = SpawnEngine(args, out, &error_);
  if (pid_ <= 0) return false;
  // Ready once it says so (it logs after binding its port).
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(out);
    std::stringstream log;
    log << in.rdbuf();
    if (log.str().find("started, version") != std::string::npos) return true;
    if (log.str().find("FAILED") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a sync
  }
  std::ifstream in(out);
  std::stringstream log;
  log << in.rdbuf();
  error_ = "dnsmasq did not answer on port " + std::to_string(port_) + "; output:\n" + log.str();
  Kill();
  return false;
}

}  // namespace mpim::testing
