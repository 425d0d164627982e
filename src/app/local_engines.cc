#include "app/local_engines.h"

#include <mysql.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/status/status.h"
#include "core/child_process.h"

namespace mpim::app {
namespace {

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr char kHost[] = "127.0.0.1";
constexpr char kDatabase[] = "mpim";
constexpr char kUser[] = "mpim";
constexpr char kCharset[] = "utf8mb4";
constexpr char kCollation[] = "utf8mb4_uca1400_ai_ci";
// Fixed at install time and at every start (InnoDB would resize it otherwise).
constexpr char kLogFileSize[] = "--innodb-log-file-size=64M";

std::string HostPort(uint16_t port) { return std::string(kHost) + ":" + std::to_string(port); }

// A connected socket to 127.0.0.1:port with 1 s send and receive timeouts.
absl::Status ConnectWithTimeouts(asio::io_context& io, uint16_t port, tcp::socket* socket) {
  boost::system::error_code ec;
  socket->connect(tcp::endpoint(asio::ip::make_address(kHost), port), ec);
  if (ec)
    return absl::UnavailableError("cannot connect to " + HostPort(port) + ": " + ec.message());
  timeval tv{.tv_sec = 1, .tv_usec = 0};
  ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(socket->native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  (void)io;
  return absl::OkStatus();
}

uint16_t PortOf(const std::string& host_port) {
  size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return 0;
  return static_cast<uint16_t>(std::stoi(host_port.substr(colon + 1)));
}

// A MariaDB unix socket path must fit sockaddr_un (108 bytes): a long DIR
// gets its socket in the temp dir, named after DIR.
std::string SocketPath(const std::filesystem::path& home) {
  std::string path = (home / "mariadbd.sock").string();
  if (path.size() < 100) return path;
  return "/tmp/mpim-mariadbd-" + std::to_string(std::hash<std::string>{}(path)) + ".sock";
}

// Single quotes for a SQL string literal (the password is base64url: no
// quotes, but say it anyway).
std::string SqlQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

}  // namespace

const std::vector<EngineProgram>& LocalEnginePrograms() {
  static const std::vector<EngineProgram> programs = {
      {"redis-server", "redis-server"},
      {"mariadbd", "mariadb-server"},
      {"mariadb-install-db", "mariadb-server"},
      {"etcd", "etcd-server"},
  };
  return programs;
}

std::string MissingEngineProgram() {
  for (const EngineProgram& p : LocalEnginePrograms()) {
    if (core::FindOnPath(p.program).empty()) {
      return std::string(p.program) + " (install the Debian package " + p.package + ")";
    }
  }
  return "";
}

std::string FileTail(const std::filesystem::path& file, size_t bytes) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return "";
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  return text.size() > bytes ? text.substr(text.size() - bytes) : text;
}

absl::Status HttpGet(const std::string& host_port, const std::string& target, HttpAnswer* answer) {
  asio::io_context io;
  tcp::socket socket(io);
  if (absl::Status s = ConnectWithTimeouts(io, PortOf(host_port), &socket); !s.ok()) return s;
  http::request<http::empty_body> request(http::verb::get, target, 11);
  request.set(http::field::host, host_port);
  request.set(http::field::connection, "close");
  boost::system::error_code ec;
  http::write(socket, request, ec);
  boost::beast::flat_buffer buffer;
  http::response<http::string_body> response;
  if (!ec) http::read(socket, buffer, response, ec);
  if (ec) return absl::UnavailableError("GET " + target + " on " + host_port + ": " + ec.message());
  answer->status = static_cast<int>(response.result_int());
  answer->body = std::move(response.body());
  return absl::OkStatus();
}

void LocalEngine::Stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  core::Terminate(pid_, grace);
  pid_ = -1;
}

std::filesystem::path LocalEngine::log() const { return dir_ / "logs" / log_name_; }

absl::Status LocalEngine::SpawnLogged(std::vector<std::string> argv) {
  core::SpawnOptions options;
  options.argv = std::move(argv);
  options.output = log().string();
  auto pid = core::Spawn(options);
  if (!pid.ok()) return pid.status();
  pid_ = *pid;
  return absl::OkStatus();
}

// --- Redis ------------------------------------------------------------------

absl::Status LocalRedis::Start() {
  std::filesystem::create_directories(dir_ / "redis");
  return SpawnLogged({"redis-server", "--port", std::to_string(port_), "--bind", kHost,
                      "--protected-mode", "yes", "--dir", (dir_ / "redis").string(), "--dbfilename",
                      "dump.rdb", "--appendonly", "no", "--maxclients", "10000"});
}

absl::Status LocalRedis::Probe() {
  asio::io_context io;
  tcp::socket socket(io);
  if (absl::Status s = ConnectWithTimeouts(io, port_, &socket); !s.ok()) return s;
  boost::system::error_code ec;
  asio::write(socket, asio::buffer(std::string("PING\r\n")), ec);
  asio::streambuf reply;
  if (!ec) asio::read_until(socket, reply, "\r\n", ec);
  if (ec) return absl::UnavailableError("redis PING: " + ec.message());
  std::string line{asio::buffers_begin(reply.data()), asio::buffers_end(reply.data())};
  if (line.rfind("+PONG", 0) != 0) return absl::UnavailableError("redis answered " + line);
  return absl::OkStatus();
}

