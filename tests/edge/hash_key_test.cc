// edge::HashKey: what the edge's hashing balancers place, from a request.
#include "edge/hash_key.h"

#include <gtest/gtest.h>

#include "service/auth/jwt.h"

namespace mpim::edge {
namespace {

std::string Token(int64_t user) {
  service::auth::TokenKey key{"k", std::string(32, 's')};
  return service::auth::SignAccessToken(key,
                                        {.user_id = user, .session_id = 9, .iat = 1, .exp = 2});
}

TEST(HashKeyTest, ParsesTheFourKindsAndRefusesTheRest) {
  EXPECT_EQ(HashKey::Parse("user")->kind(), HashKey::Kind::kUser);
  EXPECT_EQ(HashKey::Parse("user")->header(), "Authorization");
  EXPECT_EQ(HashKey::Parse("address")->kind(), HashKey::Kind::kAddress);
  EXPECT_EQ(HashKey::Parse("header:X-Tenant")->header(), "X-Tenant");
  EXPECT_EQ(HashKey::Parse("cookie:sid")->header(), "Cookie");
  for (const char* bad : {"", "users", "header:", "cookie:", "ip"}) {
    EXPECT_FALSE(HashKey::Parse(bad).ok()) << bad;
  }
}

TEST(HashKeyTest, UserComesFromTheBearerTokenOrTheTokenQuery) {
  HashKey key = *HashKey::Parse("user");
  // Expired and signed with a key the edge does not have: placement only.
  EXPECT_EQ(key.Of("/api/v1/users/me", "Bearer " + Token(42), "1.2.3.4"), "u42");
  EXPECT_EQ(key.Of("/ws?x=1&token=" + Token(7), "", "1.2.3.4"), "u7");
  EXPECT_EQ(key.Of("/ws?token=" + Token(7), "Bearer " + Token(8), ""), "u8");  // header first
  EXPECT_EQ(key.Of("/ws", "", "1.2.3.4"), std::nullopt);                       // frame auth: no key
  EXPECT_EQ(key.Of("/ws?token=garbage", "", "1.2.3.4"), std::nullopt);
  EXPECT_EQ(key.Of("/", "Bearer a.b.c", ""), std::nullopt);
  EXPECT_EQ(key.Of("/", "Basic abc", ""), std::nullopt);
}

TEST(HashKeyTest, AddressHeaderAndCookie) {
  EXPECT_EQ(HashKey::Parse("address")->Of("/", "", "10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(HashKey::Parse("address")->Of("/", "", ""), std::nullopt);
  EXPECT_EQ(HashKey::Parse("header:X-Tenant")->Of("/", "acme", "1.1.1.1"), "acme");
  EXPECT_EQ(HashKey::Parse("header:X-Tenant")->Of("/", "", "1.1.1.1"), std::nullopt);
  HashKey cookie = *HashKey::Parse("cookie:sid");
  EXPECT_EQ(cookie.Of("/", "a=1; sid=abc; b=2", ""), "abc");
  EXPECT_EQ(cookie.Of("/", "sid=\"q\"", ""), "q");
  EXPECT_EQ(cookie.Of("/", "a=1; sidx=2", ""), std::nullopt);
  EXPECT_EQ(cookie.Of("/", "", ""), std::nullopt);
}

TEST(HashKeyTest, QueryParamsArePercentDecoded) {
  EXPECT_EQ(QueryParam("/p?a=1&b=x%20y+z", "b"), "x y z");
  EXPECT_EQ(QueryParam("/p?a", "a"), "");
  EXPECT_EQ(QueryParam("/p?a=1#b=2", "b"), std::nullopt);
  EXPECT_EQ(QueryParam("/p", "a"), std::nullopt);
  EXPECT_EQ(QueryParam("/p?a=%zz%4", "a"), "%zz%4");  // bad escapes kept as they are
}

}  // namespace
}  // namespace mpim::edge
