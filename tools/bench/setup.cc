#include "bench/setup.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "client/http_client.h"
#include "core/ports.h"

namespace mpim::bench {

namespace json = boost::json;

namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `field` of a JSON object body as a decimal-string id, 0 if absent.
uint64_t IdField(const std::string& body, const char* field) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return 0;
  const json::value* f = v.get_object().if_contains(field);
  if (!f || !f->is_string()) return 0;
  return std::strtoull(f->get_string().c_str(), nullptr, 10);
}

std::string StringField(const std::string& body, const char* field) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const json::value* f = v.get_object().if_contains(field);
  if (!f || !f->is_string()) return {};
  return std::string(f->get_string());
}

}  // namespace

uint16_t FreePort() { return core::FreeLoopbackPort(); }

std::vector<std::pair<std::string, std::string>> ServerProc::LoadEnv() {
  return {
      // Setup speed is not what is measured: cheap password hashes.
      {"MPIM_AUTH_ARGON2_OPSLIMIT", "1"},
      {"MPIM_AUTH_ARGON2_MEMLIMIT_KIB", "8"},
      {"MPIM_AUTH_LOGIN_PER_MIN_USER", "1000000"},
      {"MPIM_AUTH_LOGIN_PER_MIN_ADDRESS", "1000000"},
      {"MPIM_AUTH_ACCESS_TTL_S", "86400"},
      {"MPIM_LIMITS_SEND_PER_SEC", "1000000"},
      {"MPIM_LIMITS_SEND_BURST", "1000000"},
      {"MPIM_LIMITS_CONNECTIONS_PER_ADDRESS", "0"},
      {"MPIM_LIMITS_REQUESTS_PER_SEC_ADDRESS", "0"},
  };
}

ServerProc::~ServerProc() {
  Stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool ServerProc::Start(const std::string& binary,
                       const std::vector<std::pair<std::string, std::string>>& env,
                       std::string* error) {
  std::random_device rd;
  dir_ = std::filesystem::temp_directory_path() /
         ("mpim-bench-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
  std::filesystem::create_directories(dir_);
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreePort();
    const std::string log = (dir_ / "server.log").string();
    std::vector<std::string> args = {binary,       "serve",
                                     "--listen",   "127.0.0.1:" + std::to_string(port_),
                                     "--data-dir", (dir_ / "data").string()};
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) {
      *error = "fork failed";
      return false;
    }
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      for (const auto& [k, v] : LoadEnv()) ::setenv(k.c_str(), v.c_str(), 1);
      for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    client::HttpClient http("127.0.0.1", port_, std::chrono::milliseconds(500));
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;  // exited: maybe the port was taken meanwhile; try another
      }
      auto r = http.Get("/readyz");
      if (r.ok() && r->status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval
    }
    if (pid_ > 0) break;
  }
  *error = "server did not become ready:\n" + LogTail(4000);
  return false;
}

void ServerProc::Stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string ServerProc::LogTail(size_t bytes) const {
  std::string log = ReadFile((dir_ / "server.log").string());
  return log.size() > bytes ? log.substr(log.size() - bytes) : log;
}

uint64_t RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

double CpuSeconds(pid_t pid) {
  std::string stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(stat.substr(paren + 2));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && in >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

uint64_t MetricsRssKib(const std::string& host, uint16_t port) {
  client::HttpClient http(host, port);
  auto r = http.Get("/metrics");
  if (!r.ok() || r->status != 200) return 0;
  std::istringstream in(r->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("process_resident_memory_bytes", 0) != 0) continue;
    size_t space = line.rfind(' ');
    return static_cast<uint64_t>(std::strtod(line.c_str() + space + 1, nullptr) / 1024);
  }
  return 0;
}

bool CreateUsers(const std::string& host, uint16_t port, const std::string& prefix, int count,
                 int logins, int concurrency, std::vector<User>* users, std::string* error) {
  users->assign(static_cast<size_t>(count), User{});
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  auto work = [&] {
    client::HttpClient http(host, port, std::chrono::seconds(30));
    for (int i; !failed && (i = next++) < count;) {
      User& u = (*users)[static_cast<size_t>(i)];
      u.username = prefix + std::to_string(i);
      const std::string creds =
          "{\"username\":\"" + u.username + "\",\"password\":\"bench-password\"}";
      auto r = http.Post("/api/v1/auth/register", creds);
      if (!r.ok() || r->status != 201 || !(u.id = IdField(r->body, "user_id"))) {
        std::lock_guard lock(mu);
        *error = "register " + u.username + ": " +
                 (r.ok() ? std::to_string(r->status) + " " + r->body
                         : std::string(r.status().message()));
        failed = true;
        return;
      }
      if (i >= logins) continue;
      r = http.Post("/api/v1/auth/login", creds);
      if (!r.ok() || r->status != 200 || (u.token = StringField(r->body, "access_token")).empty()) {
        std::lock_guard lock(mu);
        *error = "login " + u.username + ": " +
                 (r.ok() ? std::to_string(r->status) + " " + r->body
                         : std::string(r.status().message()));
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, concurrency); ++t) threads.emplace_back(work);
  for (auto& t : threads) t.join();
  return !failed;
}

uint64_t CreateGroup(const std::string& host, uint16_t port, const User& owner,
                     const std::vector<uint64_t>& members, std::string* error) {
  json::array ids;
  for (uint64_t id : members) {
    if (id != owner.id) ids.emplace_back(std::to_string(id));
  }
  json::object body{{"name", "bench"}, {"members", std::move(ids)}};
  client::HttpClient http(host, port, std::chrono::seconds(120));
  auto r = http.Request(
      "POST", "/api/v1/groups", json::serialize(body),
      {{"Content-Type", "application/json"}, {"Authorization", "Bearer " + owner.token}});
  uint64_t id = 0;
  if (!r.ok() || r->status != 201 || !(id = IdField(r->body, "group_id"))) {
    *error = "create group: " + (r.ok() ? std::to_string(r->status) + " " + r->body
                                        : std::string(r.status().message()));
    return 0;
  }
  return id;
}

Machine DescribeMachine() {
  Machine m;
  m.cpus = static_cast<int>(std::thread::hardware_concurrency());
  std::istringstream meminfo(ReadFile("/proc/meminfo"));
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) m.mem_kib = std::strtoull(line.c_str() + 9, nullptr, 10);
  }
  std::istringstream cpuinfo(ReadFile("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      m.cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  }
  utsname u{};
  if (::uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  m.load = ReadFile("/proc/loadavg");
  while (!m.load.empty() && m.load.back() == '\n') m.load.pop_back();
  return m;
}

uint64_t RaiseFdLimit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ::getrlimit(RLIMIT_NOFILE, &lim);
  return lim.rlim_cur;
}

}  // namespace mpim::bench
