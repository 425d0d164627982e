#include "support/redis_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>

#include "support/server_process.h"

namespace mpim::testing {
namespace {

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextFree>;

std::string Text(const redisReply* r) {
  switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      return std::string(r->str, r->len);
    case REDIS_REPLY_ERROR:
      return "ERR: " + std::string(r->str, r->len);
    case REDIS_REPLY_INTEGER:
      return std::to_string(r->integer);
    case REDIS_REPLY_ARRAY: {
      std::string out;
      for (size_t i = 0; i < r->elements; ++i) out += (i ? "\n" : "") + Text(r->element[i]);
      return out;
    }
    default:
      return "(nil)";
  }
}

// One command on a new connection (in database `db`); false with `*error`
// if there was no reply.
bool RunCommand(uint16_t port, int db, const std::vector<std::string>& args, std::string* out,
                std::string* error) {
  const timeval tv{1, 0};
  ContextPtr c(redisConnectWithTimeout("127.0.0.1", port, tv));
  if (c == nullptr || c->err) {
    *error = c ? c->errstr : "out of memory";
    return false;
  }
  redisSetTimeout(c.get(), tv);
  if (db != 0) {
    auto* selected = static_cast<redisReply*>(redisCommand(c.get(), "SELECT %d", db));
    if (selected == nullptr) {
      *error = c->errstr;
      return false;
    }
    freeReplyObject(selected);
  }
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    *error = c->errstr;
    return false;
  }
  *out = Text(reply);
  freeReplyObject(reply);
  return true;
}

}  // namespace

RedisServer::RedisServer() = default;

RedisServer::~RedisServer() {
  Kill();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

std::string RedisServer::Url(int db) const {
  return "redis://127.0.0.1:" + std::to_string(port_) + (db ? "/" + std::to_string(db) : "");
}

bool RedisServer::Spawn() {
  std::vector<std::string> args = {"redis-server",
                                   "--port",
                                   std::to_string(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_.string(),
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--logfile",
                                   (dir_ / "redis.log").string()};
  pid_ = SpawnEngine(args, "", &error_);
  return pid_ > 0;
}

bool RedisServer::WaitReady(std::chrono::steady_clock::time_point until) {
  std::string reply, why;
  while (std::chrono::steady_clock::now() < until) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      std::ifstream in(dir_ / "redis.log");
      std::stringstream log;
      log << in.rdbuf();
      error_ = "redis-server exited on port " + std::to_string(port_) + "; log:\n" + log.str();
      return false;
    }
    if (RunCommand(port_, 0, {"PING"}, &reply, &why) && reply == "PONG") return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval, not a sync
  }
  error_ = "redis-server did not answer PING on port " + std::to_string(port_) + ": " + why;
  return false;
}

bool RedisServer::Start(std::chrono::milliseconds deadline) {
  if (running()) return true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  if (dir_.empty()) dir_ = FreshTempDir("mpim-redis-");
  const bool first = port_ == 0;
  // A first start may lose its free port to another process before
  // redis-server binds it: it then tries another. Later starts keep theirs.
  for (int attempt = 0; attempt < (first ? 3 : 1); ++attempt) {
    if (first) port_ = FreePort();
    if (!Spawn()) return false;
    if (WaitReady(until)) return true;
    if (running()) {
      Kill();
      return false;
    }
  }
  return false;
}

void RedisServer::Signal(int signo) {
  if (pid_ <= 0) return;
  ::kill(pid_, signo);
  ::kill(pid_, SIGCONT);  // a paused server would not act on it
  if (!WaitForExit(pid_, std::chrono::seconds(30)).has_value()) {
    ::kill(pid_, SIGKILL);
    WaitForExit(pid_, std::chrono::seconds(30));
  }
  pid_ = -1;
}

void RedisServer::Stop() { Signal(SIGTERM); }

void RedisServer::Kill() { Signal(SIGKILL); }

bool RedisServer::Restart() {
  Kill();
  return Start();
}

void RedisServer::Pause() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGSTOP);
  int status = 0;
  ::waitpid(pid_, &status, WUNTRACED);  // returns once it is stopped
}

void RedisServer::Resume() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  int status = 0;
  ::waitpid(pid_, &status, WCONTINUED);
}

std::string RedisServer::Command(const std::vector<std::string>& args, int db) {
  std::string out;
  if (!RunCommand(port_, db, args, &out, &error_)) return "";
  return out;
}

RedisServer& SharedRedis() {
  static RedisServer server;
  static const bool started = server.Start();
  if (!started) ADD_FAILURE() << "the shared Redis did not start: " << server.error();
  return server;
}

}  // namespace mpim::testing
