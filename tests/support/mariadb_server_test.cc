// The MariaDB fixture: a real mariadbd, its databases and the mpim user,
// commits that survive kill -9, and a paused server that answers nothing.
#include "support/mariadb_server.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <mysql.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace mpim::testing {
namespace {

struct MysqlCloser {
  void operator()(MYSQL* m) const { mysql_close(m); }
};
using MysqlPtr = std::unique_ptr<MYSQL, MysqlCloser>;

// Logs in the way the store does: over TCP as the user of a CreateDatabase
// URL, into its database. Null when the server does not answer within 1 s.
MysqlPtr ConnectAsUrlUser(const MariaDbServer& server, const std::string& url) {
  const std::string database = url.substr(url.rfind('/') + 1);
  MysqlPtr m(mysql_init(nullptr));
  unsigned int timeout_s = 1;
  mysql_optionsv(m.get(), MYSQL_OPT_CONNECT_TIMEOUT, &timeout_s);
  mysql_optionsv(m.get(), MYSQL_OPT_READ_TIMEOUT, &timeout_s);
  if (mysql_real_connect(m.get(), "127.0.0.1", "mpim", "mpim", database.c_str(), server.port(),
                         nullptr, 0) == nullptr) {
    return nullptr;
  }
  return m;
}

void Exec(MYSQL* m, const std::string& statement) {
  EXPECT_EQ(mysql_query(m, statement.c_str()), 0) << statement << ": " << mysql_error(m);
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(MariaDbServerTest, KeepsCommittedRowsAcrossKillAndAnswersNothingWhilePaused) {
  MariaDbServer server;
  EXPECT_FALSE(server.running());
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.Start()) << server.error();
  std::printf("first start (mariadb-install-db + mariadbd until a TCP login): %.2f s\n",
              SecondsSince(t0));
  EXPECT_TRUE(server.running());
  const uint16_t port = server.port();
  ASSERT_NE(port, 0);

  // What the store's tests rely on: durable commits, no binlog, every word in
  // FULLTEXT indexes, room for many connections.
  EXPECT_EQ(server.Sql("SELECT @@innodb_flush_log_at_trx_commit, @@log_bin, "
                       "@@innodb_ft_min_token_size, @@max_connections"),
            "1\t0\t1\t500\n");

  const std::string url_a = server.CreateDatabase("fixture_a");
  const std::string url_b = server.CreateDatabase("fixture_b");
  EXPECT_EQ(url_a, "mysql://mpim:mpim@127.0.0.1:" + std::to_string(port) + "/fixture_a");
  EXPECT_EQ(server.CreateDatabase("fixture_a"), url_a);  // exists: same URL, data kept
  EXPECT_EQ(server.Sql("SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                       "information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'fixture%' "
                       "ORDER BY SCHEMA_NAME"),
            "utf8mb4\tutf8mb4_uca1400_ai_ci\nutf8mb4\tutf8mb4_uca1400_ai_ci\n");

  {
    MysqlPtr a = ConnectAsUrlUser(server, url_a);
    ASSERT_TRUE(a) << "no login to " << url_a;
    Exec(a.get(), "CREATE TABLE t (id INT PRIMARY KEY, body VARCHAR(32)) ENGINE=InnoDB");
    Exec(a.get(), "INSERT INTO t VALUES (1, 'committed \xF0\x9F\x98\x80')");
    MysqlPtr b = ConnectAsUrlUser(server, url_b);
    ASSERT_TRUE(b) << "no login to " << url_b;
    Exec(b.get(), "CREATE TABLE t (id INT PRIMARY KEY) ENGINE=InnoDB");
  }
  EXPECT_EQ(server.Sql("SELECT id, body IS NULL FROM fixture_a.t"), "1\t0\n");
  EXPECT_EQ(server.Sql("SELECT COUNT(*) FROM fixture_b.t"), "0\n");

  server.Kill();
  EXPECT_FALSE(server.running());
  EXPECT_FALSE(ConnectAsUrlUser(server, url_a));
  t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(server.Start()) << server.error();
  std::printf("start after kill -9 (crash recovery): %.2f s\n", SecondsSince(t0));
  EXPECT_EQ(server.port(), port);
  EXPECT_EQ(server.Sql("SELECT id FROM fixture_a.t"), "1\n");

  server.Pause();
  EXPECT_TRUE(server.running());
  EXPECT_FALSE(ConnectAsUrlUser(server, url_a)) << "a paused server let us log in";
  server.Resume();
  MysqlPtr again = ConnectAsUrlUser(server, url_a);
  ASSERT_TRUE(again);
  Exec(again.get(), "INSERT INTO t VALUES (2, 'after pause')");
  again.reset();

  t0 = std::chrono::steady_clock::now();
  server.Stop();
  std::printf("stop (SIGTERM until exit): %.2f s\n", SecondsSince(t0));
  EXPECT_FALSE(server.running());
  ASSERT_TRUE(server.Start()) << server.error();
  EXPECT_EQ(server.Sql("SELECT id FROM fixture_a.t ORDER BY id"), "1\n2\n");
  server.DropDatabase("fixture_b");
  EXPECT_EQ(server.Sql("SHOW DATABASES LIKE 'fixture%'"), "fixture_a\n");
}

TEST(MariaDbServerTest, RejectsNamesThatAreNotPlainIdentifiers) {
  EXPECT_NONFATAL_FAILURE(
      EXPECT_EQ(SharedMariaDb().CreateDatabase("x`; DROP DATABASE mysql; --"), ""),
      "is not [A-Za-z0-9_]");
  EXPECT_NONFATAL_FAILURE(SharedMariaDb().DropDatabase("a-b"), "is not [A-Za-z0-9_]");
  EXPECT_NONFATAL_FAILURE(SharedMariaDb().Sql("SELEKT 1"), "SQL syntax");
}

TEST(MariaDbServerTest, SharedServerIsOneRunningServerPerProcess) {
  MariaDbServer& shared = SharedMariaDb();
  EXPECT_EQ(&shared, &SharedMariaDb());
  EXPECT_TRUE(shared.running()) << shared.error();
  const std::string url = shared.CreateDatabase("shared_one");
  EXPECT_TRUE(ConnectAsUrlUser(shared, url));
  EXPECT_EQ(shared.Sql("SELECT 1 + 1"), "2\n");
}

}  // namespace
}  // namespace mpim::testing
