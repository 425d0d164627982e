// The engines of a local cluster (`mpim cluster up`, cluster.md section 3):
// redis-server, mariadbd and etcd from PATH, each on a 127.0.0.1 port with
// its data and log under one directory, kept across runs.
//
//   DIR/redis/      dump.rdb (saved on a clean stop)
//   DIR/mariadb/    data/ (mariadb-install-db on first use), tmp/, the socket
//   DIR/etcd/       data/
//   DIR/logs/       redis.log, mariadb.log, etcd.log
//
// Threads: one thread at a time (`mpim cluster up`'s main thread).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace mpim::app {

// What a local cluster runs, and the Debian package that has each program.
struct EngineProgram {
  const char* program;
  const char* package;
};
const std::vector<EngineProgram>& LocalEnginePrograms();

// The first program missing from PATH, as "PROGRAM (install the Debian
// package PACKAGE)"; empty when every one is there.
std::string MissingEngineProgram();

class LocalEngine {
 public:
  virtual ~LocalEngine() = default;
  // Starts the process (preparing its data on first use).
  virtual absl::Status Start() = 0;
  // Ok once it serves; unavailable while it does not yet.
  virtual absl::Status Probe() = 0;
  virtual const char* name() const = 0;
  // Redis and etcd: HOST:PORT; MariaDB: the mysql:// URL of MPIM's database.
  virtual std::string address() const = 0;
  // SIGTERM (each engine saves and stops cleanly on it), SIGKILL after `grace`.
  void Stop(std::chrono::milliseconds grace);
  pid_t pid() const { return pid_; }
  void Forget() { pid_ = -1; }  // it exited (reaped elsewhere)
  std::filesystem::path log() const;

 protected:
  LocalEngine(std::filesystem::path dir, std::string log_name)
      : dir_(std::move(dir)), log_name_(std::move(log_name)) {}
  absl::Status SpawnLogged(std::vector<std::string> argv);

  std::filesystem::path dir_;  // the cluster's DIR
  std::string log_name_;
  pid_t pid_ = -1;
};

class LocalRedis : public LocalEngine {
 public:
  LocalRedis(std::filesystem::path dir, uint16_t port)
      : LocalEngine(std::move(dir), "redis.log"), port_(port) {}
  absl::Status Start() override;
  absl::Status Probe() override;
  const char* name() const override { return "redis"; }
  std::string address() const override;

 private:
  uint16_t port_;
};

// MariaDB with database `mpim` and user `mpim`@`127.0.0.1` (`password`)
// made once it first serves (utf8mb4 throughout, cluster.md section 4).
class LocalMariaDb : public LocalEngine {
 public:
  LocalMariaDb(std::filesystem::path dir, uint16_t port, std::string password)
      : LocalEngine(std::move(dir), "mariadb.log"), port_(port), password_(std::move(password)) {}
  absl::Status Start() override;
  absl::Status Probe() override;
  const char* name() const override { return "mariadb"; }
  std::string address() const override;

 private:
  absl::Status Install();
  std::filesystem::path home() const { return dir_ / "mariadb"; }

  uint16_t port_;
  std::string password_;
};

class LocalEtcd : public LocalEngine {
 public:
  LocalEtcd(std::filesystem::path dir, uint16_t client_port, uint16_t peer_port)
      : LocalEngine(std::move(dir), "etcd.log"), client_port_(client_port), peer_port_(peer_port) {}
  absl::Status Start() override;
  absl::Status Probe() override;
  const char* name() const override { return "etcd"; }
  std::string address() const override;

 private:
  uint16_t client_port_, peer_port_;
};

// GET http://127.0.0.1:PORT<target> with a 1 s timeout: the status code and
// body; unavailable when nothing answers.
struct HttpAnswer {
  int status = 0;
  std::string body;
};
absl::Status HttpGet(const std::string& host_port, const std::string& target, HttpAnswer* answer);

// The last `bytes` of a file (a log), "" if it cannot be read.
std::string FileTail(const std::filesystem::path& file, size_t bytes);

}  // namespace mpim::app
