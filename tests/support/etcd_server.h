// A real etcd for tests: Debian's etcd-server (etcd 3.4) on two free
// 127.0.0.1 ports (clients, peers), one member, its data in a fresh temp
// dir. Kill and Restart keep the data and the ports (as an etcd that
// crashes and comes back), Wipe starts over empty.
//
// Threads: the control methods from one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace mpim::testing {

class EtcdServer {
 public:
  EtcdServer();
  ~EtcdServer();  // SIGKILLs etcd if running, removes its temp dir

  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  // Starts etcd (on free ports the first time, the same ones after) and
  // waits until it serves (etcdctl endpoint health). False with error().
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(30));
  void Kill();  // SIGKILL, waits for exit; the data stays
  bool Restart();
  bool running() const { return pid_ > 0; }
  uint16_t port() const { return client_port_; }
  // 127.0.0.1:PORT of the client listener.
  std::string Endpoint() const;

  const std::string& error() const { return error_; }

 private:
  bool Spawn();
  bool WaitReady(std::chrono::steady_clock::time_point until);

  std::filesystem::path dir_;
  uint16_t client_port_ = 0;
  uint16_t peer_port_ = 0;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace mpim::testing
