// A real Redis for tests: redis-server (Debian's redis-server package) on a
// free 127.0.0.1 port, without persistence, its working dir and log in a
// fresh temp dir. Start, Stop, Kill, Restart (same port, empty data),
// Pause (SIGSTOP) and Resume, to test what a cache does when Redis goes away
// or stops answering.
//
// Threads: the control methods from one thread at a time; Command from any
// thread (its own connection each time).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mpim::testing {

class RedisServer {
 public:
  RedisServer();
  ~RedisServer();  // SIGKILLs redis-server if running, removes its temp dir

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts redis-server (on a free port the first time, on the same port
  // after) and waits until it answers PING. False with error() on failure.
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(20));
  void Stop();  // SIGTERM, waits for exit
  void Kill();  // SIGKILL, waits for exit
  // Kill (if running), then Start on the same port.
  bool Restart();
  void Pause();   // SIGSTOP: the port still accepts, nothing answers
  void Resume();  // SIGCONT
  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }
  // redis://127.0.0.1:PORT[/DB]
  std::string Url(int db = 0) const;

  // Runs one command on a connection of its own (1 s timeouts); the reply
  // as text: a string or status as it is, an integer in decimal, nil as
  // "(nil)", an error as "ERR: <text>", an array as its elements joined by
  // '\n'; "" with error() set if Redis cannot be reached.
  std::string Command(const std::vector<std::string>& args, int db = 0);

  const std::string& error() const { return error_; }

 private:
  bool Spawn();
  bool WaitReady(std::chrono::steady_clock::time_point until);
  void Signal(int signo);

  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string error_;
};

// One server per test process, started on first use, killed at exit. If it
// cannot start, the caller's test gets ADD_FAILURE with the error.
RedisServer& SharedRedis();

}  // namespace mpim::testing
