// service/push/registry.h: which providers a configuration turns on, and the
// checks on their credential files (readable by the owner only, a real key).
#include "service/push/registry.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "support/temp_dir.h"
#include "support/test_keys.h"

namespace mpim::service::push {
namespace {

using mpim::testing::NewP256KeyPem;

class ProvidersTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = (std::filesystem::path(dir_.path()) / name).string();
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
    return path;
  }
  testing::TempDir dir_;
};

TEST_F(ProvidersTest, NothingConfiguredNothingOn) {
  core::PushConfig config;
  EXPECT_TRUE(ConfiguredPlatforms(config).empty());
  auto providers = Providers::Open(config);
  ASSERT_TRUE(providers.ok()) << providers.status();
  EXPECT_TRUE((*providers)->platforms().empty());
  EXPECT_EQ((*providers)->For("webhook"), nullptr);
}

TEST_F(ProvidersTest, EachProviderIsOnWhenItsKeySettingIsSet) {
  core::PushConfig config;
  config.webhook_url = "http://127.0.0.1:9/hook";
  EXPECT_EQ(Providers::Open(config).status().code(), absl::StatusCode::kInvalidArgument)
      << "a webhook needs its secret";
  config.webhook_secret = "s";
  config.apns_key_file = Write("AuthKey.p8", NewP256KeyPem(), 0600);
  config.apns_key_id = "ABC123DEFG";
  config.apns_team_id = "TEAM123456";
  config.apns_topic = "com.example.chat";
  EXPECT_EQ(ConfiguredPlatforms(config), (std::set<std::string>{"apns", "webhook"}));
  auto providers = Providers::Open(config);
  ASSERT_TRUE(providers.ok()) << providers.status();
  EXPECT_EQ((*providers)->platforms(), (std::set<std::string>{"apns", "webhook"}));
  ASSERT_NE((*providers)->For("apns"), nullptr);
  EXPECT_EQ((*providers)->For("apns")->name(), "apns");
  EXPECT_EQ((*providers)->For("webhook")->name(), "webhook");
  EXPECT_EQ((*providers)->For("fcm"), nullptr);
}

TEST_F(ProvidersTest, CredentialFilesMustBeTheOwnersAloneAndValid) {
  core::PushConfig config;
  config.apns_key_id = "ABC123DEFG";
  config.apns_team_id = "TEAM123456";
  config.apns_topic = "com.example.chat";
  auto refused = [&](const std::string& key) {
    auto p = Providers::Open(config);
    if (p.ok()) return ::testing::AssertionFailure() << "opened";
    if (p.status().code() != absl::StatusCode::kInvalidArgument ||
        std::string(p.status().message()).find(key) == std::string::npos) {
      return ::testing::AssertionFailure() << p.status();
    }
    return ::testing::AssertionSuccess() << p.status();
  };
  config.apns_key_file = Write("open.p8", NewP256KeyPem(), 0644);
  EXPECT_TRUE(refused("push.apns_key_file"));
  config.apns_key_file = Write("group.p8", NewP256KeyPem(), 0640);
  EXPECT_TRUE(refused("push.apns_key_file"));
  config.apns_key_file = (std::filesystem::path(dir_.path()) / "absent.p8").string();
  EXPECT_TRUE(refused("push.apns_key_file"));
  config.apns_key_file = Write("garbage.p8", "not a key", 0600);
  EXPECT_TRUE(refused("push.apns"));
  config.apns_key_file.clear();
  config.fcm_credentials_file = Write("sa.json", "{}", 0604);
  EXPECT_TRUE(refused("push.fcm_credentials_file"));
  config.fcm_credentials_file = Write("sa2.json", "{\"type\":\"service_account\"}", 0600);
  EXPECT_TRUE(refused("push.fcm_credentials_file")) << "a key file without its fields";
}

}  // namespace
}  // namespace mpim::service::push
