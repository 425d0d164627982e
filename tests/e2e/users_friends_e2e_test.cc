// End-to-end: users, friends and blocks over HTTP against the real `mpim`
// binary (docs/protocol.md section 2 "Users and friends",
// docs/protocol.md section 2 "Users" and "Friends and blocks").
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

#include "support/api_client.h"
#include "support/server_process.h"
#include "support/shared_server.h"

namespace mpim {
namespace {

using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using testing::FastAuthEnv;
using testing::IsError;
using testing::IsUserObject;
using testing::JsonString;
using testing::ServerProcess;
using testing::UniqueName;
using testing::UrlEncode;

namespace json = boost::json;

// An id no user has (store ids start at 1001 and grow by one).
constexpr const char* kUnknownId = "987654321012";

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The user_id of each element of `items`, reading it from `item[key]` when
// `key` is set (friend requests nest the user object under "user").
std::vector<std::string> Ids(const json::value& items, const char* key = nullptr) {
  std::vector<std::string> out;
  if (!items.is_array()) return out;
  for (const json::value& item : items.as_array()) {
    const json::value* user = &item;
    if (key) {
      if (!item.is_object() || !item.as_object().contains(key)) continue;
      user = &item.at(key);
    }
    if (user->is_object() && user->as_object().contains("user_id") &&
        user->at("user_id").is_string()) {
      out.emplace_back(user->at("user_id").as_string());
    }
  }
  return out;
}

std::vector<std::string> Usernames(const json::value& items) {
  std::vector<std::string> out;
  if (!items.is_array()) return out;
  for (const json::value& item : items.as_array()) {
    if (item.is_object() && item.as_object().contains("username") &&
        item.at("username").is_string()) {
      out.emplace_back(item.at("username").as_string());
    }
  }
  return out;
}

bool ByNumericId(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

class UsersFriendsE2eTest : public testing::SharedServerTest {
 protected:
  Account New(const char* prefix = "u") { return api_->NewAccount(UniqueName(prefix)); }

  // A response that must be 200 with a JSON object body.
  json::object Ok(const ApiResponse& r, int status = 200) {
    EXPECT_EQ(r.status, status) << r.Describe();
    if (r.status != status || !r.json.is_object()) return {};
    return r.json.as_object();
  }

  json::object Friends(const Account& a, const std::string& query = "") {
    return Ok(api_->Get("/friends" + query, a.token()));
  }
  json::object Requests(const Account& a) { return Ok(api_->Get("/friends/requests", a.token())); }
  json::object Blocked(const Account& a, const std::string& query = "") {
    return Ok(api_->Get("/blocks" + query, a.token()));
  }
  ApiResponse Befriend(const Account& from, const std::string& to_id) {
    return api_->Post("/friends/" + to_id, "", from.token());
  }
  // Each of `bad` in place of the id in `<path_prefix><id>` is 400.
  void ExpectBadPathIds(const std::string& method, const std::string& path_prefix,
                        const Account& caller,
                        std::initializer_list<const char*> bad = {"abc", "12x", "1.0", "1e3",
                                                                  "0x10", "-"}) {
    for (const char* id : bad) {
      ApiResponse r = api_->Call(method, "/api/v1" + path_prefix + id, "", caller.token());
      EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << method << " " << path_prefix << id;
    }
  }
  // Makes a and b friends: a asks, b accepts.
  void MakeFriends(const Account& a, const Account& b) {
    ApiResponse ask = Befriend(a, b.id());
    ASSERT_EQ(ask.status, 201) << ask.Describe();
    ApiResponse accept = Befriend(b, a.id());
    ASSERT_EQ(accept.status, 200) << accept.Describe();
  }
};

// ------------------------------------------------------------------- users

TEST_F(UsersFriendsE2eTest, GetMeReturnsTheCallersUserObject) {
  int64_t before = NowMs();
  Account a = New("me");
  ApiResponse r = api_->Get("/users/me", a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.Header("content-type").rfind("application/json", 0), 0u);
  EXPECT_TRUE(IsUserObject(r.json));
  const json::object& o = r.json.as_object();
  EXPECT_EQ(o.at("user_id").as_string(), a.id());
  EXPECT_EQ(o.at("username").as_string(), a.username);
  EXPECT_EQ(o.at("display_name").as_string(), a.username);
  EXPECT_EQ(o.at("avatar_url").as_string(), "");
  // Presence is not wired yet: offline, no last_seen.
  EXPECT_EQ(o.at("online"), json::value(false));
  EXPECT_FALSE(o.contains("last_seen")) << r.body;
  ASSERT_TRUE(o.contains("created_at") && o.at("created_at").is_int64()) << r.body;
  int64_t created = o.at("created_at").as_int64();
  EXPECT_GE(created, before - 60'000) << "created_at is in milliseconds";
  EXPECT_LE(created, NowMs() + 60'000);
  // Nothing secret in a user object.
  EXPECT_EQ(r.body.find("password"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("$argon2"), std::string::npos) << r.body;
}

TEST_F(UsersFriendsE2eTest, UserEndpointsNeedAToken) {
  Account a = New("noauth");
  for (const std::string& path :
       {std::string("/users/me"), "/users/" + a.id(), std::string("/users?prefix=noauth"),
        std::string("/friends"), std::string("/friends/requests"), std::string("/blocks")}) {
    ApiResponse r = api_->Get(path);
    EXPECT_TRUE(IsError(r, 401, "unauthenticated")) << "GET " << path;
  }
  EXPECT_TRUE(IsError(api_->Patch("/users/me", R"({"display_name":"x"})"), 401, "unauthenticated"));
  EXPECT_TRUE(IsError(api_->Post("/friends/" + a.id(), ""), 401, "unauthenticated"));
  EXPECT_TRUE(IsError(api_->Delete("/friends/" + a.id()), 401, "unauthenticated"));
  EXPECT_TRUE(IsError(api_->Post("/blocks/" + a.id(), ""), 401, "unauthenticated"));
  EXPECT_TRUE(IsError(api_->Delete("/blocks/" + a.id()), 401, "unauthenticated"));
  EXPECT_TRUE(IsError(api_->Get("/users/me", "not.a.token"), 401, "unauthenticated"));
}

TEST_F(UsersFriendsE2eTest, PatchMeUpdatesProfileFields) {
  Account a = New("patch");
  ApiResponse r = api_->Patch("/users/me", R"({"display_name":"Ana \u00c1lvarez"})", a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_TRUE(IsUserObject(r.json));
  EXPECT_EQ(r.json.at("display_name").as_string(), "Ana \xc3\x81lvarez");
  EXPECT_EQ(r.json.at("avatar_url").as_string(), "");
  EXPECT_EQ(r.json.at("user_id").as_string(), a.id());

  r = api_->Patch("/users/me", R"({"avatar_url":"https://cdn.example.com/a/b.png?x=1"})",
                  a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  // Fields left out are not changed.
  EXPECT_EQ(r.json.at("display_name").as_string(), "Ana \xc3\x81lvarez");
  EXPECT_EQ(r.json.at("avatar_url").as_string(), "https://cdn.example.com/a/b.png?x=1");

  // Both at once, then an empty patch changes nothing.
  r = api_->Patch("/users/me", R"({"display_name":"Ana","avatar_url":"http://x.example/a"})",
                  a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  r = api_->Patch("/users/me", "{}", a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json.at("display_name").as_string(), "Ana");
  EXPECT_EQ(r.json.at("avatar_url").as_string(), "http://x.example/a");

  // GET sees the change, and so does everyone else.
  ApiResponse me = api_->Get("/users/me", a.token());
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.json.at("display_name").as_string(), "Ana");
  EXPECT_EQ(me.json.at("avatar_url").as_string(), "http://x.example/a");
  Account b = New("patch");
  ApiResponse seen = api_->Get("/users/" + a.id(), b.token());
  ASSERT_EQ(seen.status, 200) << seen.Describe();
  EXPECT_EQ(seen.json.at("display_name").as_string(), "Ana");
  EXPECT_EQ(seen.json.at("avatar_url").as_string(), "http://x.example/a");

  // An empty avatar_url clears it.
  r = api_->Patch("/users/me", R"({"avatar_url":""})", a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json.at("avatar_url").as_string(), "");

  // Limits: 64 characters (not bytes) of display name; 2048 bytes of URL.
  std::string sixty_four;
  for (int i = 0; i < 64; ++i) sixty_four += "\xc3\xa9";
  r = api_->Patch("/users/me", "{\"display_name\":" + JsonString(sixty_four) + "}", a.token());
  EXPECT_EQ(r.status, 200) << "64 two-byte characters: " << r.Describe();
  std::string url = "https://example.com/";
  url += std::string(2048 - url.size(), 'a');
  r = api_->Patch("/users/me", "{\"avatar_url\":" + JsonString(url) + "}", a.token());
  EXPECT_EQ(r.status, 200) << "2048-byte URL: " << r.Describe();
}

TEST_F(UsersFriendsE2eTest, PatchMeRejectsBadValuesAndChangesNothing) {
  Account a = New("patchbad");
  ASSERT_EQ(api_->Patch("/users/me", R"({"display_name":"Keep","avatar_url":"https://k.example/"})",
                        a.token())
                .status,
            200);
  std::string long_url = "https://example.com/";
  long_url += std::string(2049 - long_url.size(), 'a');
  for (const std::string& body : {
           R"({"display_name":")" + std::string(65, 'n') + R"("})",
           std::string(R"({"display_name":"bell\u0007"})"),
           std::string(R"({"display_name":"line\nbreak"})"),
           std::string(R"({"display_name":"nul\u0000"})"),
           std::string(R"({"display_name":5})"),
           std::string(R"({"display_name":["x"]})"),
           std::string(R"({"avatar_url":"ftp://example.com/a.png"})"),
           std::string(R"j({"avatar_url":"javascript:alert(1)"})j"),
           std::string(R"({"avatar_url":"example.com/a.png"})"),
           "{\"avatar_url\":" + JsonString(long_url) + "}",
           std::string(R"({"avatar_url":7})"),
           std::string(R"({"avatar_url":true})"),
           std::string(R"({"display_name":"ok","avatar_url":"data:image/png;base64,AAAA"})"),
           std::string("{"),
           std::string("[]"),
           std::string("\"x\""),
           std::string("null"),
           std::string("{\"display_name\":\"a\xff\"}"),
       }) {
    ApiResponse r = api_->Patch("/users/me", body, a.token());
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << "PATCH " << body;
  }
  ApiResponse me = api_->Get("/users/me", a.token());
  ASSERT_EQ(me.status, 200);
  EXPECT_EQ(me.json.at("display_name").as_string(), "Keep");
  EXPECT_EQ(me.json.at("avatar_url").as_string(), "https://k.example/");
}

TEST_F(UsersFriendsE2eTest, GetUserById) {
  Account a = New("byid");
  Account b = New("byid");
  ApiResponse r = api_->Get("/users/" + b.id(), a.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_TRUE(IsUserObject(r.json));
  EXPECT_EQ(r.json.at("user_id").as_string(), b.id());
  EXPECT_EQ(r.json.at("username").as_string(), b.username);
  EXPECT_EQ(r.json.at("display_name").as_string(), b.username);
  EXPECT_EQ(r.json.at("avatar_url").as_string(), "");
  EXPECT_EQ(r.json.at("online"), json::value(false));
  EXPECT_FALSE(r.json.as_object().contains("last_seen")) << r.body;
  EXPECT_EQ(r.body.find("password"), std::string::npos) << r.body;
  // Oneself by id is fine too.
  ApiResponse self = api_->Get("/users/" + a.id(), a.token());
  ASSERT_EQ(self.status, 200) << self.Describe();
  EXPECT_EQ(self.json.at("username").as_string(), a.username);

  EXPECT_TRUE(IsError(api_->Get(std::string("/users/") + kUnknownId, a.token()), 404, "not_found"));
  ExpectBadPathIds("GET", "/users/", a, {"abc", "12x", "x12", "1.5", "1e3", "0x10", "%20", "-"});
}

TEST_F(UsersFriendsE2eTest, MetricsLabelRoutesByPatternNotById) {
  Account a = New("metric");
  ASSERT_EQ(api_->Get("/users/" + a.id(), a.token()).status, 200);
  ApiResponse m = api_->Call("GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.body.find("route=\"/api/v1/users/" + a.id() + "\""), std::string::npos)
      << "one metric series per user id";
  EXPECT_NE(m.body.find("route=\"/api/v1/auth/login\""), std::string::npos);
}

TEST_F(UsersFriendsE2eTest, PrefixSearchIsOrderedAndPaged) {
  Account caller = New("searcher");
  // A prefix no other test uses; registered out of order.
  const std::string base = UniqueName("srch") + ".";
  const std::vector<std::string> suffixes = {"c", "b0", "e", "a", "d", "b"};
  for (const std::string& s : suffixes) api_->Register(base + s);
  std::vector<std::string> sorted;
  for (const std::string& s : suffixes) sorted.push_back(base + s);
  std::sort(sorted.begin(), sorted.end());  // a, b, b0, c, d, e

  json::object all = Ok(api_->Get("/users?prefix=" + UrlEncode(base), caller.token()));
  ASSERT_TRUE(all.contains("users")) << json::serialize(all);
  EXPECT_EQ(Usernames(all.at("users")), sorted);
  EXPECT_EQ(all.at("has_more"), json::value(false));
  for (const json::value& u : all.at("users").as_array()) {
    EXPECT_TRUE(IsUserObject(u));
    EXPECT_EQ(u.at("online"), json::value(false));
  }

  // Pages of two, following `after`.
  std::vector<std::string> paged;
  std::string after;
  std::vector<bool> more;
  for (int page = 0; page < 5; ++page) {
    std::string q = "/users?prefix=" + UrlEncode(base) + "&limit=2";
    if (!after.empty()) q += "&after=" + UrlEncode(after);
    json::object p = Ok(api_->Get(q, caller.token()));
    if (!p.contains("users")) break;
    auto names = Usernames(p.at("users"));
    EXPECT_LE(names.size(), 2u);
    paged.insert(paged.end(), names.begin(), names.end());
    bool has_more = p.at("has_more").is_bool() && p.at("has_more").as_bool();
    more.push_back(has_more);
    if (!has_more || names.empty()) break;
    after = names.back();
  }
  EXPECT_EQ(paged, sorted);
  EXPECT_EQ(more, (std::vector<bool>{true, true, false})) << "has_more on each of three pages";

  // The prefix is folded to lower case.
  std::string upper = base;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  json::object folded = Ok(api_->Get("/users?prefix=" + UrlEncode(upper), caller.token()));
  EXPECT_EQ(Usernames(folded["users"]), sorted);

  // A longer prefix narrows; one that matches nothing is an empty page.
  json::object narrow = Ok(api_->Get("/users?prefix=" + UrlEncode(base + "b"), caller.token()));
  EXPECT_EQ(Usernames(narrow["users"]), (std::vector<std::string>{base + "b", base + "b0"}));
  json::object none = Ok(api_->Get("/users?prefix=" + UrlEncode(base + "zz"), caller.token()));
  ASSERT_TRUE(none.contains("users"));
  EXPECT_TRUE(none.at("users").is_array() && none.at("users").as_array().empty());
  EXPECT_EQ(none.at("has_more"), json::value(false));
}

TEST_F(UsersFriendsE2eTest, PrefixSearchDefaultLimitIs50) {
  Account caller = New("searcher");
  const std::string base = UniqueName("many") + ".";
  for (int i = 0; i < 51; ++i) {
    api_->Register(base + (i < 10 ? "0" : "") + std::to_string(i));
  }
  json::object first = Ok(api_->Get("/users?prefix=" + UrlEncode(base), caller.token()));
  ASSERT_TRUE(first.contains("users"));
  EXPECT_EQ(first.at("users").as_array().size(), 50u);
  EXPECT_EQ(first.at("has_more"), json::value(true));
  json::object rest = Ok(api_->Get(
      "/users?prefix=" + UrlEncode(base) + "&after=" + UrlEncode(base + "49"), caller.token()));
  EXPECT_EQ(Usernames(rest["users"]), (std::vector<std::string>{base + "50"}));
  EXPECT_EQ(rest["has_more"], json::value(false));
  // The page maximum (200 by default) is allowed.
  EXPECT_EQ(api_->Get("/users?prefix=" + UrlEncode(base) + "&limit=200", caller.token()).status,
            200);
}

TEST_F(UsersFriendsE2eTest, PrefixSearchRejectsBadQueries) {
  Account caller = New("searcher");
  for (const std::string& q :
       {std::string("/users"), std::string("/users?limit=5"), std::string("/users?prefix="),
        "/users?prefix=" + std::string(33, 'a'), std::string("/users?prefix=a%20b"),
        std::string("/users?prefix=a*"), std::string("/users?prefix=%C3%A9"),
        std::string("/users?prefix=al&limit=0"), std::string("/users?prefix=al&limit=201"),
        std::string("/users?prefix=al&limit=-1"), std::string("/users?prefix=al&limit=abc"),
        std::string("/users?prefix=al&limit=")}) {
    EXPECT_TRUE(IsError(api_->Get(q, caller.token()), 400, "invalid_argument")) << q;
  }
  // 32 characters is the longest prefix allowed.
  EXPECT_EQ(api_->Get("/users?prefix=" + std::string(32, 'a'), caller.token()).status, 200);
}

// ----------------------------------------------------------------- friends

TEST_F(UsersFriendsE2eTest, RequestThenAcceptMakesFriends) {
  Account a = New("fa");
  Account b = New("fb");

  ApiResponse ask = Befriend(a, b.id());
  ASSERT_EQ(ask.status, 201) << ask.Describe();
  EXPECT_EQ(ask.json, json::parse(R"({"status":"requested"})")) << ask.body;

  // Pending on both sides, as user objects with a time.
  json::object ra = Requests(a);
  json::object rb = Requests(b);
  EXPECT_EQ(Ids(ra["outgoing"], "user"), std::vector<std::string>{b.id()});
  EXPECT_EQ(Ids(ra["incoming"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(rb["incoming"], "user"), std::vector<std::string>{a.id()});
  EXPECT_EQ(Ids(rb["outgoing"], "user"), std::vector<std::string>{});
  ASSERT_TRUE(rb["incoming"].is_array() && rb["incoming"].as_array().size() == 1)
      << json::serialize(rb);
  const json::value& req = rb["incoming"].as_array()[0];
  EXPECT_TRUE(IsUserObject(req.at("user")));
  EXPECT_EQ(req.at("user").at("username").as_string(), a.username);
  ASSERT_TRUE(req.as_object().contains("ts") && req.at("ts").is_int64()) << json::serialize(req);
  EXPECT_GT(req.at("ts").as_int64(), NowMs() - 600'000) << "ts is in milliseconds";
  // Not friends yet.
  EXPECT_EQ(Ids(Friends(a)["friends"]), std::vector<std::string>{});

  // The same request again is a conflict.
  EXPECT_TRUE(IsError(Befriend(a, b.id()), 409, "already_exists"));

  // b's request back accepts.
  ApiResponse accept = Befriend(b, a.id());
  ASSERT_EQ(accept.status, 200) << accept.Describe();
  EXPECT_EQ(accept.json, json::parse(R"({"status":"friends"})")) << accept.body;

  json::object fa = Friends(a);
  json::object fb = Friends(b);
  EXPECT_EQ(Ids(fa["friends"]), std::vector<std::string>{b.id()});
  EXPECT_EQ(Ids(fb["friends"]), std::vector<std::string>{a.id()});
  EXPECT_EQ(fa["has_more"], json::value(false));
  ASSERT_TRUE(fa["friends"].is_array() && fa["friends"].as_array().size() == 1);
  const json::value& f = fa["friends"].as_array()[0];
  EXPECT_TRUE(IsUserObject(f));
  EXPECT_EQ(f.at("username").as_string(), b.username);
  ASSERT_TRUE(f.as_object().contains("since") && f.at("since").is_int64()) << json::serialize(f);
  EXPECT_GT(f.at("since").as_int64(), NowMs() - 600'000) << "since is in milliseconds";

  // The request was consumed.
  EXPECT_EQ(Ids(Requests(a)["outgoing"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(Requests(b)["incoming"], "user"), std::vector<std::string>{});

  // Already friends: either direction is a conflict.
  EXPECT_TRUE(IsError(Befriend(a, b.id()), 409, "already_exists"));
  EXPECT_TRUE(IsError(Befriend(b, a.id()), 409, "already_exists"));
}

TEST_F(UsersFriendsE2eTest, DeleteEndsAFriendship) {
  Account a = New("end");
  Account b = New("end");
  MakeFriends(a, b);
  ApiResponse del = api_->Delete("/friends/" + b.id(), a.token());
  EXPECT_EQ(del.status, 204) << del.Describe();
  EXPECT_EQ(del.body, "");
  EXPECT_EQ(Ids(Friends(a)["friends"]), std::vector<std::string>{});
  EXPECT_EQ(Ids(Friends(b)["friends"]), std::vector<std::string>{});
  // Nothing left to delete, from either side.
  EXPECT_TRUE(IsError(api_->Delete("/friends/" + b.id(), a.token()), 404, "not_found"));
  EXPECT_TRUE(IsError(api_->Delete("/friends/" + a.id(), b.token()), 404, "not_found"));
  // They can start over.
  EXPECT_EQ(Befriend(b, a.id()).status, 201);
}

TEST_F(UsersFriendsE2eTest, DeleteCancelsOrDeclinesARequest) {
  Account a = New("req");
  Account b = New("req");
  Account c = New("req");

  // a cancels its own request to b.
  ASSERT_EQ(Befriend(a, b.id()).status, 201);
  EXPECT_EQ(api_->Delete("/friends/" + b.id(), a.token()).status, 204);
  EXPECT_EQ(Ids(Requests(a)["outgoing"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(Requests(b)["incoming"], "user"), std::vector<std::string>{});
  EXPECT_TRUE(IsError(api_->Delete("/friends/" + b.id(), a.token()), 404, "not_found"));

  // a declines c's request.
  ASSERT_EQ(Befriend(c, a.id()).status, 201);
  EXPECT_EQ(api_->Delete("/friends/" + c.id(), a.token()).status, 204);
  EXPECT_EQ(Ids(Requests(a)["incoming"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(Requests(c)["outgoing"], "user"), std::vector<std::string>{});
  // A declined request does not linger: c asking again is a new request, and
  // a's post afterwards accepts it.
  EXPECT_EQ(Befriend(c, a.id()).status, 201);
  EXPECT_EQ(Befriend(a, c.id()).status, 200);
  EXPECT_EQ(Ids(Friends(c)["friends"]), std::vector<std::string>{a.id()});
}

TEST_F(UsersFriendsE2eTest, FriendRequestListsHoldBothDirections) {
  Account me = New("lists");
  Account out1 = New("lists");
  Account out2 = New("lists");
  Account in1 = New("lists");
  ASSERT_EQ(Befriend(me, out1.id()).status, 201);
  ASSERT_EQ(Befriend(me, out2.id()).status, 201);
  ASSERT_EQ(Befriend(in1, me.id()).status, 201);
  json::object r = Requests(me);
  auto outgoing = Ids(r["outgoing"], "user");
  std::sort(outgoing.begin(), outgoing.end(), ByNumericId);
  std::vector<std::string> want = {out1.id(), out2.id()};
  std::sort(want.begin(), want.end(), ByNumericId);
  EXPECT_EQ(outgoing, want);
  EXPECT_EQ(Ids(r["incoming"], "user"), std::vector<std::string>{in1.id()});
  for (const char* dir : {"incoming", "outgoing"}) {
    ASSERT_TRUE(r[dir].is_array()) << json::serialize(r);
    for (const json::value& item : r[dir].as_array()) {
      EXPECT_TRUE(IsUserObject(item.at("user")));
      EXPECT_TRUE(item.at("ts").is_int64());
    }
  }
}

TEST_F(UsersFriendsE2eTest, FriendErrors) {
  Account a = New("ferr");
  EXPECT_TRUE(IsError(Befriend(a, a.id()), 400, "invalid_argument")) << "oneself";
  EXPECT_TRUE(IsError(Befriend(a, kUnknownId), 404, "not_found"));
  EXPECT_TRUE(
      IsError(api_->Delete(std::string("/friends/") + kUnknownId, a.token()), 404, "not_found"));
  ExpectBadPathIds("POST", "/friends/", a);
  ExpectBadPathIds("DELETE", "/friends/", a);
}

TEST_F(UsersFriendsE2eTest, FriendListIsOrderedByIdAndPaged) {
  Account a = New("many");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Account f = New("many");
    MakeFriends(f, a);
    ids.push_back(f.id());
  }
  std::sort(ids.begin(), ids.end(), ByNumericId);
  json::object all = Friends(a);
  EXPECT_EQ(Ids(all["friends"]), ids);
  EXPECT_EQ(all["has_more"], json::value(false));

  json::object p1 = Friends(a, "?limit=2");
  EXPECT_EQ(Ids(p1["friends"]), (std::vector<std::string>{ids[0], ids[1]}));
  EXPECT_EQ(p1["has_more"], json::value(true));
  json::object p2 = Friends(a, "?limit=2&after=" + ids[1]);
  EXPECT_EQ(Ids(p2["friends"]), std::vector<std::string>{ids[2]});
  EXPECT_EQ(p2["has_more"], json::value(false));
  for (const char* bad : {"?limit=0", "?limit=201", "?limit=x", "?after=abc"}) {
    EXPECT_TRUE(
        IsError(api_->Get(std::string("/friends") + bad, a.token()), 400, "invalid_argument"))
        << bad;
  }
}

// ------------------------------------------------------------------ blocks

TEST_F(UsersFriendsE2eTest, BlockIs204TwiceAndListed) {
  Account a = New("blk");
  Account b = New("blk");
  ApiResponse r = api_->Post("/blocks/" + b.id(), "", a.token());
  EXPECT_EQ(r.status, 204) << r.Describe();
  EXPECT_EQ(r.body, "");
  r = api_->Post("/blocks/" + b.id(), "", a.token());
  EXPECT_EQ(r.status, 204) << "blocking twice is fine: " << r.Describe();

  json::object list = Blocked(a);
  EXPECT_EQ(Ids(list["blocked"]), std::vector<std::string>{b.id()});
  EXPECT_EQ(list["has_more"], json::value(false));
  ASSERT_TRUE(list["blocked"].is_array() && list["blocked"].as_array().size() == 1);
  const json::value& entry = list["blocked"].as_array()[0];
  EXPECT_TRUE(IsUserObject(entry));
  EXPECT_EQ(entry.at("username").as_string(), b.username);
  ASSERT_TRUE(entry.as_object().contains("since") && entry.at("since").is_int64());
  // Blocks are one-way: b blocks nobody.
  EXPECT_EQ(Ids(Blocked(b)["blocked"]), std::vector<std::string>{});
}

TEST_F(UsersFriendsE2eTest, BlockEndsFriendshipAndPendingRequests) {
  Account a = New("blkf");
  Account friend_ = New("blkf");
  Account asker = New("blkf");
  Account asked = New("blkf");
  MakeFriends(a, friend_);
  ASSERT_EQ(Befriend(asker, a.id()).status, 201);
  ASSERT_EQ(Befriend(a, asked.id()).status, 201);

  for (const Account* target : {&friend_, &asker, &asked}) {
    ASSERT_EQ(api_->Post("/blocks/" + target->id(), "", a.token()).status, 204);
  }
  EXPECT_EQ(Ids(Friends(a)["friends"]), std::vector<std::string>{});
  EXPECT_EQ(Ids(Friends(friend_)["friends"]), std::vector<std::string>{});
  json::object ra = Requests(a);
  EXPECT_EQ(Ids(ra["incoming"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(ra["outgoing"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(Requests(asker)["outgoing"], "user"), std::vector<std::string>{});
  EXPECT_EQ(Ids(Requests(asked)["incoming"], "user"), std::vector<std::string>{});
}

TEST_F(UsersFriendsE2eTest, BlockedUsersCannotBefriend) {
  Account a = New("deny");
  Account b = New("deny");
  ASSERT_EQ(api_->Post("/blocks/" + b.id(), "", a.token()).status, 204);
  // The blocked user cannot ask; nor can the blocker while the block stands.
  EXPECT_TRUE(IsError(Befriend(b, a.id()), 403, "permission_denied"));
  EXPECT_TRUE(IsError(Befriend(a, b.id()), 403, "permission_denied"));
  EXPECT_EQ(Ids(Requests(a)["incoming"], "user"), std::vector<std::string>{});

  // Unblocking: 204, then 404 as nothing is blocked any more.
  ApiResponse un = api_->Delete("/blocks/" + b.id(), a.token());
  EXPECT_EQ(un.status, 204) << un.Describe();
  EXPECT_EQ(un.body, "");
  EXPECT_TRUE(IsError(api_->Delete("/blocks/" + b.id(), a.token()), 404, "not_found"));
  EXPECT_EQ(Ids(Blocked(a)["blocked"]), std::vector<std::string>{});
  // Friend requests work again.
  EXPECT_EQ(Befriend(b, a.id()).status, 201);
  EXPECT_EQ(Befriend(a, b.id()).status, 200);
}

TEST_F(UsersFriendsE2eTest, BlockErrors) {
  Account a = New("berr");
  Account b = New("berr");
  EXPECT_TRUE(IsError(api_->Delete("/blocks/" + b.id(), a.token()), 404, "not_found"))
      << "never blocked";
  EXPECT_TRUE(
      IsError(api_->Post(std::string("/blocks/") + kUnknownId, "", a.token()), 404, "not_found"));
  ExpectBadPathIds("POST", "/blocks/", a);
  ExpectBadPathIds("DELETE", "/blocks/", a);
}

TEST_F(UsersFriendsE2eTest, BlockListIsPaged) {
  Account a = New("bpage");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) {
    Account t = New("bpage");
    ASSERT_EQ(api_->Post("/blocks/" + t.id(), "", a.token()).status, 204);
    ids.push_back(t.id());
  }
  std::sort(ids.begin(), ids.end(), ByNumericId);
  EXPECT_EQ(Ids(Blocked(a)["blocked"]), ids);
  json::object p1 = Blocked(a, "?limit=2");
  EXPECT_EQ(Ids(p1["blocked"]), (std::vector<std::string>{ids[0], ids[1]}));
  EXPECT_EQ(p1["has_more"], json::value(true));
  json::object p2 = Blocked(a, "?limit=2&after=" + ids[1]);
  EXPECT_EQ(Ids(p2["blocked"]), std::vector<std::string>{ids[2]});
  EXPECT_EQ(p2["has_more"], json::value(false));
}

}  // namespace
}  // namespace mpim
