#include "support/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "client/http_client.h"
#include "core/child_process.h"
#include "core/ports.h"
#include "support/mariadb_server.h"
#include "support/redis_server.h"

namespace mpim::testing {

uint16_t FreePort() { return core::FreeLoopbackPort(); }

std::string MpimBinary() {
  if (const char* env = std::getenv("MPIM_BINARY")) return env;
  return MPIM_BINARY;
}

bool ServerSanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#else
  const char* env = std::getenv("MPIM_TEST_SANITIZED_SERVER");
  return env != nullptr && *env != '\0' && std::string_view(env) != "0";
#endif
}

std::filesystem::path FreshTempDir(const std::string& prefix) {
  std::random_device rd;
  auto dir = std::filesystem::temp_directory_path() /
             (prefix + std::to_string(getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir);
  return dir;
}

std::string RunCommand(const std::string& cmd, int* exit_code) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) {
    *exit_code = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

pid_t SpawnEngine(const std::vector<std::string>& args, const std::string& output,
                  std::string* error) {
  std::vector<std::string> all = {"setpriv", "--pdeathsig", "KILL"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t io;
  posix_spawn_file_actions_init(&io);
  posix_spawn_file_actions_addopen(&io, 0, "/dev/null", O_RDONLY, 0);
  const std::string out = output.empty() ? "/dev/null" : output;
  posix_spawn_file_actions_addopen(&io, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&io, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "setpriv", &io, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&io);
  if (rc != 0) {
    *error = "cannot run setpriv " + (args.empty() ? std::string() : args[0]) + ": " +
             std::string(std::strerror(rc));
    return -1;
  }
  return pid;
}

std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds deadline) {
  return core::WaitForExit(pid, deadline);
}

namespace {

// What names a data dir's own database (and cache key prefix): "t_" + the
// FNV-1a hash of its absolute path in hex, a valid MariaDB identifier.
std::string DataDirKey(const std::filesystem::path& data_dir) {
  uint64_t h = 14695981039346656037ull;
  for (char c : std::filesystem::absolute(data_dir).lexically_normal().string()) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return "t_" + std::string(hex);
}

// The engine flags of a server on `data_dir`, from the environment, so the
// e2e suites run unchanged on other engines (the *_mysql ctest entries):
//   MPIM_TEST_STORE=mysql  the store in database DataDirKey(data_dir) of the
//                          process's shared MariaDB (SharedMariaDb()): servers
//                          on one dir (a ServerSeries, a restart) share it,
//                          two dirs never do. Any other non-empty value is
//                          passed on as store.engine.
//   MPIM_TEST_CACHE=redis  the cache on the process's shared redis-server
//                          (SharedRedis()), its keys under the prefix
//                          DataDirKey(data_dir) + ":", so servers on two
//                          dirs (two databases, same ids) never share one.
//                          Any other non-empty value is passed on as
//                          cache.engine.
std::vector<std::string> EngineArgs(const std::filesystem::path& data_dir) {
  std::vector<std::string> args;
  const std::string store = std::getenv("MPIM_TEST_STORE") ? std::getenv("MPIM_TEST_STORE") : "";
  if (store == "mysql") {
    args = {"--set", "store.engine=mysql", "--set",
            "store.mysql_url=" + SharedMariaDb().CreateDatabase(DataDirKey(data_dir))};
  } else if (!store.empty()) {
    args = {"--set", "store.engine=" + store};
  }
  const std::string cache = std::getenv("MPIM_TEST_CACHE") ? std::getenv("MPIM_TEST_CACHE") : "";
  if (cache == "redis") {
    for (std::string arg :
         {std::string("cache.engine=redis"), "cache.redis_url=" + SharedRedis().Url(),
          "cache.redis_prefix=" + DataDirKey(data_dir) + ":"}) {
      args.push_back("--set");
      args.push_back(std::move(arg));
    }
  } else if (!cache.empty()) {
    args.insert(args.end(), {"--set", "cache.engine=" + cache});
  }
  return args;
}

}  // namespace

ServerProcess::ServerProcess() : ServerProcess(Options{}) {}

ServerProcess::ServerProcess(Options options) : options_(std::move(options)) {
  if (options_.data_dir.empty()) {
    data_dir_ = FreshTempDir("mpim-e2e-");
    own_dir_ = true;
  } else {
    data_dir_ = options_.data_dir;
    std::filesystem::create_directories(data_dir_);
  }
  log_file_ = options_.log_file.empty() ? data_dir_ / "server.log" : options_.log_file;
  // Before the test's own flags, which may override them.
  std::vector<std::string> engine_args = EngineArgs(data_dir_);
  options_.extra_args.insert(options_.extra_args.begin(), engine_args.begin(), engine_args.end());
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (own_dir_) {
    std::error_code ec;
    std::filesystem::remove_all(data_dir_, ec);
  }
}

bool ServerProcess::Spawn() {
  port_ = FreePort();
  std::string listen = "127.0.0.1:" + std::to_string(port_);
  std::string out = log_file_.string();
  std::vector<std::string> args = {MpimBinary(), "serve",      "--listen",
                                   listen,       "--data-dir", data_dir_.string()};
  args.insert(args.end(), options_.extra_args.begin(), options_.extra_args.end());
  pid_ = ::fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    for (const auto& [k, v] : options_.env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return true;
}

bool ServerProcess::Start(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  exit_code_.reset();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!Spawn()) {
      error_ = "fork failed";
      return false;
    }
    client::HttpClient http("127.0.0.1", port_, std::chrono::milliseconds(500));
    last_readyz_.clear();
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
        break;  // exited: maybe the port was taken; try another
      }
      auto r = http.Get("/readyz");
      if (r.ok() && r->status == 200) return true;
      last_readyz_ =
          r.ok() ? std::to_string(r->status) + " " + r->body : std::string(r.status().message());
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a sync
    }
    if (pid_ > 0) break;         // still running but never ready
    if (exit_code_ == 2) break;  // a configuration error: another port will not help
  }
  error_ = "server did not become ready (last /readyz: " + last_readyz_ + "); logs:\n" + Logs();
  return false;
}

void ServerProcess::Signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> ServerProcess::Wait(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return exit_code_;
  std::optional<int> code = WaitForExit(pid_, deadline);
  if (code) {
    pid_ = -1;
    exit_code_ = code;
  }
  return code;
}

std::string ServerProcess::Logs() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ServerProcess::LogTail(size_t bytes) const {
  std::string logs = Logs();
  return logs.size() > bytes ? logs.substr(logs.size() - bytes) : logs;
}

ServerSeries::ServerSeries(ServerProcess::Options options)
    : options_(std::move(options)), dir_(FreshTempDir("mpim-series-")) {
  options_.data_dir = dir_;
}

ServerSeries::~ServerSeries() {
  servers_.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

ServerProcess* ServerSeries::Start() {
  servers_.push_back(std::make_unique<ServerProcess>(options_));
  ServerProcess* s = servers_.back().get();
  if (!s->Start()) {
    error_ = s->error();
    return nullptr;
  }
  return s;
}

}  // namespace mpim::testing
