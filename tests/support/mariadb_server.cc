#include "support/mariadb_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <mysql.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "support/server_process.h"

namespace mpim::testing {
namespace {

constexpr char kSocket[] = "mariadbd.sock";
constexpr char kLog[] = "mariadbd.log";
constexpr char kInitFile[] = "init.sql";
// Charset and collation of the server and of CreateDatabase.
constexpr char kCharset[] = "utf8mb4";
constexpr char kCollation[] = "utf8mb4_uca1400_ai_ci";
// Fixed at install time and at every start (InnoDB would resize it otherwise).
constexpr char kLogFileSize[] = "--innodb-log-file-size=32M";

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// mariadbd refuses to run as root unless told to; as anyone else it runs as
// that user without the flag.
std::string UserFlag() { return ::geteuid() == 0 ? " --user=root" : ""; }

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

std::string Tail(const std::filesystem::path& file, size_t max_bytes = 4000) {
  std::ifstream in(file);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > max_bytes ? "..." + text.substr(text.size() - max_bytes) : text;
}

struct MysqlCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlCloser>;

// A connection over TCP (`socket` empty) or the unix socket; null on
// failure with the reason in `*error`.
MysqlPtr Connect(const std::string& user, const std::string& password, uint16_t port,
                 const std::string& socket, std::string* error) {
  static std::once_flag library_init;
  std::call_once(library_init, [] { mysql_library_init(0, nullptr, nullptr); });
  MysqlPtr m(mysql_init(nullptr));
  unsigned int timeout_s = 2;
  mysql_optionsv(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_optionsv(m.get(), MYSQL_SET_CHARSET_NAME, kCharset);
  const char* host = socket.empty() ? "127.0.0.1" : "localhost";
  if (mysql_real_connect(m.get(), host, user.c_str(), password.c_str(), nullptr, port,
                         socket.empty() ? nullptr : socket.c_str(), 0) == nullptr) {
    *error = mysql_error(m.get());
    return nullptr;
  }
  return m;
}

// Runs one statement as root over the unix socket; its rows (if any) go to
// `*rows` as tab-separated lines. False after an ADD_FAILURE.
bool RootQuery(const std::filesystem::path& socket, const std::string& statement,
               std::string* rows) {
  std::string error;
  MysqlPtr m = Connect("root", "", 0, socket.string(), &error);
  if (m == nullptr) {
    ADD_FAILURE() << statement << ": cannot connect: " << error;
    return false;
  }
  if (mysql_real_query(m.get(), statement.data(), statement.size()) != 0) {
    ADD_FAILURE() << statement << ": " << mysql_error(m.get());
    return false;
  }
  std::unique_ptr<MYSQL_RES, void (*)(MYSQL_RES*)> result(mysql_store_result(m.get()),
                                                          mysql_free_result);
  if (result == nullptr) {
    if (mysql_field_count(m.get()) == 0) return true;  // a statement without rows
    ADD_FAILURE() << statement << ": " << mysql_error(m.get());
    return false;
  }
  const unsigned int columns = mysql_num_fields(result.get());
  while (MYSQL_ROW row = mysql_fetch_row(result.get())) {
    if (rows == nullptr) continue;
    const unsigned long* lengths = mysql_fetch_lengths(result.get());
    for (unsigned int i = 0; i < columns; ++i) {
      if (i > 0) *rows += '\t';
      *rows += row[i] == nullptr ? std::string("NULL") : std::string(row[i], lengths[i]);
    }
    *rows += '\n';
  }
  return true;
}

}  // namespace

MariaDbServer::MariaDbServer() = default;

MariaDbServer::~MariaDbServer() {
  if (pid_ > 0) SignalAndReap(SIGKILL);
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool MariaDbServer::Initialise() {
  dir_ = FreshTempDir("mpim-mariadb-");
  {
    std::ofstream init(dir_ / kInitFile);
    init << "CREATE USER IF NOT EXISTS 'mpim'@'%' IDENTIFIED BY 'mpim';\n"
            "GRANT ALL PRIVILEGES ON *.* TO 'mpim'@'%' WITH GRANT OPTION;\n";
  }
  const std::filesystem::path log = dir_ / "install.log";
  // A tmpdir of its own: bootstraps running at once in one /tmp trip over
  // each other's temporary tables ("Could not remove temporary table").
  std::filesystem::create_directories(dir_ / "tmp");
  int code = 0;
  RunCommand("mariadb-install-db --no-defaults --datadir=" + ShellQuote((dir_ / "data").string()) +
                 " --tmpdir=" + ShellQuote((dir_ / "tmp").string()) +
                 UserFlag() + " --skip-test-db --auth-root-authentication-method=normal" +
                 " --skip-name-resolve " + kLogFileSize +
                 // Bootstrap needs no durability (it shuts down cleanly): half the time.
                 " --innodb-flush-log-at-trx-commit=0 --innodb-doublewrite=0 --sync-frm=0 >" +
                 ShellQuote(log.string()) + " 2>&1",
             &code);
  if (code != 0) {
    error_ = "mariadb-install-db exited " + std::to_string(code) + ":\n" + Tail(log);
    return false;
  }
  return true;
}

bool MariaDbServer::Spawn() {
  // Built before fork(): the child only calls async-signal-safe functions.
  std::vector<std::string> args = {
      "mariadbd",
      "--no-defaults",
      "--datadir=" + (dir_ / "data").string(),
      "--tmpdir=" + (dir_ / "tmp").string(),
      "--socket=" + (dir_ / kSocket).string(),
      "--pid-file=" + (dir_ / "mariadbd.pid").string(),
      "--log-error=" + (dir_ / kLog).string(),
      "--init-file=" + (dir_ / kInitFile).string(),
      "--port=" + std::to_string(port_),
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      "--skip-log-bin",
      "--innodb-flush-log-at-trx-commit=1",
      "--innodb-buffer-pool-size=128M",
      kLogFileSize,
      "--max-connections=500",
      // Index every word, as SQLite's FTS5 does (store/mysql/search_store.h).
      "--innodb-ft-min-token-size=1",
      std::string("--character-set-server=") + kCharset,
      std::string("--collation-server=") + kCollation,
  };
  if (::geteuid() == 0) args.push_back("--user=root");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = (dir_ / kLog).string();
  // Only a fork from the main thread may tie the server's life to ours: the
  // kernel's parent-death signal follows the forking thread, not the process.
  const bool main_thread = ::syscall(SYS_gettid) == ::getpid();
  const pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) {
    error_ = "fork failed";
    return false;
  }
  if (pid_ == 0) {
    if (main_thread) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
    }
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::close_range(3, ~0U, 0);  // the test's sockets stay with the test
    ::execv("/usr/sbin/mariadbd", argv.data());
    ::execvp("mariadbd", argv.data());
    ::_exit(127);
  }
  return true;
}

bool MariaDbServer::WaitReady(std::chrono::steady_clock::time_point until) {
  std::string why;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      error_ = "mariadbd exited (status " + std::to_string(status) + "); log:\n" + LogTail();
      return false;
    }
    if (Connect("mpim", "mpim", port_, "", &why)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll interval, not a sync
  }
  error_ = "mariadbd accepted no login on port " + std::to_string(port_) + " (" + why +
           "); log:\n" + LogTail();
  return false;
}

