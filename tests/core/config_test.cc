#include "core/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace mpim::core {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mpim_config_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WriteFile(const std::string& text) {
    std::string path = (dir_ / "mpim.toml").string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(ConfigTest, DefaultsGiveAWorkingAllInOneServer) {
  auto config = LoadConfig({});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.role, "all");
  EXPECT_EQ(config->server.listen, "127.0.0.1:8080");
  EXPECT_EQ(config->store.engine, "sqlite");
  EXPECT_EQ(config->limits.send_per_sec, 50);
  EXPECT_EQ(config->limits.send_burst, 100);
  EXPECT_EQ(config->limits.body_max_bytes, 65536);
  EXPECT_EQ(config->limits.frame_max_bytes, 131072);
  EXPECT_EQ(config->limits.group_max_members, 100000);
  EXPECT_EQ(config->limits.page_max, 200);
  EXPECT_EQ(config->limits.connections_per_address, 5000);
}

// `mpim config show` says where each value came from.
TEST_F(ConfigTest, EachValueKnowsWhereItCameFrom) {
  ConfigSources sources;
  sources.file = WriteFile("[limits]\npage_max = 10\n");
  sources.env = {{"MPIM_LIMITS_SEND_BURST", "7"}};
  sources.overrides = {{"log.level", "debug"}};
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->origins.at("limits.page_max"), "file " + sources.file);
  EXPECT_EQ(config->origins.at("limits.send_burst"), "environment MPIM_LIMITS_SEND_BURST");
  EXPECT_EQ(config->origins.at("log.level"), "command line");
  EXPECT_FALSE(config->origins.contains("limits.send_per_sec"));
  const std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find("page_max = 10  # file "), std::string::npos) << shown;
  EXPECT_NE(shown.find("send_burst = 7  # environment MPIM_LIMITS_SEND_BURST"), std::string::npos);
  EXPECT_NE(shown.find("send_per_sec = 50\n"), std::string::npos) << "a default has no origin";
}

// The test harness's own variables reach every server it starts (they
// inherit its environment): none may look like a config key.
TEST_F(ConfigTest, TheTestHarnessVariablesAreNotConfig) {
  ConfigSources sources;
  sources.env = {{"MPIM_BINARY", "/x/mpim"},         {"MPIM_BIN", "/x/mpim"},
                 {"MPIM_E2E_TARGET", "cluster"},     {"MPIM_TEST_SANITIZED_SERVER", "1"},
                 {"MPIM_BROWSER_ARTIFACTS", "/tmp"}, {"MPIM_BENCH_BINARY", "/x/b"},
                 {"MPIM_TEST_STORE", "mysql"},       {"MPIM_TEST_CACHE", "redis"},
                 {"MPIM_CRASH_TRACE", "1"}};
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_TRUE(config->origins.empty());
}

// The configuration centre's rules: only run-time keys, validated whole.
TEST_F(ConfigTest, RunTimeValuesAreCheckedLikeAnyOther) {
  auto base = LoadConfig({});
  ASSERT_TRUE(base.ok());
  auto next = WithValue(*base, "limits.send_per_sec", "5", "etcd");
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->limits.send_per_sec, 5);
  EXPECT_EQ(next->origins.at("limits.send_per_sec"), "etcd");
  EXPECT_EQ(base->limits.send_per_sec, 50) << "the base is left alone";
  EXPECT_EQ(WithValue(*base, "store.engine", "mysql", "etcd").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(WithValue(*base, "limits.send_per_sec", "-1", "etcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WithValue(*base, "log.level", "loud", "etcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WithValue(*base, "nosuch.key", "1", "etcd").status().code(),
            absl::StatusCode::kInvalidArgument);
  // Not live, but allowed when the caller says so.
  EXPECT_TRUE(WithValue(*base, "limits.page_max", "20", "test", /*live_only=*/false).ok());
  for (const std::string& key : LiveKeys()) EXPECT_TRUE(IsLiveKey(key)) << key;
}

TEST_F(ConfigTest, FlagsBeatEnvBeatFileBeatDefaults) {
  std::string file = WriteFile(R"(
[server]
listen = "127.0.0.1:9001"
io_threads = 3
drain_timeout_ms = 1234
[limits]
page_max = 10
send_burst = 7
)");
  ConfigSources sources;
  sources.file = file;
  sources.env = {{"MPIM_SERVER_LISTEN", "127.0.0.1:9002"},
                 {"MPIM_LIMITS_PAGE_MAX", "20"},
                 {"HOME", "/root"},
                 {"MPIM_BINARY", "/not/a/config/key"}};
  sources.overrides = {{"server.listen", "127.0.0.1:9003"}};
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server.listen, "127.0.0.1:9003");  // flag
  EXPECT_EQ(config->limits.page_max, 20);              // env over file
  EXPECT_EQ(config->limits.send_burst, 7);             // file over default
  EXPECT_EQ(config->server.io_threads, 3);             // file
  EXPECT_EQ(config->server.drain_timeout_ms, 1234);    // file
  EXPECT_EQ(config->limits.send_per_sec, 50);          // default
}

