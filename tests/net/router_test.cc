#include "net/router.h"

#include <gtest/gtest.h>

namespace mpim::net {
namespace {

HttpHandler Tag(std::string* last, std::string tag) {
  return [last, tag](HttpRequest, HttpResponder respond) {
    *last = tag;
    respond(HttpResponse::NoContent());
  };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("GET", "/api/v1/users/me", Tag(&last_, "me"));
    router_.Add("GET", "/api/v1/users/{id}", Tag(&last_, "user"));
    router_.Add("PATCH", "/api/v1/users/me", Tag(&last_, "patch-me"));
    router_.Add("GET", "/api/v1/groups/{id}/members/{user_id}", Tag(&last_, "member"));
    router_.Add("DELETE", "/api/v1/groups/{id}/members/{user_id}", Tag(&last_, "remove"));
    router_.Add("GET", "/healthz", Tag(&last_, "health"));
  }

  std::string Call(const Router::Match& m) {
    HttpRequest req;
    (*m.handler)(std::move(req), HttpResponder([](HttpResponse) {}));
    return last_;
  }

  Router router_;
  std::string last_;
};

TEST_F(RouterTest, LiteralWinsOverParameter) {
  auto m = router_.Find("GET", "/api/v1/users/me");
  ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
  EXPECT_EQ(Call(m), "me");
  EXPECT_EQ(m.pattern, "/api/v1/users/me");
  EXPECT_TRUE(m.params.empty());
}

TEST_F(RouterTest, ParametersAreCaptured) {
  auto m = router_.Find("GET", "/api/v1/groups/77/members/1001");
  ASSERT_EQ(m.kind, Router::Match::Kind::kFound);
  EXPECT_EQ(Call(m), "member");
  EXPECT_EQ(m.pattern, "/api/v1/groups/{id}/members/{user_id}");
  ASSERT_EQ(m.params.size(), 2u);
  EXPECT_EQ(m.params[0], (std::pair<std::string, std::string>{"id", "77"}));
  EXPECT_EQ(m.params[1], (std::pair<std::string, std::string>{"user_id", "1001"}));

  auto u = router_.Find("GET", "/api/v1/users/1002");
  ASSERT_EQ(u.kind, Router::Match::Kind::kFound);
  EXPECT_EQ(Call(u), "user");
}

TEST_F(RouterTest, FallsBackToParameterWhenLiteralBranchDoesNotMatch) {
  // "me" literal exists at this depth, but "/me/x" only matches nothing.
  EXPECT_EQ(router_.Find("GET", "/api/v1/users/me/x").kind, Router::Match::Kind::kNotFound);
}

TEST_F(RouterTest, NotFound) {
  EXPECT_EQ(router_.Find("GET", "/api/v1/nothing").kind, Router::Match::Kind::kNotFound);
  EXPECT_EQ(router_.Find("GET", "/api/v1/users").kind, Router::Match::Kind::kNotFound);
  EXPECT_EQ(router_.Find("GET", "/").kind, Router::Match::Kind::kNotFound);
}

TEST_F(RouterTest, MethodNotAllowedListsAllowedMethods) {
  auto m = router_.Find("POST", "/api/v1/users/me");
  ASSERT_EQ(m.kind, Router::Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(m.allowed, (std::vector<std::string>{"GET", "PATCH"}));
  auto g = router_.Find("PUT", "/api/v1/groups/1/members/2");
  ASSERT_EQ(g.kind, Router::Match::Kind::kMethodNotAllowed);
  EXPECT_EQ(g.allowed, (std::vector<std::string>{"DELETE", "GET"}));
}

TEST_F(RouterTest, TrailingAndDoubleSlashesAreIgnored) {
  EXPECT_EQ(router_.Find("GET", "/healthz/").kind, Router::Match::Kind::kFound);
  EXPECT_EQ(router_.Find("GET", "//healthz").kind, Router::Match::Kind::kFound);
}

TEST(ParseTargetTest, DecodesPathAndQuery) {
  auto t = ParseTarget("/api/v1/users?prefix=al%20b&limit=20");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->segments, (std::vector<std::string>{"api", "v1", "users"}));
  ASSERT_EQ(t->query.size(), 2u);
  EXPECT_EQ(t->query[0].second, "al b");
  EXPECT_EQ(t->query[1], (std::pair<std::string, std::string>{"limit", "20"}));

  auto enc = ParseTarget("/api/v1/conversations/p%3A1%3A2/messages");
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->segments[3], "p:1:2");
}

TEST(ParseTargetTest, RejectsMalformedTargets) {
  EXPECT_FALSE(ParseTarget("no-slash").ok());
  EXPECT_FALSE(ParseTarget("/bad%zzescape").ok());
  EXPECT_FALSE(ParseTarget("http://absolute/form").ok());
}

TEST(HttpResponderTest, DroppedResponderAnswers500) {
  int status = 0;
  { HttpResponder r([&](HttpResponse resp) { status = resp.status; }); }
  EXPECT_EQ(status, 500);
  HttpResponder once([&](HttpResponse resp) { status = resp.status; });
  once(HttpResponse::NoContent());
  EXPECT_EQ(status, 204);
  once(HttpResponse::Json(200, "{}"));  // ignored
  EXPECT_EQ(status, 204);
}

}  // namespace
}  // namespace mpim::net
