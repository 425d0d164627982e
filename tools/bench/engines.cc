#include "bench/engines.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "bench/setup.h"
#include "service/auth/jwt.h"

namespace mpim::bench {
namespace {

std::filesystem::path FreshDir(const std::string& prefix) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Tail(const std::filesystem::path& file, size_t bytes = 3000) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > bytes ? "..." + text.substr(text.size() - bytes) : text;
}

// Forks and execs `args` (PATH lookup) with stdout and stderr to `log`; the
// child gets SIGKILL when this process dies.
pid_t Spawn(std::vector<std::string> args, const std::string& log) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

// SIGTERM, then SIGKILL after `grace`; reaps it.
void StopProcess(pid_t& pid, std::chrono::seconds grace) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) {
      pid = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pid = -1;
}

bool Exited(pid_t& pid) {
  if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == pid) pid = -1;
  return pid <= 0;
}

bool Quiet(const std::string& command) {
  return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

RedisProc::~RedisProc() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool RedisProc::Start(std::string* error) {
  dir_ = FreshDir("mpim-bench-redis-");
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    pid_ = Spawn({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--dir",
                  dir_.string(), "--save", "", "--appendonly", "no"},
                 (dir_ / "redis.log").string());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until && !Exited(pid_)) {
      if (Quiet("redis-cli -p " + std::to_string(port_) + " ping")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (pid_ > 0) break;  // running but silent
  }
  *error = "redis-server did not start:\n" + Tail(dir_ / "redis.log");
  Stop();
  return false;
}

void RedisProc::Stop() { StopProcess(pid_, std::chrono::seconds(10)); }

MariaDbProc::~MariaDbProc() {
  Stop();
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

bool MariaDbProc::Start(std::string* error) {
  dir_ = FreshDir("mpim-bench-mariadb-");
  std::filesystem::create_directories(dir_ / "tmp");
  {
    std::ofstream init(dir_ / "init.sql");
    init << "CREATE USER IF NOT EXISTS 'mpim'@'%' IDENTIFIED BY 'mpim';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'mpim'@'%' WITH GRANT OPTION;\n";
  }
  const std::string user = ::geteuid() == 0 ? " --user=root" : "";
  const std::string log_size = "--innodb-log-file-size=32M";
  const std::string install =
      "mariadb-install-db --no-defaults --datadir=" + Quote((dir_ / "data").string()) +
      " --tmpdir=" + Quote((dir_ / "tmp").string()) + user +
      " --skip-test-db --auth-root-authentication-method=normal --skip-name-resolve " + log_size +
      " --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-frm=0 >" +
      Quote((dir_ / "install.log").string()) + " 2>&1";
  if (std::system(install.c_str()) != 0) {
    *error = "mariadb-install-db failed:\n" + Tail(dir_ / "install.log");
    return false;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    std::vector<std::string> args = {"mariadbd",
                                     "--no-defaults",
                                     "--datadir=" + (dir_ / "data").string(),
                                     "--tmpdir=" + (dir_ / "tmp").string(),
                                     "--socket=" + (dir_ / "mariadbd.sock").string(),
                                     "--pid-file=" + (dir_ / "mariadbd.pid").string(),
                                     "--init-file=" + (dir_ / "init.sql").string(),
                                     "--port=" + std::to_string(port_),
                                     "--bind-address=127.0.0.1",
                                     "--skip-name-resolve",
                                     "--skip-log-bin",
                                     "--innodb-flush-log-at-trx-commit=1",
                                     "--innodb-buffer-pool-size=128M",
                                     log_size,
                                     "--max-connections=500",
                                     "--innodb-ft-min-token-size=1",
                                     "--character-set-server=utf8mb4",
                                     "--collation-server=utf8mb4_uca1400_ai_ci"};
    if (!user.empty()) args.push_back("--user=root");
    pid_ = Spawn(args, (dir_ / "mariadbd.log").string());
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(90);
    while (std::chrono::steady_clock::now() < until && !Exited(pid_)) {
      if (Quiet("mariadb --no-defaults -h 127.0.0.1 -P " + std::to_string(port_) +
                " -u mpim -pmpim -e 'SELECT 1'")) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (pid_ > 0) break;
  }
  *error = "mariadbd did not start:\n" + Tail(dir_ / "mariadbd.log");
  Stop();
  return false;
}

void MariaDbProc::Stop() { StopProcess(pid_, std::chrono::seconds(60)); }

bool MariaDbProc::Sql(const std::string& statement, std::string* error) {
  const std::string log = (dir_ / "sql.log").string();
  const std::string cmd = "mariadb --no-defaults -h 127.0.0.1 -P " + std::to_string(port_) +
                          " -u mpim -pmpim -e " + Quote(statement) + " >" + Quote(log) + " 2>&1";
  if (std::system(cmd.c_str()) == 0) return true;
  if (error) *error = statement + ": " + Tail(log);
  return false;
}

std::string MariaDbProc::CreateDatabase(const std::string& name, std::string* error) {
  if (!Sql("CREATE DATABASE IF NOT EXISTS `" + name +
               "` CHARACTER SET utf8mb4 COLLATE utf8mb4_uca1400_ai_ci",
           error)) {
    return "";
  }
  return "mysql://mpim:mpim@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

void MariaDbProc::DropDatabase(const std::string& name) {
  Sql("DROP DATABASE IF EXISTS `" + name + "`", nullptr);
}

std::vector<std::pair<std::string, std::string>> NodeEnv(int index, const std::string& mysql_url,
                                                         const std::string& redis_url,
                                                         const std::string& bus_engine,
                                                         const std::string& token_key) {
  return {
      {"MPIM_SERVER_NODE_ID", std::to_string(index + 1)},
      {"MPIM_STORE_ENGINE", "mysql"},
      {"MPIM_STORE_MYSQL_URL", mysql_url},
      {"MPIM_CACHE_ENGINE", "redis"},
      {"MPIM_CACHE_REDIS_URL", redis_url},
      {"MPIM_ROUTE_ENGINE", "redis"},
      {"MPIM_ROUTE_REDIS_URL", redis_url},
      {"MPIM_BUS_ENGINE", bus_engine},
      {"MPIM_BUS_REDIS_URL", redis_url},
      // One signing key for every node: a token from one is good on all.
      {"MPIM_AUTH_TOKEN_KEY", token_key},
      {"MPIM_AUTH_TOKEN_KEY_ID", "bench"},
  };
}

std::string RandomTokenKey() {
  std::random_device rd;
  std::string bytes;
  for (int i = 0; i < 32; ++i) bytes += static_cast<char>(rd() & 0xff);
  return service::auth::Base64UrlEncode(bytes);
}

}  // namespace mpim::bench