struct BadCase {
  std::string name;
  std::string file;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<std::pair<std::string, std::string>> overrides;
  std::string expect_in_message;
};

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(ConfigErrorTest, StopsWithAMessageNamingTheKey) {
  const BadCase& c = GetParam();
  ConfigSources sources;
  if (!c.file.empty()) sources.file = WriteFile(c.file);
  sources.env = c.env;
  sources.overrides = c.overrides;
  auto config = LoadConfig(sources);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(config.status().message()).find(c.expect_in_message), std::string::npos)
      << config.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    AllErrors, ConfigErrorTest,
    ::testing::Values(
        BadCase{
            "UnknownKeyInFile", "[server]\nlistn = \"x:1\"\n", {}, {}, "server.listn: unknown key"},
        BadCase{
            "UnknownSection", "[servre]\nlisten = \"x:1\"\n", {}, {}, "servre: unknown section"},
        BadCase{"SectionNotATable", "server = 3\n", {}, {}, "server: expected a table"},
        BadCase{"WrongTypeInt",
                "[server]\nio_threads = \"four\"\n",
                {},
                {},
                "server.io_threads: expected an integer"},
        BadCase{"WrongTypeString",
                "[server]\nlisten = 8080\n",
                {},
                {},
                "server.listen: expected a string"},
        BadCase{"OutOfRange",
                "[server]\nnode_id = 1024\n",
                {},
                {},
                "server.node_id: must be between 0 and 1023, got 1024"},
        BadCase{"NotAChoice", "[log]\nlevel = \"loud\"\n", {}, {}, "log.level: must be one of"},
        BadCase{"BadListen",
                "[server]\nlisten = \"localhost\"\n",
                {},
                {},
                "server.listen: expected host:port"},
        BadCase{"BadPort", "[server]\nlisten = \"127.0.0.1:70000\"\n", {}, {}, "port 0-65535"},
        BadCase{"TomlSyntax", "[server\nlisten = 1\n", {}, {}, "line 1"},
        BadCase{"EmptyDataDir",
                "",
                {{"MPIM_SERVER_DATA_DIR", ""}},
                {},
                "server.data_dir: must not be empty"},
        BadCase{"EnvUnknownKey",
                "",
                {{"MPIM_LIMITS_SEND_PER_MINUTE", "5"}},
                {},
                "environment MPIM_LIMITS_SEND_PER_MINUTE: limits.send_per_minute: unknown key"},
        BadCase{"EnvNotAnInteger",
                "",
                {{"MPIM_LIMITS_PAGE_MAX", "12x"}},
                {},
                "limits.page_max: expected an integer, got \"12x\""},
        BadCase{"EnvOutOfRange",
                "",
                {{"MPIM_LIMITS_PAGE_MAX", "0"}},
                {},
                "limits.page_max: must be between"},
        BadCase{"FlagUnknownKey",
                "",
                {},
                {{"server.nope", "1"}},
                "command line: server.nope: unknown key"},
        BadCase{"FlagNoDot", "", {}, {{"listen", "1"}}, "expected section.key"},
        BadCase{"FlagBadValue",
                "",
                {},
                {{"store.sqlite_synchronous", "off"}},
                "store.sqlite_synchronous: must be one of normal, full"},
        BadCase{"ListNotAnArray",
                "[discovery]\netcd_endpoints = \"127.0.0.1:2379\"\n",
                {},
                {},
                "discovery.etcd_endpoints: expected an array of strings"},
        BadCase{"ListBadElement",
                "",
                {{"MPIM_DISCOVERY_ETCD_ENDPOINTS", "127.0.0.1:2379,nohost"}},
                {},
                "discovery.etcd_endpoints: \"nohost\": expected host:port"},
        BadCase{"StaticNodeBadRole",
                "",
                {},
                {{"discovery.static_nodes", "edge=10.0.0.1:1"}},
                "discovery.static_nodes: \"edge=10.0.0.1:1\": role must be"},
        BadCase{"EtcdWithoutEndpoints",
                "",
                {},
                {{"discovery.engine", "etcd"}},
                "discovery.etcd_endpoints: required when discovery.engine is \"etcd\""}),
    [](const auto& info) { return info.param.name; });

