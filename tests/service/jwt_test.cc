#include "service/auth/jwt.h"

#include <gtest/gtest.h>

#include <vector>

namespace mpim::service::auth {
namespace {

const TokenKey kKey{"k1", "0123456789abcdef0123456789abcdef"};

// Computed independently (Python hmac/base64) for these claims and key.
constexpr char kVector[] =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0."
    "eyJzdWIiOiIxMDAxIiwic2lkIjoiNDIiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMDkwMH0."
    "4nUJ8DHibmYzF53LhMPDV1TAHJxZqGoIk6JBZyGz_M4";

AccessClaims Claims() { return AccessClaims{1001, 42, 1700000000, 1700000900, ""}; }

TEST(JwtTest, EncodingMatchesTheKnownVector) {
  EXPECT_EQ(SignAccessToken(kKey, Claims()), kVector);
}

TEST(JwtTest, HmacMatchesRfc7515AppendixA1) {
  auto key = Base64UrlDecode(
      "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow");
  ASSERT_TRUE(key.ok());
  std::string input =
      "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
      "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVl"
      "fQ";
  EXPECT_EQ(Base64UrlEncode(HmacSha256(*key, input)),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
}

TEST(JwtTest, VerifiesItsOwnTokens) {
  std::vector<TokenKey> keys{kKey};
  auto claims = VerifyAccessToken(kVector, keys, 1700000001);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->user_id, 1001);
  EXPECT_EQ(claims->session_id, 42);
  EXPECT_EQ(claims->exp, 1700000900);
  EXPECT_EQ(claims->kid, "k1");
}

TEST(JwtTest, PreviousKeyStillVerifies) {
  TokenKey next{"k2", "fedcba9876543210fedcba9876543210"};
  std::vector<TokenKey> keys{next, kKey};
  EXPECT_TRUE(VerifyAccessToken(kVector, keys, 1700000001).ok());
  std::vector<TokenKey> only_next{next};
  EXPECT_FALSE(VerifyAccessToken(kVector, only_next, 1700000001).ok());
}

TEST(JwtTest, RejectsEveryKindOfBadToken) {
  std::vector<TokenKey> keys{kKey};
  std::string good = kVector;
  auto expect_bad = [&](const std::string& token, int64_t now, const std::string& why) {
    auto r = VerifyAccessToken(token, keys, now);
    ASSERT_FALSE(r.ok()) << why;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << why;
  };
  expect_bad(good, 1700000900, "expired at exp");
  expect_bad(good, 1800000000, "long expired");
  expect_bad("", 0, "empty");
  expect_bad("abc", 0, "one part");
  expect_bad("a.b", 0, "two parts");
  expect_bad(good + ".x", 0, "four parts");
  expect_bad(std::string(5000, 'a'), 0, "too long");
  std::string tampered = good;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  expect_bad(tampered, 1700000001, "tampered signature");
  // Payload swapped for another user's, signature kept.
  std::string other = SignAccessToken(kKey, AccessClaims{1002, 42, 1700000000, 1700000900, ""});
  std::string spliced = good.substr(0, good.find('.')) +
                        other.substr(other.find('.'), other.rfind('.') - other.find('.')) +
                        good.substr(good.rfind('.'));
  expect_bad(spliced, 1700000001, "spliced payload");
  // alg none and other algorithms.
  std::string none = Base64UrlEncode(R"({"alg":"none","typ":"JWT","kid":"k1"})") +
                     good.substr(good.find('.'), good.rfind('.') - good.find('.')) + ".";
  expect_bad(none, 1700000001, "alg none");
  TokenKey wrong{"k1", "ffffffffffffffffffffffffffffffff"};
  expect_bad(SignAccessToken(wrong, Claims()), 1700000001, "wrong key, same kid");
  TokenKey unknown{"k9", kKey.secret};
  expect_bad(SignAccessToken(unknown, Claims()), 1700000001, "unknown kid");
  expect_bad("!!!.###.$$$", 0, "not base64url");
  expect_bad(Base64UrlEncode("[1]") + ".e30.AAAA", 0, "header not an object");
}

TEST(JwtTest, Base64UrlRoundTrip) {
  for (std::string s : {std::string(""), std::string("f"), std::string("\xff\xfe\x00", 3),
                        std::string("hello world!!")}) {
    auto back = Base64UrlDecode(Base64UrlEncode(s));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, s);
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_FALSE(Base64UrlDecode("a+b/").ok());
  EXPECT_FALSE(Base64UrlDecode("abc=").ok());
}

}  // namespace
}  // namespace mpim::service::auth
