// End-to-end: backup and restore of `mpim serve`'s store (docs/operations.md,
// "Backup and restore"), on SQLite and on MariaDB. While chat and group
// load runs, a backup is taken the way the runbook says (SQLite: sqlite3's
// online `.backup` of mpim.db; MariaDB: `mariadb-dump --single-transaction`;
// and the data directory's auth_keys.json); the load goes on and finishes
// with nothing lost on the original server. A new server started on the
// restored backup alone (a new data directory; on MariaDB a new database)
// then serves every message acknowledged before the backup began, at the
// seq and msg_id its reply gave, every conversation's seqs contiguous from
// 1, and takes new messages after them.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <tuple>

#include "support/chat_load.h"
#include "support/group_helpers.h"
#include "support/mariadb_server.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::ChatLoadPlan;
using testing::Ms;
using testing::ServerProcess;

// Six pairs; a group of 8 members, three of them sending.
const ChatLoadPlan kPlan{.pairs = 6, .groups = {{8, 3}}};
constexpr Ms kWait{60000};

std::vector<std::pair<std::string, std::string>> Env() {
  return testing::WsEnv(
      {{"MPIM_LIMITS_SEND_PER_SEC", "100000"}, {"MPIM_LIMITS_SEND_BURST", "100000"}});
}