TEST_F(ConfigTest, ListsComeFromTomlArraysOrCommaSeparatedText) {
  ConfigSources sources;
  sources.file =
      WriteFile("[discovery]\nstatic_nodes = [\"logic=10.0.0.2:7001\", \"task=10.0.0.3:7002\"]\n");
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->discovery.static_nodes,
            (std::vector<std::string>{"logic=10.0.0.2:7001", "task=10.0.0.3:7002"}));
  // The environment and --set: comma-separated, optionally as ["a", "b"].
  sources.env = {{"MPIM_DISCOVERY_ETCD_ENDPOINTS", "127.0.0.1:2379, 127.0.0.1:2380"}};
  sources.overrides = {{"discovery.static_nodes", R"(["logic=10.0.0.9:7001"])"}};
  config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->discovery.etcd_endpoints,
            (std::vector<std::string>{"127.0.0.1:2379", "127.0.0.1:2380"}));
  EXPECT_EQ(config->discovery.static_nodes, (std::vector<std::string>{"logic=10.0.0.9:7001"}));
  // Shown as TOML arrays.
  const std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find(R"(etcd_endpoints = ["127.0.0.1:2379", "127.0.0.1:2380"])"),
            std::string::npos)
      << shown;
  EXPECT_NE(shown.find("static_nodes = [\"logic=10.0.0.9:7001\"]"), std::string::npos);
}

TEST_F(ConfigTest, RealNumbersFromTomlEnvironmentAndFlags) {
  ConfigSources sources;
  sources.file = WriteFile("[tracing]\nsample_ratio = 0.25\n");
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->tracing.sample_ratio, 0.25);
  sources.file = WriteFile("[tracing]\nsample_ratio = 1\n");  // an integer is a number too
  config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->tracing.sample_ratio, 1.0);
  sources.env = {{"MPIM_TRACING_SAMPLE_RATIO", "0.5"}};
  sources.overrides = {{"tracing.sample_ratio", "0.1"}};
  config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->tracing.sample_ratio, 0.1);
  const std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find("sample_ratio = 0.1 "), std::string::npos) << shown;
  EXPECT_NE(ShowConfig(Config{}).find("sample_ratio = 0.0"), std::string::npos);
  for (const char* bad : {"1.5", "-0.1", "abc", "0.1x", "", "nan"}) {
    ConfigSources s;
    s.overrides = {{"tracing.sample_ratio", bad}};
    auto r = LoadConfig(s);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(std::string(r.status().message()).find("tracing.sample_ratio"), std::string::npos);
    }
  }
  ConfigSources text;
  text.file = WriteFile("[tracing]\nsample_ratio = \"0.1\"\n");
  EXPECT_FALSE(LoadConfig(text).ok());
  ConfigSources url;
  url.overrides = {{"tracing.otlp_endpoint", "collector:4318"}};
  EXPECT_FALSE(LoadConfig(url).ok());
}

TEST_F(ConfigTest, MissingFileIsAnError) {
  ConfigSources sources;
  sources.file = (dir_ / "absent.toml").string();
  auto config = LoadConfig(sources);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(std::string(config.status().message()).find("absent.toml"), std::string::npos);
}

TEST_F(ConfigTest, ExampleIsAValidFileThatLoadsToTheDefaults) {
  std::string example = ExampleConfig();
  EXPECT_NE(example.find("# Environment: MPIM_LIMITS_SEND_PER_SEC"), std::string::npos);
  ConfigSources sources;
  sources.file = WriteFile(example);
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  config->origins.clear();  // every value is from the file; compare the values
  EXPECT_EQ(ShowConfig(*config), ShowConfig(Config{}));
}

TEST_F(ConfigTest, ShowRoundTripsTheEffectiveConfig) {
  ConfigSources sources;
  sources.overrides = {{"server.listen", "127.0.0.1:7000"}, {"server.data_dir", "/tmp/a \"b\""}};
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok());
  std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find("listen = \"127.0.0.1:7000\""), std::string::npos) << shown;
  ConfigSources again;
  again.file = WriteFile(shown);
  auto reloaded = LoadConfig(again);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->server.data_dir, "/tmp/a \"b\"");
}

