#include "support/etcd_server.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "support/server_process.h"

namespace mpim::testing {

EtcdServer::EtcdServer() = default;

EtcdServer::~EtcdServer() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string EtcdServer::Endpoint() const { return "127.0.0.1:" + std::to_string(client_port_); }

bool EtcdServer::Spawn() {
  const std::string client = "http://127.0.0.1:" + std::to_string(client_port_);
  const std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args = {"etcd",
                                   "--name",
                                   "test",
                                   "--data-dir",
                                   (dir_ / "data").string(),
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   "test=" + peer,
                                   "--log-outputs",
                                   (dir_ / "etcd.log").string(),
                                   "--logger",
                                   "zap"};
  pid_ = SpawnEngine(args, (dir_ / "etcd.out").string(), &error_);
  return pid_ > 0;
}

bool EtcdServer::WaitReady(std::chrono::steady_clock::time_point until) {
  // etcdctl (Debian's etcd-client) asks the v3 API itself.
  const std::string probe =
      "ETCDCTL_API=3 etcdctl --endpoints=127.0.0.1:" + std::to_string(client_port_) +
      " --dial-timeout=1s --command-timeout=1s endpoint health 2>&1";
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(dir_ / "etcd.out");
      std::stringstream log;
      log << in.rdbuf();
      std::string text = log.str();
      if (text.size() > 3000) text = text.substr(text.size() - 3000);
      error_ = "etcd exited on port " + std::to_string(client_port_) + "; output:\n" + text;
      return false;
    }
    int code = 0;
    const std::string health = RunCommand(probe, &code);
    if (code == 0 && health.find("is healthy") != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval, not a sync
  }
  error_ = "etcd did not report healthy on port " + std::to_string(client_port_);
  return false;
}

bool EtcdServer::Start(std::chrono::milliseconds deadline) {
  if (running()) return true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  if (dir_.empty()) dir_ = FreshTempDir("mpim-etcd-");
  const bool first = client_port_ == 0;
  for (int attempt = 0; attempt < (first ? 3 : 1); ++attempt) {
    if (first) {
      client_port_ = FreePort();
      peer_port_ = FreePort();
    }
    if (!Spawn()) return false;
    if (WaitReady(until)) return true;
    if (running()) {
      Kill();
      return false;
    }
  }
  return false;
}

void EtcdServer::Kill() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  WaitForExit(pid_, std::chrono::seconds(30));
  pid_ = -1;
}

bool EtcdServer::Restart() {
  Kill();
  return Start();
}

}  // namespace mpim::testing
