// The shared engines of a multi-node run (`mpim-bench --nodes`): a
// redis-server and a mariadbd the bench starts in temp dirs (or URLs of
// running ones), and what every `mpim serve` node needs to use them
// (docs/benchmarks.md, session 9). The same settings as the test cluster
// (tests/support/node_cluster.cc): distinct server.node_id, one
// auth.token_key, store mysql, cache, routes and bus on Redis.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace mpim::bench {

// redis-server on a free 127.0.0.1 port, no persistence, in a temp dir.
class RedisProc {
 public:
  ~RedisProc();  // stops it, removes the dir
  bool Start(std::string* error);
  void Stop();
  pid_t pid() const { return pid_; }
  std::string Url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// mariadbd on a free 127.0.0.1 port in a temp dir (mariadb-install-db once),
// durable commits (innodb_flush_log_at_trx_commit = 1), 128 MB buffer pool,
// no binlog: the server of session 8. A user mpim/mpim may do everything.
class MariaDbProc {
 public:
  ~MariaDbProc();  // stops it, removes the dir
  bool Start(std::string* error);
  void Stop();
  pid_t pid() const { return pid_; }
  // Creates database `name` ([a-z0-9_]) and returns its mysql:// URL; "" on error.
  std::string CreateDatabase(const std::string& name, std::string* error);
  void DropDatabase(const std::string& name);

 private:
  bool Sql(const std::string& statement, std::string* error);

  std::filesystem::path dir_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

// The environment of node `index` (0-based; server.node_id = index + 1).
std::vector<std::pair<std::string, std::string>> NodeEnv(int index, const std::string& mysql_url,
                                                         const std::string& redis_url,
                                                         const std::string& bus_engine,
                                                         const std::string& token_key);

// 32 random bytes, base64url without padding: auth.token_key of every node.
std::string RandomTokenKey();

}  // namespace mpim::bench