std::string Quoted(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

// Parameter: the store engine, "sqlite" or "mysql".
class BackupE2eTest : public ::testing::TestWithParam<std::string> {
 protected:
  bool Mysql() const { return GetParam() == "mysql"; }
  // The server's store settings: none for SQLite (its data dir), a database
  // of this test's MariaDB otherwise.
  std::vector<std::string> StoreArgs(const std::string& database) {
    if (!Mysql()) return {};
    if (!db_.running() && !db_.Start()) {
      ADD_FAILURE() << db_.error();
      return {};
    }
    return {"--set", "store.engine=mysql", "--set",
            "store.mysql_url=" + db_.CreateDatabase(database)};
  }
  std::string MysqlArgs(const std::string& database) const {
    return "-h 127.0.0.1 -P " + std::to_string(db_.port()) + " -u mpim -pmpim " + database;
  }
  // Takes the backup into `to` as the runbook says; "" or what failed.
  std::string Backup(const ServerProcess& server, const std::filesystem::path& to) {
    int code = -1;
    const std::string cmd = Mysql() ? "mariadb-dump --single-transaction " +
                                          MysqlArgs("bk_source") + " > " + Quoted(to / "mpim.sql") +
                                          " 2>" + Quoted(to / "dump.err")
                                    : "sqlite3 " + Quoted(server.data_dir() / "mpim.db") +
                                          " \".backup " + Quoted(to / "mpim.db") + "\" 2>&1";
    const std::string out = testing::RunCommand(cmd, &code);
    if (code != 0) return cmd + ": " + out;
    std::filesystem::copy_file(server.data_dir() / "auth_keys.json", to / "auth_keys.json");
    return "";
  }
  // Restores the backup in `from` (SQLite: it is the data dir already);
  // the restored server's store settings.
  std::vector<std::string> Restore(const std::filesystem::path& from) {
    if (!Mysql()) return {};
    std::vector<std::string> args = StoreArgs("bk_restored");
    int code = -1;
    const std::string out = testing::RunCommand(
        "mariadb " + MysqlArgs("bk_restored") + " < " + Quoted(from / "mpim.sql") + " 2>&1", &code);
    EXPECT_EQ(code, 0) << out;
    return args;
  }

  testing::MariaDbServer db_;
};

TEST_P(BackupE2eTest, ABackupTakenUnderLoadRestoresEveryMessageAcknowledgedBeforeIt) {
  ServerProcess server(ServerProcess::Options{.extra_args = StoreArgs("bk_source"), .env = Env()});
  ASSERT_TRUE(server.Start()) << server.error();
  testing::ChatLoadRun run;
  ASSERT_TRUE(run.Start(server.port(), "bk", kPlan)) << "load not set up";
  ASSERT_TRUE(run.WaitConnected(kWait));
  ASSERT_TRUE(run.WaitAcks(300, kWait));

  // The backup, with the load running: what was acknowledged before it
  // began must be in it.
  const std::vector<testing::AckedSend> before = run.load.checker.Acks();
  const std::filesystem::path backup = testing::FreshTempDir("mpim-backup-");
  ASSERT_EQ(Backup(server, backup), "");
  ASSERT_TRUE(run.WaitAcks(200, kWait)) << "the load goes on after the backup";
  const testing::ChatLoadSummary summary = run.Finish(server.port(), kWait);
  server.Signal(SIGTERM);
  ASSERT_EQ(server.Wait(Ms(20000)), 0);

  // The restore: a new server on a data directory with the backup alone.
  ServerProcess restored(
      ServerProcess::Options{.extra_args = Restore(backup), .env = Env(), .data_dir = backup});
  ASSERT_TRUE(restored.Start()) << restored.error();
  testing::ApiClient api(restored.port());
  std::map<std::string, std::map<int64_t, std::string>> stored;  // conv -> seq -> msg_id
  for (const auto& [conv_id, token] : run.readers()) {
    auto& seqs = stored[conv_id];
    for (const auto& m : testing::History(api, token, conv_id)) {
      const testing::SeenMessage seen = testing::SeenFromJson(m);
      EXPECT_TRUE(seqs.emplace(seen.seq, seen.msg_id).second) << conv_id << " seq " << seen.seq;
    }
    int64_t expect = 1;
    for (const auto& [seq, msg_id] : seqs) {
      EXPECT_EQ(seq, expect++) << conv_id << ": restored seqs not contiguous from 1";
    }
  }
  size_t missing = 0;
  for (const testing::AckedSend& a : before) {
    auto conv = stored.find(a.conv_id);
    const bool found =
        conv != stored.end() && conv->second.count(a.seq) && conv->second.at(a.seq) == a.msg_id;
    if (!found && ++missing <= 10) {
      ADD_FAILURE() << "acknowledged before the backup, not restored: " << a.conv_id << " seq "
                    << a.seq << " msg_id " << a.msg_id;
    }
  }
  EXPECT_EQ(missing, 0u);
  size_t restored_messages = 0;
  for (const auto& [conv, seqs] : stored) restored_messages += seqs.size();
  EXPECT_GE(restored_messages, before.size());

  // The restored server takes new messages after what it restored: a
  // member of a private conversation writes to the other.
  std::string conv_id, token;
  for (const auto& [c, t] : run.readers()) {
    if (c.rfind("p:", 0) == 0) std::tie(conv_id, token) = std::tie(c, t);
  }
  ASSERT_FALSE(conv_id.empty());
  const testing::ApiResponse me = api.Get("/users/me", token);
  ASSERT_EQ(me.status, 200) << me.Describe();
  const std::string self(me.json.at("user_id").as_string());
  const std::string a = conv_id.substr(2, conv_id.find(':', 2) - 2);
  const std::string b = conv_id.substr(conv_id.find(':', 2) + 1);
  testing::WsConn ws(restored.port());
  ASSERT_TRUE(ws.Open(token));
  auto reply = ws.Request(testing::TextSend(self == a ? b : a, "after-restore", "restored"));
  ASSERT_TRUE(testing::IsSendResult(reply)) << ws.last_error();
  EXPECT_EQ(reply->at("conv_id").as_string(), conv_id);
  EXPECT_EQ(testing::Int(*reply, "seq"), stored[conv_id].rbegin()->first + 1);

  std::printf(
      "backup under load (%s): %zu sends acknowledged before the backup, all restored; %zu "
      "messages restored in %zu conversations (the run stored %lld in all)\n",
      GetParam().c_str(), before.size(), restored_messages, stored.size(),
      static_cast<long long>(summary.totals.stored_messages));
  restored.Signal(SIGTERM);
  restored.Wait(Ms(20000));
  std::filesystem::remove_all(backup);
}

INSTANTIATE_TEST_SUITE_P(Engines, BackupE2eTest, ::testing::Values("sqlite", "mysql"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param == "sqlite" ? std::string("Sqlite")
                                                         : std::string("Mariadb");
                         });

}  // namespace
}  // namespace mpim
