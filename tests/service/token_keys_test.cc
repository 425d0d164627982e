#include "service/auth/token_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace mpim::service::auth {
namespace {

class TokenKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("mpim_keys_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(TokenKeysTest, GeneratedOnFirstStartWithMode0600AndStable) {
  auto first = LoadTokenKeys({}, dir_.string());
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->current.secret.size(), 32u);
  EXPECT_FALSE(first->previous.has_value());
  struct stat st {};
  ASSERT_EQ(::stat(KeyFilePath(dir_.string()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto again = LoadTokenKeys({}, dir_.string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->current.kid, first->current.kid);
  EXPECT_EQ(again->current.secret, first->current.secret);
}

TEST_F(TokenKeysTest, RotationKeepsThePreviousKey) {
  auto first = LoadTokenKeys({}, dir_.string());
  ASSERT_TRUE(first.ok());
  auto rotated = RotateTokenKeys(dir_.string());
  ASSERT_TRUE(rotated.ok());
  ASSERT_TRUE(rotated->previous.has_value());
  EXPECT_EQ(rotated->previous->kid, first->current.kid);
  EXPECT_NE(rotated->current.kid, first->current.kid);
  auto loaded = LoadTokenKeys({}, dir_.string());
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->current.kid, rotated->current.kid);
  EXPECT_EQ(loaded->All().size(), 2u);
}

TEST_F(TokenKeysTest, ConfigKeysWinAndAreValidated) {
  core::AuthConfig auth;
  auth.token_key = Base64UrlEncode(std::string(32, 'k'));
  auth.token_key_id = "cfg";
  auto keys = LoadTokenKeys(auth, dir_.string());
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->current.kid, "cfg");
  EXPECT_FALSE(std::filesystem::exists(KeyFilePath(dir_.string())));
  auth.token_key = Base64UrlEncode("short");
  EXPECT_FALSE(LoadTokenKeys(auth, dir_.string()).ok());
}

TEST_F(TokenKeysTest, CorruptFileIsAnError) {
  std::FILE* f = std::fopen(KeyFilePath(dir_.string()).c_str(), "w");
  std::fputs("{not json", f);
  std::fclose(f);
  EXPECT_FALSE(LoadTokenKeys({}, dir_.string()).ok());
}

}  // namespace
}  // namespace mpim::service::auth
