// What a benchmark run needs around the load: a fresh `mpim serve` to run
// against, users and tokens made through the HTTP API, a group, the server's
// resident memory, and a description of the machine.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mpim::bench {

// A `mpim serve` on a free loopback port with a temp data dir, started with
// the environment a load test needs (cheap password hashing, login, send and
// connection limits out of the way) plus `extra_env`.
class ServerProc {
 public:
  ~ServerProc();  // stops the server, removes the data dir
  bool Start(const std::string& binary, const std::vector<std::pair<std::string, std::string>>& env,
             std::string* error);
  void Stop();  // SIGTERM, SIGKILL after 15 s
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  std::string LogTail(size_t bytes) const;

  // The environment Start() always sets.
  static std::vector<std::pair<std::string, std::string>> LoadEnv();

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// A free TCP port on 127.0.0.1 (bound and released: the caller binds it next).
uint16_t FreePort();

// Resident memory of a process in KiB (VmRSS of /proc/<pid>/status), 0 if unknown.
uint64_t RssKib(pid_t pid);
// process_resident_memory_bytes from the server's /metrics, in KiB; 0 if unknown.
uint64_t MetricsRssKib(const std::string& host, uint16_t port);

// CPU time (user + system) a process has used so far, in seconds; 0 if unknown.
double CpuSeconds(pid_t pid);

struct User {
  uint64_t id = 0;
  std::string username;
  std::string token;  // empty unless logged in
};

// Registers `count` users named <prefix><i> and logs in the first `logins`,
// over `concurrency` HTTP connections. Fails on the first error.
bool CreateUsers(const std::string& host, uint16_t port, const std::string& prefix, int count,
                 int logins, int concurrency, std::vector<User>* users, std::string* error);

// POST /groups by `owner` with `members` (ids): the group id, 0 on error.
uint64_t CreateGroup(const std::string& host, uint16_t port, const User& owner,
                     const std::vector<uint64_t>& members, std::string* error);

// nproc, memory, kernel, CPU model, load average.
struct Machine {
  int cpus = 0;
  uint64_t mem_kib = 0;
  std::string kernel;
  std::string cpu_model;
  std::string load;  // /proc/loadavg when the run started
};
Machine DescribeMachine();

// Raises RLIMIT_NOFILE to its hard limit; the resulting soft limit.
uint64_t RaiseFdLimit();

}  // namespace mpim::bench
