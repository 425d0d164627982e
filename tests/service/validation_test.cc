#include "service/validation.h"

#include <gtest/gtest.h>

namespace mpim::service {
namespace {

TEST(ValidationTest, Usernames) {
  for (const char* ok : {"abc", "a_b.c-d", "user123", "12345678901234567890123456789012"}) {
    EXPECT_TRUE(ValidateUsername(ok).ok()) << ok;
  }
  for (const char* bad : {"ab", "Abc", "a b", "ab!", "ümlaut", "123456789012345678901234567890123"}) {
    EXPECT_FALSE(ValidateUsername(bad).ok()) << bad;
  }
}

TEST(ValidationTest, PasswordsCountBytes) {
  EXPECT_FALSE(ValidatePassword("1234567").ok());
  EXPECT_TRUE(ValidatePassword("12345678").ok());
  EXPECT_TRUE(ValidatePassword(std::string(128, 'x')).ok());
  EXPECT_FALSE(ValidatePassword(std::string(129, 'x')).ok());
}

TEST(ValidationTest, DisplayNamesCountCharacters) {
  EXPECT_TRUE(ValidateDisplayName("Zoë").ok());
  std::string sixty_four_snowmen;
  for (int i = 0; i < 64; ++i) sixty_four_snowmen += "\xe2\x98\x83";
  EXPECT_TRUE(ValidateDisplayName(sixty_four_snowmen).ok());
  EXPECT_FALSE(ValidateDisplayName(sixty_four_snowmen + "x").ok());
  EXPECT_FALSE(ValidateDisplayName("").ok());
  EXPECT_FALSE(ValidateDisplayName("a\nb").ok());
  EXPECT_FALSE(ValidateDisplayName("\xc3\x28").ok());  // invalid UTF-8
}

TEST(ValidationTest, AvatarUrls) {
  for (const char* ok : {"", "https://example.com/a.png", "http://h", "HTTPS://Example.com",
                         "https://h:8080/x?y=1"}) {
    EXPECT_TRUE(ValidateAvatarUrl(ok).ok()) << ok;
  }
  for (const char* bad : {"https://", "http:///x", "ftp://h/x", "javascript:alert(1)", "h/x",
                          "https://h/a b", "https://:80/x", "https://@/x"}) {
    EXPECT_FALSE(ValidateAvatarUrl(bad).ok()) << bad;
  }
  EXPECT_FALSE(ValidateAvatarUrl("https://h/" + std::string(2048, 'a')).ok());
}

TEST(ValidationTest, Utf8) {
  EXPECT_EQ(Utf8Length("abc"), 3);
  EXPECT_EQ(Utf8Length("\xf0\x9f\x98\x80"), 1);       // emoji
  EXPECT_EQ(Utf8Length("\xc0\xaf"), -1);              // overlong
  EXPECT_EQ(Utf8Length("\xed\xa0\x80"), -1);          // surrogate
  EXPECT_EQ(Utf8Length("\xf4\x90\x80\x80"), -1);      // past U+10FFFF
  EXPECT_EQ(Utf8Length("\xe2\x98"), -1);              // truncated
}

}  // namespace
}  // namespace mpim::service
