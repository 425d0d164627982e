// End to end: `mpim cluster up` as cluster.md section 3 says it (issue 21).
// The real command in a temp dir, its JSON line read and checked field by
// field, a chat between users on the two gateways, a gateway killed and
// restarted with its `argv`, SIGTERM (gateways close their sessions with
// 1012, exit 0, nothing left running), a second run on the same dir that
// finds the accounts and the messages, and the refusals (missing engines,
// bad counts) with exit code 2.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/json.hpp>
#include <cerrno>
#include <filesystem>
#include <string>
#include <vector>

#include "core/child_process.h"
#include "support/api_client.h"
#include "support/cluster_up_process.h"
#include "support/group_helpers.h"
#include "support/server_process.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

namespace json = boost::json;
using testing::ApiClient;
using testing::ClusterUpProcess;
using testing::Ms;
using testing::WsConn;

constexpr Ms kWait{20000};

// What a node answers on `path` (its http address).
int StatusOf(uint16_t port, const std::string& path) {
  return ApiClient(port).Call("GET", path).status;
}

class ClusterUpE2eTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (HasFailure() && cluster_) {
      std::printf("cluster up stderr:\n%s\n", cluster_->Stderr().c_str());
      for (auto& n : cluster_->nodes()) {
        std::printf("%s log:\n%s\n", n.name.c_str(), cluster_->NodeLog(n.name, 2000).c_str());
      }
    }
  }

  std::unique_ptr<ClusterUpProcess> cluster_;
};

TEST_F(ClusterUpE2eTest, PrintsItsNodesServesChatAcrossGatewaysAndKeepsDataAcrossRuns) {
  const std::filesystem::path dir = testing::FreshTempDir("mpim-cluster-dir-");
  cluster_ = std::make_unique<ClusterUpProcess>(
      ClusterUpProcess::Options{.env = testing::FastAuthEnv(), .dir = dir});
  ASSERT_TRUE(cluster_->Start()) << cluster_->error();

  // The line, as cluster.md section 3 shows it.
  const json::object& line = cluster_->ready_line();
  ASSERT_TRUE(line.contains("gateways") && line.contains("edges") && line.contains("engines") &&
              line.contains("nodes"))
      << json::serialize(line);
  EXPECT_EQ(line.at("edges").as_array().size(), 0u);
  const json::object& engines = line.at("engines").as_object();
  EXPECT_EQ(json::value_to<std::string>(engines.at("redis")).rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(json::value_to<std::string>(engines.at("etcd")).rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(json::value_to<std::string>(engines.at("mysql")).rfind("mysql://", 0), 0u);
  const std::vector<uint16_t> gateways = cluster_->gateway_ports();
  ASSERT_EQ(gateways.size(), 2u);
  std::map<std::string, int> roles;
  for (auto& n : cluster_->nodes()) {
    SCOPED_TRACE(n.name);
    ++roles[n.role];
    EXPECT_EQ(n.name, n.role + "-" + std::to_string(roles[n.role]));
    EXPECT_TRUE(core::ProcessAlive(n.pid));
    ASSERT_GE(n.argv.size(), 4u);
    EXPECT_EQ(std::filesystem::canonical(n.argv[0]),
              std::filesystem::canonical(testing::MpimBinary()));
    EXPECT_EQ(n.argv[1], "serve");
    EXPECT_EQ(n.argv[2], "--config");
    EXPECT_EQ(std::filesystem::path(n.argv[3]),
              std::filesystem::canonical(dir) / (n.name + ".toml"));
    EXPECT_EQ(StatusOf(n.port, "/healthz"), 200);
    EXPECT_EQ(StatusOf(n.port, "/readyz"), 200);
    EXPECT_EQ(StatusOf(n.port, "/metrics"), 200);
  }
  EXPECT_EQ(roles["gateway"], 2);
  EXPECT_EQ(roles["logic"], 2);
  EXPECT_EQ(roles["task"], 1);
  EXPECT_EQ(cluster_->node("gateway-1").port, gateways[0]);

  // Alice on gateway 1, Bob on gateway 2.
  ApiClient api1(gateways[0]), api2(gateways[1]);
  testing::Account alice = api1.NewAccount(testing::UniqueName("cu_alice"));
  testing::Account bob = api2.NewAccount(testing::UniqueName("cu_bob"));
  ASSERT_FALSE(alice.token().empty() || bob.token().empty());
  const std::string conv = testing::PrivateConvId(alice.id(), bob.id());
  WsConn a(gateways[0]), b(gateways[1]);
  ASSERT_TRUE(a.Open(alice.token()));
  ASSERT_TRUE(b.Open(bob.token()));
  auto sent = a.Request(testing::TextSend(bob.id(), "cu-1", "hello across gateways 🌍"));
  ASSERT_TRUE(testing::IsSendResult(sent));
  auto got = b.NextMsg(conv, kWait);
  ASSERT_TRUE(got.has_value()) << "bob got nothing on gateway 2";
  EXPECT_EQ(json::serialize(testing::MsgOf(*got).at("body")),
            R"({"text":"hello across gateways 🌍"})");

  // A gateway killed, then restarted with its argv: Alice back on it.
  const pid_t old_pid = cluster_->node("gateway-1").pid;
  ASSERT_TRUE(cluster_->Kill("gateway-1"));
  EXPECT_TRUE(a.CloseCode(kWait).has_value() || a.closed() || !a.last_error().empty());
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        return cluster_->Stderr().find("gateway-1 (pid " + std::to_string(old_pid) +
                                       ") killed by SIGKILL") != std::string::npos;
      },
      kWait))
      << "cluster up did not report the dead gateway";
  ASSERT_TRUE(cluster_->Restart("gateway-1")) << cluster_->error();
  WsConn a2(gateways[0]);
  ASSERT_TRUE(a2.Open(alice.token()));
  auto synced = testing::SyncAll(a2, conv, 0, 50);
  ASSERT_EQ(synced.size(), 1u);
  EXPECT_EQ(testing::Str(synced[0], "client_msg_id"), "cu-1");

  // SIGTERM: the gateways drain (1012), everything stops, exit 0.
  std::vector<pid_t> pids;
  for (auto& n : cluster_->nodes()) pids.push_back(n.pid);
  ASSERT_TRUE(cluster_->Terminate("gateway-1").has_value());  // ours since the restart
  auto code = cluster_->Stop(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value()) << "cluster up did not exit on SIGTERM";
  EXPECT_EQ(*code, 0);
  EXPECT_EQ(b.CloseCode(kWait), std::optional<int>(1012)) << b.last_error();
  for (pid_t pid : pids) EXPECT_FALSE(core::ProcessAlive(pid)) << "pid " << pid << " still runs";
  const std::string err = cluster_->Stderr();
  EXPECT_NE(err.find("draining"), std::string::npos) << err;

  // Again on the same dir: the same accounts (the signing key kept: Bob's
  // token is still good), the same messages.
  cluster_ = std::make_unique<ClusterUpProcess>(
      ClusterUpProcess::Options{.env = testing::FastAuthEnv(), .dir = dir});
  ASSERT_TRUE(cluster_->Start()) << cluster_->error();
  const std::vector<uint16_t> again = cluster_->gateway_ports();
  ASSERT_EQ(again.size(), 2u);
  ApiClient api3(again[1]);
  testing::Session login = api3.Login(alice.username);
  ASSERT_FALSE(login.access_token.empty());
  auto history = api3.Get("/conversations/" + conv + "/messages", login.access_token);
  ASSERT_EQ(history.status, 200) << history.Describe();
  EXPECT_NE(history.body.find("hello across gateways"), std::string::npos) << history.body;
  WsConn b2(again[0]);
  EXPECT_TRUE(b2.Open(bob.token())) << "a token from the first run is refused";
  EXPECT_EQ(cluster_->Stop(std::chrono::seconds(120)), std::optional<int>(0));
  cluster_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Runs `mpim cluster up` with `args` and `env_prefix`; its exit code and stderr.
