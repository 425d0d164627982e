#include "service/auth/password_hasher.h"

#include <gtest/gtest.h>

namespace mpim::service::auth {
namespace {

TEST(PasswordHasherTest, HashesAreArgon2idSaltedAndVerify) {
  PasswordHasher hasher(1, 8 * 1024);
  auto a = hasher.Hash("correct horse battery staple");
  auto b = hasher.Hash("correct horse battery staple");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->rfind("$argon2id$", 0), 0u) << *a;
  EXPECT_NE(*a, *b);  // salted
  EXPECT_TRUE(hasher.Verify(*a, "correct horse battery staple"));
  EXPECT_FALSE(hasher.Verify(*a, "correct horse battery stapler"));
  EXPECT_FALSE(hasher.Verify("", "x"));
  EXPECT_FALSE(hasher.Verify("$argon2id$garbage", "x"));
}

TEST(PasswordHasherTest, HashesFromOtherSettingsStillVerify) {
  PasswordHasher cheap(1, 8 * 1024);
  PasswordHasher costly(2, 64 * 1024);
  auto h = cheap.Hash("password123");
  ASSERT_TRUE(h.ok());
  EXPECT_TRUE(costly.Verify(*h, "password123"));
}

}  // namespace
}  // namespace mpim::service::auth
