#include "core/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/status/status.h"

extern char** environ;

namespace mpim::core {
namespace {

// Writes `text` and errno to `fd` and exits; async-signal-safe.
[[noreturn]] void ChildFail(int fd, const char* text) {
  int err = errno;
  (void)!::write(fd, &err, sizeof err);
  (void)!::write(fd, text, std::strlen(text));
  ::_exit(127);
}

}  // namespace

absl::StatusOr<pid_t> Spawn(const SpawnOptions& options) {
  if (options.argv.empty()) return absl::InvalidArgumentError("nothing to run");
  // Everything the child needs is built before fork(): after it, only
  // async-signal-safe calls.
  std::vector<std::string> args = options.argv;
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    bool replaced = false;
    for (const auto& [k, v] : options.env) replaced |= entry.rfind(k + "=", 0) == 0;
    if (!replaced) env_strings.push_back(std::move(entry));
  }
  for (const auto& [k, v] : options.env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string output = options.output.empty() ? "/dev/null" : options.output;
  const std::string error_output = options.error_output;
  const bool main_thread = ::syscall(SYS_gettid) == ::getpid();
  const pid_t parent = ::getpid();

  int report[2];  // the child's exec error, if any; closed on exec
  if (::pipe2(report, O_CLOEXEC) != 0) return absl::InternalError("pipe failed");
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(report[0]);
    ::close(report[1]);
    return absl::ResourceExhaustedError("fork failed: " + std::string(std::strerror(errno)));
  }
  if (pid == 0) {
    ::close(report[0]);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // the parent may block SIGTERM for sigwait
    ::signal(SIGPIPE, SIG_DFL);
    if (options.own_process_group) ::setpgid(0, 0);
    if (options.die_with_parent && main_thread) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int err = error_output.empty()
                  ? out
                  : ::open(error_output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || out < 0 || err < 0) ChildFail(report[1], "cannot open the output file");
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (in > 2) ::close(in);
    if (out > 2) ::close(out);
    if (err > 2 && err != out) ::close(err);
    ::execvpe(argv[0], argv.data(), envp.data());
    ChildFail(report[1], "cannot execute");
  }
  ::close(report[1]);
  int err = 0;
  char text[128] = {};
  ssize_t n;
  do {
    n = ::read(report[0], &err, sizeof err);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof err)) {
    ssize_t m = ::read(report[0], text, sizeof text - 1);
    (void)m;
    ::close(report[0]);
    ::waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(std::string(text) + " " + options.argv[0] + ": " +
                                         std::strerror(err));
  }
  ::close(report[0]);
  return pid;
}

std::optional<int> WaitForExit(pid_t pid, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return -WTERMSIG(status);
    } else if (r < 0 && errno == ECHILD) {
      return std::nullopt;  // not our child (or reaped already)
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::optional<int> Terminate(pid_t pid, std::chrono::milliseconds grace) {
  ::kill(pid, SIGTERM);
  if (auto code = WaitForExit(pid, grace)) return code;
  ::kill(pid, SIGKILL);
  return WaitForExit(pid, std::chrono::seconds(10));
}

bool ProcessAlive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno != ESRCH); }

std::string FindOnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

std::string DescribeExit(int code) {
  if (code >= 0) return "exited with code " + std::to_string(code);
  const char* name = sigabbrev_np(-code);
  return std::string("killed by SIG") + (name != nullptr ? name : std::to_string(-code));
}

}  // namespace mpim::core