bool MariaDbServer::Start(std::chrono::milliseconds deadline) {
  if (running()) return true;
  const auto until = std::chrono::steady_clock::now() + deadline;
  if (dir_.empty() && !Initialise()) return false;
  const bool first = port_ == 0;
  // A first start may lose its port to another process between FreePort()
  // and mariadbd's bind: it then tries another. Later starts keep the port.
  for (int attempt = 0; attempt < (first ? 3 : 1); ++attempt) {
    if (first) port_ = FreePort();
    if (!Spawn()) return false;
    if (WaitReady(until)) return true;
    if (pid_ > 0) {  // running but never ready
      SignalAndReap(SIGKILL);
      return false;
    }
  }
  return false;
}

void MariaDbServer::SignalAndReap(int signo) {
  if (pid_ <= 0) return;
  ::kill(pid_, signo);
  if (signo != SIGKILL) ::kill(pid_, SIGCONT);  // a paused server handles nothing
  if (!WaitForExit(pid_, std::chrono::seconds(60))) {
    ::kill(pid_, SIGKILL);  // did not shut down in time
    ::waitpid(pid_, nullptr, 0);
  }
  pid_ = -1;
}

void MariaDbServer::Stop() { SignalAndReap(SIGTERM); }

void MariaDbServer::Kill() { SignalAndReap(SIGKILL); }

// Both wait until the kernel reports the new state, so the caller knows the
// server is stopped (or running again) when they return.
void MariaDbServer::Pause() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGSTOP);
  int status = 0;
  if (::waitpid(pid_, &status, WUNTRACED) == pid_ && !WIFSTOPPED(status)) pid_ = -1;
}

void MariaDbServer::Resume() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGCONT);
  int status = 0;
  if (::waitpid(pid_, &status, WCONTINUED) == pid_ && !WIFCONTINUED(status)) pid_ = -1;
}

std::string MariaDbServer::LogTail() const { return Tail(dir_ / kLog); }

std::string MariaDbServer::Sql(const std::string& statement) {
  std::string rows;
  RootQuery(dir_ / kSocket, statement, &rows);
  return rows;
}

std::string MariaDbServer::CreateDatabase(const std::string& name) {
  if (!ValidName(name)) {
    ADD_FAILURE() << "CreateDatabase: '" << name << "' is not [A-Za-z0-9_]{1,64}";
    return "";
  }
  const std::string create = "CREATE DATABASE IF NOT EXISTS `" + name + "` CHARACTER SET " +
                             kCharset + " COLLATE " + kCollation;
  if (!RootQuery(dir_ / kSocket, create, nullptr)) return "";
  return "mysql://mpim:mpim@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

void MariaDbServer::DropDatabase(const std::string& name) {
  if (!ValidName(name)) {
    ADD_FAILURE() << "DropDatabase: '" << name << "' is not [A-Za-z0-9_]{1,64}";
    return;
  }
  RootQuery(dir_ / kSocket, "DROP DATABASE IF EXISTS `" + name + "`", nullptr);
}

MariaDbServer& SharedMariaDb() {
  static MariaDbServer server;
  static const bool started = server.Start();
  if (!started) ADD_FAILURE() << "the shared MariaDB did not start: " << server.error();
  return server;
}

}  // namespace mpim::testing
