// A real MariaDB server for tests: mariadbd on a free 127.0.0.1 port, its
// data dir, socket and log in a fresh temp dir, run as the current user.
//
// Threads: Start, Stop, Kill, Pause and Resume from one thread at a time;
// CreateDatabase, DropDatabase and Sql from any thread (each opens its own
// connection as root over the unix socket; they report failures through
// ADD_FAILURE, never through error()).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>

namespace mpim::testing {

class MariaDbServer {
 public:
  MariaDbServer();
  ~MariaDbServer();  // SIGKILLs mariadbd if running, removes its temp dir

  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  // Initialises a data dir (mariadb-install-db) under a fresh temp dir on first
  // call, starts mariadbd on a free 127.0.0.1 port (the same port on every later
  // start), waits until it accepts a TCP login. False with error() on failure.
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(90));
  void Stop();    // SIGTERM, waits for exit
  void Kill();    // SIGKILL, waits for exit (data dir kept: Start() again recovers it)
  void Pause();   // SIGSTOP, for timeout tests
  void Resume();  // SIGCONT
  bool running() const { return pid_ > 0; }
  uint16_t port() const { return port_; }

  // Creates database `name` ([A-Za-z0-9_]+) if missing (utf8mb4,
  // utf8mb4_uca1400_ai_ci) and returns "mysql://mpim:mpim@127.0.0.1:PORT/name".
  // A user mpim/mpim with all privileges exists. "" after an ADD_FAILURE.
  std::string CreateDatabase(const std::string& name);
  void DropDatabase(const std::string& name);
  // Runs one SQL statement as root (for tests that inspect the DB); returns
  // rows as tab-separated lines, each ending in '\n' (NULL as "NULL").
  std::string Sql(const std::string& statement);

  const std::string& error() const { return error_; }

 private:
  bool Initialise();
  bool Spawn();
  bool WaitReady(std::chrono::steady_clock::time_point until);
  void SignalAndReap(int signo);
  std::string LogTail() const;

  std::filesystem::path dir_;  // empty until the first Start()
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string error_;
};

// One server per test process, started on first use, killed at exit (its
// dir goes with it). If it cannot start, the caller's test gets ADD_FAILURE
// with the error and the server stays down (its calls then fail at once).
MariaDbServer& SharedMariaDb();

}  // namespace mpim::testing
