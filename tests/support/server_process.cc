#include "support/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "client/http_client.h"

namespace mpim::testing {

uint16_t FreePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string MpimBinary() {
  if (const char* env = std::getenv("MPIM_BINARY")) return env;
  return MPIM_BINARY;
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
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (!Spawn()) {
      error_ = "fork failed";
      return false;
    }
    client::HttpClient http("127.0.0.1", port_, std::chrono::milliseconds(500));
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // exited: maybe the port was taken; try another
      }
      auto r = http.Get("/readyz");
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a sync
    }
    if (pid_ > 0) break;  // still running but never ready
  }
  error_ = "server did not become ready; logs:\n" + Logs();
  return false;
}

void ServerProcess::Signal(int signo) {
  if (pid_ > 0) ::kill(pid_, signo);
}

std::optional<int> ServerProcess::Wait(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return std::nullopt;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return -WTERMSIG(status);
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

std::string ServerProcess::Logs() const {
  std::ifstream in(log_file_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
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