TEST_F(ConfigTest, ShowMasksSecretsAndKeyIdIsRequiredWithAKey) {
  ConfigSources sources;
  sources.env = {{"MPIM_AUTH_TOKEN_KEY", "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"}};
  auto missing_id = LoadConfig(sources);
  ASSERT_FALSE(missing_id.ok());
  EXPECT_NE(std::string(missing_id.status().message()).find("auth.token_key_id: required"),
            std::string::npos);
  sources.env.emplace_back("MPIM_AUTH_TOKEN_KEY_ID", "k1");
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find("token_key = \"********\""), std::string::npos) << shown;
  EXPECT_EQ(shown.find("c2VjcmV0"), std::string::npos);
  EXPECT_NE(shown.find("token_key_id = \"k1\""), std::string::npos);
  EXPECT_NE(shown.find("previous_token_key = \"\""), std::string::npos);  // empty: nothing to hide
}

TEST_F(ConfigTest, PushAndAdminKeysBooleansUrlsAndSecrets) {
  auto defaults = LoadConfig({});
  ASSERT_TRUE(defaults.ok());
  EXPECT_TRUE(defaults->push.preview);
  EXPECT_EQ(defaults->push.max_attempts, 8);
  EXPECT_EQ(defaults->push.retry_base_ms, 1000);
  EXPECT_EQ(defaults->push.coalesce_ms, 1000);
  EXPECT_TRUE(defaults->push.webhook_url.empty());
  EXPECT_TRUE(defaults->admin.api_key.empty());

  ConfigSources sources;
  sources.file = WriteFile("[push]\npreview = false\nwebhook_url = \"https://hooks.example/x\"\n");
  sources.env = {{"MPIM_PUSH_WEBHOOK_SECRET", "hook-secret-value"},
                 {"MPIM_ADMIN_API_KEY", "admin-key-value"}};
  auto config = LoadConfig(sources);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_FALSE(config->push.preview);
  EXPECT_EQ(config->push.webhook_url, "https://hooks.example/x");
  std::string shown = ShowConfig(*config);
  EXPECT_NE(shown.find("preview = false"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("hook-secret-value"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("admin-key-value"), std::string::npos) << shown;
  EXPECT_NE(shown.find("api_key = \"********\""), std::string::npos) << shown;
  // The shown text loads back to the same (booleans included).
  ConfigSources again;
  again.file = WriteFile("[push]\npreview = false\n");
  sources.overrides = {{"push.preview", "true"}};
  EXPECT_TRUE(LoadConfig(sources)->push.preview) << "--set wins over the file";
  EXPECT_FALSE(LoadConfig(again)->push.preview);

  for (const auto& [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"push.preview", "yes"},
                                                        {"push.webhook_url", "ftp://x"},
                                                        {"push.max_attempts", "0"},
                                                        {"push.coalesce_ms", "-1"}}) {
    ConfigSources bad;
    bad.overrides = {{key, value}};
    auto refused = LoadConfig(bad);
    EXPECT_FALSE(refused.ok()) << key << "=" << value;
    if (!refused.ok()) {
      EXPECT_NE(std::string(refused.status().message()).find(key), std::string::npos)
          << refused.status();
    }
  }
  ConfigSources wrong_type;
  wrong_type.file = WriteFile("[push]\npreview = \"false\"\n");
  EXPECT_FALSE(LoadConfig(wrong_type).ok()) << "a string is not a boolean";
}

TEST(ParseHostPortTest, Forms) {
  EXPECT_EQ(*ParseHostPort("127.0.0.1:80"), std::make_pair(std::string("127.0.0.1"), uint16_t{80}));
  EXPECT_EQ(*ParseHostPort("[::1]:0"), std::make_pair(std::string("::1"), uint16_t{0}));
  EXPECT_FALSE(ParseHostPort("::1:80").ok());
  EXPECT_FALSE(ParseHostPort(":80").ok());
  EXPECT_FALSE(ParseHostPort("host:").ok());
  EXPECT_FALSE(ParseHostPort("host:-1").ok());
}

}  // namespace
}  // namespace mpim::core

namespace mpim::core {
namespace {

// docs/configuration.md lists every key; this keeps the two in step.
TEST(ConfigDocsTest, EveryKeyIsDocumented) {
  std::ifstream in(std::string(MPIM_SOURCE_DIR) + "/docs/configuration.md");
  ASSERT_TRUE(in.good());
  std::string docs((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string example = ExampleConfig();
  std::string section;
  size_t keys = 0;
  std::istringstream lines(example);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      section = line.substr(1, line.find(']') - 1);
      continue;
    }
    std::string key = line.substr(0, line.find(' '));
    ++keys;
    EXPECT_NE(docs.find("`" + section + "." + key + "`"), std::string::npos)
        << section << "." << key << " is missing from docs/configuration.md";
  }
  EXPECT_GT(keys, 20u);
}

}  // namespace
}  // namespace mpim::core
