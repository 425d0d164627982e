// Runs the real `mpim` binary for end-to-end tests: a free loopback port, a
// fresh temp data dir, stdout/stderr captured to files in that dir, and
// helpers to wait for /readyz, signal and reap it with deadlines.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mpim::testing {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).
uint16_t FreePort();

// Path of the built mpim binary (set by CMake as MPIM_BINARY; the
// environment's MPIM_BINARY wins: `make test-asan` points the release
// build's e2e suites at the ASan build's binary).
std::string MpimBinary();

// True when the server under test is a sanitizer build (this test binary is
// one, or MPIM_TEST_SANITIZED_SERVER is set, as `make test-asan` does): its
// allocator quarantines freed memory, so resident-memory bounds do not hold.
// (Servers inherit the test's environment and read MPIM_<SECTION>_<KEY> as
// config: a test variable must not start with a section's prefix.)
bool ServerSanitized();

// A new empty directory under the temp dir: <prefix><pid>-<random>.
std::filesystem::path FreshTempDir(const std::string& prefix);

// Runs `cmd` with /bin/sh and returns its stdout (add 2>&1 for stderr);
// `exit_code` gets its exit status, or -1 if it did not exit normally.
std::string RunCommand(const std::string& cmd, int* exit_code);

// Starts `args` (args[0] looked up on PATH) under setpriv (util-linux,
// always installed) with a parent-death SIGKILL, so that a test process
// that dies leaves no engine running; stdin from /dev/null, stdout and
// stderr appended to `output` (empty: /dev/null). The child's pid, or -1
// with `error` set.
pid_t SpawnEngine(const std::vector<std::string>& args, const std::string& output,
                  std::string* error);

// Reaps child `pid` once it exits: its exit code, or -signal if a signal
// killed it; nullopt if it has not exited within `deadline`.
std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds deadline);

class ServerProcess {
 public:
  struct Options {
    std::vector<std::string> extra_args;  // appended after `serve --listen --data-dir`
    std::vector<std::pair<std::string, std::string>> env;  // added to the environment
    std::filesystem::path data_dir;  // empty: a fresh temp dir, removed at the end
    // Where stdout and stderr go; empty: <data_dir>/server.log.
    std::filesystem::path log_file;
  };

  ServerProcess();
  explicit ServerProcess(Options options);
  ~ServerProcess();  // SIGKILLs the server if still running; removes a temp dir

  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts the server and waits until GET /readyz answers 200. Retries on a
  // new port if the port was taken meanwhile. False (with the log in
  // `error`) when it exits or is not ready within `deadline`.
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(20));

  void Signal(int signo);
  // The exit code, or -signal if killed by a signal; nullopt on timeout
  // (and when it never ran). A server that exited during Start keeps its
  // code here (Start does not try another port after exit code 2, a
  // configuration error).
  std::optional<int> Wait(std::chrono::milliseconds deadline);

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& data_dir() const { return data_dir_; }
  std::string Logs() const;                 // stdout + stderr so far
  std::string LogTail(size_t bytes) const;  // the last `bytes` of Logs()
  const std::string& error() const { return error_; }

 private:
  bool Spawn();

  Options options_;
  std::filesystem::path data_dir_;
  std::filesystem::path log_file_;
  bool own_dir_ = false;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;  // once it exited and was reaped
  std::string error_;
  std::string last_readyz_;  // status and body of the last /readyz while starting
};

// Servers run one after another on one data dir kept across them (a fresh
// temp dir, removed at the end), for tests of restarts and crashes. Every
// server gets the same options (`data_dir` is set here).
class ServerSeries {
 public:
  explicit ServerSeries(ServerProcess::Options options = {});
  ~ServerSeries();  // stops the servers still running, removes the dir

  ServerSeries(const ServerSeries&) = delete;
  ServerSeries& operator=(const ServerSeries&) = delete;

  // Starts one more server on the dir (earlier ones stay, stopped or not);
  // null when it does not become ready (see error()).
  ServerProcess* Start();

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& error() const { return error_; }

 private:
  ServerProcess::Options options_;
  std::filesystem::path dir_;
  std::vector<std::unique_ptr<ServerProcess>> servers_;
  std::string error_;
};

}  // namespace mpim::testing