std::string LocalRedis::address() const { return HostPort(port_); }

// --- MariaDB ----------------------------------------------------------------

absl::Status LocalMariaDb::Install() {
  std::filesystem::create_directories(home() / "tmp");
  if (std::filesystem::exists(home() / "data" / "mysql")) return absl::OkStatus();
  std::vector<std::string> argv = {"mariadb-install-db",
                                   "--no-defaults",
                                   "--datadir=" + (home() / "data").string(),
                                   "--tmpdir=" + (home() / "tmp").string(),
                                   "--skip-test-db",
                                   "--auth-root-authentication-method=socket",
                                   "--skip-name-resolve",
                                   kLogFileSize};
  if (::geteuid() == 0) argv.push_back("--user=root");
  core::SpawnOptions options;
  options.argv = argv;
  options.output = (dir_ / "logs" / "mariadb-install.log").string();
  auto pid = core::Spawn(options);
  if (!pid.ok()) return pid.status();
  std::optional<int> code = core::WaitForExit(*pid, std::chrono::minutes(5));
  if (!code || *code != 0) {
    std::error_code ec;
    std::filesystem::remove_all(home() / "data", ec);  // a half-made data dir: start over next time
    return absl::InternalError("mariadb-install-db " +
                               (code ? core::DescribeExit(*code) : "did not finish") + ":\n" +
                               FileTail(options.output, 3000));
  }
  return absl::OkStatus();
}

absl::Status LocalMariaDb::Start() {
  if (absl::Status s = Install(); !s.ok()) return s;
  // Run at every start (idempotent): the database and MPIM's user, whose
  // password this DIR keeps.
  const std::filesystem::path init = home() / "init.sql";
  {
    std::ofstream out(init, std::ios::trunc);
    out << "CREATE DATABASE IF NOT EXISTS " << kDatabase << " CHARACTER SET " << kCharset
        << " COLLATE " << kCollation << ";\n"
        << "CREATE USER IF NOT EXISTS '" << kUser << "'@'127.0.0.1' IDENTIFIED BY "
        << SqlQuote(password_) << ";\n"
        << "ALTER USER '" << kUser << "'@'127.0.0.1' IDENTIFIED BY " << SqlQuote(password_) << ";\n"
        << "GRANT ALL PRIVILEGES ON " << kDatabase << ".* TO '" << kUser << "'@'127.0.0.1';\n";
  }
  std::filesystem::permissions(
      init, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  std::vector<std::string> argv = {
      "mariadbd",
      "--no-defaults",
      "--datadir=" + (home() / "data").string(),
      "--tmpdir=" + (home() / "tmp").string(),
      "--socket=" + SocketPath(home()),
      "--pid-file=" + (home() / "mariadbd.pid").string(),
      "--init-file=" + init.string(),
      "--port=" + std::to_string(port_),
      std::string("--bind-address=") + kHost,
      "--skip-name-resolve",
      "--skip-log-bin",
      "--innodb-flush-log-at-trx-commit=1",  // an acknowledged message is on disk
      "--innodb-buffer-pool-size=256M",
      kLogFileSize,
      "--max-connections=1000",
      // Index every word, as SQLite's FTS5 does (store/mysql/search_store.h).
      "--innodb-ft-min-token-size=1",
      std::string("--character-set-server=") + kCharset,
      std::string("--collation-server=") + kCollation,
  };
  if (::geteuid() == 0) argv.push_back("--user=root");
  return SpawnLogged(std::move(argv));
}

absl::Status LocalMariaDb::Probe() {
  static std::once_flag library_init;
  std::call_once(library_init, [] { mysql_library_init(0, nullptr, nullptr); });
  std::unique_ptr<MYSQL, void (*)(MYSQL*)> m(mysql_init(nullptr), mysql_close);
  unsigned int timeout_s = 1;
  mysql_optionsv(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_optionsv(m.get(), MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  if (mysql_real_connect(m.get(), kHost, kUser, password_.c_str(), kDatabase, port_, nullptr, 0) ==
      nullptr) {
    return absl::UnavailableError(std::string("mariadb: ") + mysql_error(m.get()));
  }
  return absl::OkStatus();
}

std::string LocalMariaDb::address() const {
  return std::string("mysql://") + kUser + ":" + password_ + "@" + HostPort(port_) + "/" +
         kDatabase;
}

// --- etcd -------------------------------------------------------------------

absl::Status LocalEtcd::Start() {
  std::filesystem::create_directories(dir_ / "etcd");
  const std::string client = "http://" + HostPort(client_port_);
  const std::string peer = "http://" + HostPort(peer_port_);
  return SpawnLogged({"etcd", "--name", "mpim", "--data-dir", (dir_ / "etcd" / "data").string(),
                      "--listen-client-urls", client, "--advertise-client-urls", client,
                      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                      "--initial-cluster", "mpim=" + peer, "--logger", "zap"});
}

absl::Status LocalEtcd::Probe() {
  HttpAnswer answer;
  if (absl::Status s = HttpGet(address(), "/health", &answer); !s.ok()) return s;
  if (answer.status != 200 || answer.body.find("\"true\"") == std::string::npos) {
    return absl::UnavailableError("etcd /health: " + answer.body);
  }
  return absl::OkStatus();
}

std::string LocalEtcd::address() const { return HostPort(client_port_); }

}  // namespace mpim::app