int RunUp(const std::string& env_prefix, const std::string& args, std::string* output) {
  int code = -1;
  *output = testing::RunCommand(
      env_prefix + " '" + testing::MpimBinary() + "' cluster up " + args + " 2>&1", &code);
  return code;
}

TEST(ClusterUpRefusalsE2eTest, EnginesMissingFromPathExit2NamingThePackage) {
  const std::filesystem::path dir = testing::FreshTempDir("mpim-cluster-refusal-");
  std::string out;
  EXPECT_EQ(RunUp("PATH=/nonexistent", "--dir " + dir.string(), &out), 2) << out;
  EXPECT_NE(out.find("install the Debian package redis-server"), std::string::npos) << out;

  // Only etcd missing: a PATH with the other programs.
  const std::filesystem::path bin = dir / "bin";
  std::filesystem::create_directories(bin);
  for (const char* p : {"redis-server", "mariadbd", "mariadb-install-db"}) {
    int code = 0;
    std::string where = testing::RunCommand(std::string("command -v ") + p, &code);
    ASSERT_EQ(code, 0) << p << " is not installed";
    where.erase(where.find_last_not_of('\n') + 1);
    std::filesystem::create_symlink(where, bin / p);
  }
  EXPECT_EQ(RunUp("PATH=" + bin.string(), "--dir " + (dir / "c").string(), &out), 2) << out;
  EXPECT_NE(out.find("etcd (install the Debian package etcd-server)"), std::string::npos) << out;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(ClusterUpRefusalsE2eTest, BadOptionsExit2) {
  const std::filesystem::path dir = testing::FreshTempDir("mpim-cluster-refusal-");
  std::string out;
  EXPECT_EQ(RunUp("", "--dir " + dir.string() + " --logic 0", &out), 2) << out;
  EXPECT_EQ(RunUp("", "--dir " + dir.string() + " --gateways 0", &out), 2) << out;
  EXPECT_NE(RunUp("", "", &out), 0) << out;  // --dir is required
  EXPECT_EQ(RunUp("", "--dir " + dir.string() + " --set nonsense", &out), 2) << out;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace mpim
