// End-to-end: accounts and tokens over HTTP against the real `mpim` binary
// (docs/protocol.md section 2 "Auth", docs/protocol.md section 2 "Auth"):
// register, login, refresh, logout; token checks; login rate limits; the
// signing key's persistence and rotation across restarts.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "support/api_client.h"
#include "support/cluster_up_process.h"
#include "support/server_process.h"
#include "support/shared_server.h"

namespace mpim {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Account;
using testing::ApiClient;
using testing::ApiResponse;
using testing::FastAuthEnv;
using testing::IsDecimalId;
using testing::IsError;
using testing::JsonString;
using testing::kPassword;
using testing::RunCommand;
using testing::ServerProcess;
using testing::Session;
using testing::UniqueName;

namespace json = boost::json;

// The documented body for both an unknown user and a wrong password.
constexpr std::string_view kBadCredentialsBody =
    R"({"error":{"code":"unauthenticated","message":"invalid username or password"}})";

int64_t NowSeconds() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Permission bits of a file, or -1 if it cannot be stat'ed.
int FileMode(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return static_cast<int>(st.st_mode & 07777);
}

// A data directory that outlives one ServerProcess (for restarts).
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mpim-auth-e2e-XXXXXX").string();
    char* made = ::mkdtemp(tmpl.data());
    if (made) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// SIGTERM and wait for a clean exit.
::testing::AssertionResult Stop(ServerProcess& server) {
  server.Signal(SIGTERM);
  auto code = server.Wait(seconds(10));
  if (!code) return ::testing::AssertionFailure() << "did not exit; logs:\n" << server.Logs();
  if (*code != 0) {
    return ::testing::AssertionFailure() << "exit code " << *code << "; logs:\n" << server.Logs();
  }
  return ::testing::AssertionSuccess();
}

std::string Kid(const std::string& token) {
  auto jwt = testing::DecodeJwt(token);
  if (!jwt || !jwt->header.is_object()) return "";
  const auto* kid = jwt->header.as_object().if_contains("kid");
  return kid && kid->is_string() ? std::string(kid->as_string()) : "";
}

// One server for the tests that need nothing special.
class AuthE2eTest : public testing::SharedServerTest {
 protected:
  ApiResponse Me(const std::string& token) { return api_->Get("/users/me", token); }
};

// ---------------------------------------------------------------- register

TEST_F(AuthE2eTest, RegisterAnswers201WithADecimalUserId) {
  std::string name = UniqueName("reg");
  ApiResponse r = api_->RegisterRaw(name, kPassword);
  ASSERT_EQ(r.status, 201) << r.Describe();
  EXPECT_EQ(r.Header("content-type").rfind("application/json", 0), 0u) << r.Header("content-type");
  ASSERT_TRUE(r.json.is_object()) << r.body;
  EXPECT_EQ(r.json.as_object().size(), 1u) << r.body;
  ASSERT_TRUE(r.json.at("user_id").is_string()) << r.body;
  std::string id(r.json.at("user_id").as_string());
  EXPECT_TRUE(IsDecimalId(id)) << id;

  std::string other = api_->Register(UniqueName("reg"));
  EXPECT_NE(other, id);
  // The id is the one login and GET /users/me report.
  Session s = api_->Login(name);
  EXPECT_EQ(s.user_id, id);
  ApiResponse me = Me(s.access_token);
  ASSERT_EQ(me.status, 200) << me.Describe();
  EXPECT_EQ(me.json.at("user_id").as_string(), id);
  EXPECT_EQ(me.json.at("username").as_string(), name);
}

TEST_F(AuthE2eTest, DuplicateUsernameIs409AlreadyExists) {
  std::string name = UniqueName("dup");
  api_->Register(name);
  ApiResponse again = api_->RegisterRaw(name, "another password");
  EXPECT_TRUE(IsError(again, 409, "already_exists"));
  // The first account is untouched: its password still works, the second does not.
  EXPECT_EQ(api_->LoginRaw(name, kPassword).status, 200);
  EXPECT_EQ(api_->LoginRaw(name, "another password").status, 401);
}

TEST_F(AuthE2eTest, UsernamesOutsideTheProtocolLimitsAre400) {
  const std::string base = UniqueName("bad");
  for (const std::string& bad :
       {std::string(""), std::string("ab"), std::string(33, 'a'), "Upper" + base, base + "X",
        "sp ace" + base, base + "@x", base + "/x", base + "+x", base + "\xc3\xa9", base + "\t",
        base + std::string(1, '\0'), base + "!"}) {
    ApiResponse r = api_->RegisterRaw(bad, kPassword);
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << "username " << JsonString(bad);
  }
  // Upper case is refused, not folded: the lower-case name is still free.
  std::string lower = UniqueName("fold");
  std::string upper = lower;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_TRUE(IsError(api_->RegisterRaw(upper, kPassword), 400, "invalid_argument"));
  EXPECT_EQ(api_->RegisterRaw(lower, kPassword).status, 201);
}

TEST_F(AuthE2eTest, UsernamesAtTheLimitsAreAccepted) {
  // 3 and 32 characters, and every punctuation character the alphabet allows.
  std::string three = "q.9";
  std::string longest = UniqueName("l");
  longest += std::string(32 - longest.size(), 'z');
  std::string punct = UniqueName("p") + "._-0";
  for (const std::string& good : {three, longest, punct}) {
    ApiResponse r = api_->RegisterRaw(good, kPassword);
    EXPECT_EQ(r.status, 201) << good << ": " << r.Describe();
    EXPECT_EQ(api_->LoginRaw(good, kPassword).status, 200) << good;
  }
}

TEST_F(AuthE2eTest, PasswordLengthIsCountedInBytes) {
  struct Case {
    std::string password;
    bool ok;
  };
  const std::string e_acute = "\xc3\xa9";  // two bytes
  for (const Case& c : {Case{"", false}, Case{"1234567", false}, Case{"12345678", true},
                        Case{std::string(128, 'p'), true}, Case{std::string(129, 'p'), false},
                        // 4 characters, 8 bytes: long enough.
                        Case{e_acute + e_acute + e_acute + e_acute, true},
                        // 4 characters, 7 bytes: too short.
                        Case{e_acute + e_acute + e_acute + "x", false},
                        // 64 characters, 128 bytes; 65 characters, 130 bytes.
                        Case{[&] {
                               std::string s;
                               for (int i = 0; i < 64; ++i) s += e_acute;
                               return s;
                             }(),
                             true},
                        Case{[&] {
                               std::string s;
                               for (int i = 0; i < 65; ++i) s += e_acute;
                               return s;
                             }(),
                             false}}) {
    std::string name = UniqueName("pw");
    ApiResponse r = api_->RegisterRaw(name, c.password);
    if (c.ok) {
      EXPECT_EQ(r.status, 201) << c.password.size() << " bytes: " << r.Describe();
      EXPECT_EQ(api_->LoginRaw(name, c.password).status, 200) << c.password.size() << " bytes";
    } else {
      EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << c.password.size() << " bytes";
      // Nothing was created.
      EXPECT_EQ(api_->RegisterRaw(name, kPassword).status, 201) << name;
    }
  }
}

TEST_F(AuthE2eTest, DisplayNameDefaultsToTheUsernameAndIsValidated) {
  std::string plain = UniqueName("dn");
  Account a = api_->NewAccount(plain);
  ApiResponse me = Me(a.token());
  ASSERT_EQ(me.status, 200) << me.Describe();
  EXPECT_EQ(me.json.at("display_name").as_string(), plain);

  std::string named = UniqueName("dn");
  ASSERT_EQ(api_->RegisterRaw(named, kPassword, "Ana Lopes \xe2\x9c\x93").status, 201);
  Session s = api_->Login(named);
  me = Me(s.access_token);
  ASSERT_EQ(me.status, 200) << me.Describe();
  EXPECT_EQ(me.json.at("display_name").as_string(), "Ana Lopes \xe2\x9c\x93");

  std::string max_len(64, 'd');
  EXPECT_EQ(api_->RegisterRaw(UniqueName("dn"), kPassword, max_len).status, 201);
  for (const std::string& bad :
       {std::string(65, 'd'), std::string("tab\there"), std::string("nl\nhere"),
        std::string("bell\x07"), std::string("nul") + std::string(1, '\0')}) {
    EXPECT_TRUE(
        IsError(api_->RegisterRaw(UniqueName("dn"), kPassword, bad), 400, "invalid_argument"))
        << JsonString(bad);
  }
  ApiResponse wrong_type =
      api_->Post("/auth/register", R"({"username":")" + UniqueName("dn") + R"(","password":")" +
                                       std::string(kPassword) + R"(","display_name":5})");
  EXPECT_TRUE(IsError(wrong_type, 400, "invalid_argument"));
}

TEST_F(AuthE2eTest, UnknownFieldsAreIgnored) {
  std::string name = UniqueName("unk");
  ApiResponse r = api_->Post("/auth/register", R"({"username":")" + name + R"(","password":")" +
                                                   std::string(kPassword) +
                                                   R"(","shoe_size":43,"extra":{"a":[1]}})");
  EXPECT_EQ(r.status, 201) << r.Describe();
  ApiResponse login = api_->Post("/auth/login", R"({"username":")" + name + R"(","password":")" +
                                                    std::string(kPassword) +
                                                    R"(","device":"phone","remember":true})");
  EXPECT_EQ(login.status, 200) << login.Describe();
}

// Bodies no endpoint may accept, each with the field a message must name
// ("" when the body as a whole is wrong).
struct BadBody {
  std::string body;
  std::string field;
};

void ExpectAllRejected(ApiClient& api, const std::string& path,
                       const std::vector<BadBody>& bodies) {
  for (const BadBody& b : bodies) {
    ApiResponse r = api.Post(path, b.body);
    EXPECT_TRUE(IsError(r, 400, "invalid_argument")) << path << " " << JsonString(b.body);
    if (!b.field.empty() && r.status == 400) {
      std::string message = r.json.at("error").at("message").is_string()
                                ? std::string(r.json.at("error").at("message").as_string())
                                : "";
      EXPECT_NE(message.find(b.field), std::string::npos)
          << path << " " << b.body << ": the message does not name " << b.field << ": " << r.body;
    }
  }
}

std::vector<BadBody> NotJsonObjects() {
  return {{"", ""},
          {"{", ""},
          {"{\"username\":", ""},
          {"[]", ""},
          {"\"text\"", ""},
          {"null", ""},
          {"42", ""},
          {"true", ""},
          {"{} {}", ""},
          {"not json", ""},
          {"{'a':1}", ""},
          // Invalid UTF-8 inside a string.
          {"{\"username\":\"a\xff\xfe"
           "b\",\"password\":\"whatever1\"}",
           ""}};
}

TEST_F(AuthE2eTest, MalformedRegisterBodiesAre400) {
  const std::string pw = JsonString(kPassword);
  const std::string name = UniqueName("malreg");
  const std::string user = JsonString(name);
  std::vector<BadBody> bodies = NotJsonObjects();
  std::vector<BadBody> fields = {
      {"{}", "username"},
      {R"({"password":)" + pw + "}", "username"},
      {R"({"username":)" + user + "}", "password"},
      {R"({"username":1,"password":)" + pw + "}", "username"},
      {R"({"username":null,"password":)" + pw + "}", "username"},
      {R"({"username":["a"],"password":)" + pw + "}", "username"},
      {R"({"username":)" + user + R"(,"password":12345678})", "password"},
      {R"({"username":)" + user + R"(,"password":{"p":1}})", "password"},
      {R"({"username":)" + user + R"(,"password":)" + pw + R"(,"display_name":[]})",
       "display_name"},
  };
  bodies.insert(bodies.end(), fields.begin(), fields.end());
  ExpectAllRejected(*api_, "/auth/register", bodies);
  // None of them created the account.
  EXPECT_EQ(api_->RegisterRaw(name, kPassword).status, 201);
}

TEST_F(AuthE2eTest, MalformedLoginAndRefreshBodiesAre400) {
  std::string name = UniqueName("mal");
  api_->Register(name);
  std::string user = JsonString(name);
  std::vector<BadBody> login = NotJsonObjects();
  std::vector<BadBody> login_fields = {
      {"{}", "username"},
      {R"({"password":"whatever1"})", "username"},
      {R"({"username":)" + user + "}", "password"},
      {R"({"username":7,"password":"whatever1"})", "username"},
      {R"({"username":)" + user + R"(,"password":false})", "password"},
      {R"({"username":)" + user + R"(,"password":)" + JsonString(kPassword) + R"(,"device":1})",
       "device"},
      {R"({"username":)" + user + R"(,"password":)" + JsonString(kPassword) + R"(,"device":")" +
           std::string(65, 'd') + R"("})",
       "device"},
  };
  login.insert(login.end(), login_fields.begin(), login_fields.end());
  ExpectAllRejected(*api_, "/auth/login", login);

  std::vector<BadBody> refresh = NotJsonObjects();
  std::vector<BadBody> refresh_fields = {
      {"{}", "refresh_token"},
      {R"({"refresh_token":1})", "refresh_token"},
      {R"({"refresh_token":null})", "refresh_token"},
      {R"({"refresh_token":["x"]})", "refresh_token"},
  };
  refresh.insert(refresh.end(), refresh_fields.begin(), refresh_fields.end());
  ExpectAllRejected(*api_, "/auth/refresh", refresh);

  // A device label of 64 characters is fine.
  ApiResponse ok = api_->Post("/auth/login", R"({"username":)" + user + R"(,"password":)" +
                                                 JsonString(kPassword) + R"(,"device":")" +
                                                 std::string(64, 'd') + R"("})");
  EXPECT_EQ(ok.status, 200) << ok.Describe();
}

// ------------------------------------------------------------------- login

TEST_F(AuthE2eTest, LoginAnswersEveryDocumentedField) {
  std::string name = UniqueName("login");
  std::string id = api_->Register(name);
  int64_t before = NowSeconds();
  ApiResponse r = api_->LoginRaw(name, kPassword);
  int64_t after = NowSeconds();
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.Header("content-type").rfind("application/json", 0), 0u);
  ASSERT_TRUE(r.json.is_object()) << r.body;
  const json::object& o = r.json.as_object();
  EXPECT_EQ(o.size(), 5u) << r.body;
  ASSERT_TRUE(o.contains("user_id") && o.at("user_id").is_string()) << r.body;
  ASSERT_TRUE(o.contains("session_id") && o.at("session_id").is_string()) << r.body;
  ASSERT_TRUE(o.contains("access_token") && o.at("access_token").is_string()) << r.body;
  ASSERT_TRUE(o.contains("refresh_token") && o.at("refresh_token").is_string()) << r.body;
  ASSERT_TRUE(o.contains("expires_in") && o.at("expires_in").is_int64()) << r.body;
  std::string sid(o.at("session_id").as_string());
  EXPECT_EQ(o.at("user_id").as_string(), id);
  EXPECT_TRUE(IsDecimalId(sid)) << sid;
  EXPECT_EQ(o.at("expires_in").as_int64(), 900) << "the default access lifetime is 15 min";

  // The refresh token: <session_id>.<43 base64url characters> (256 bits).
  std::string refresh(o.at("refresh_token").as_string());
  ASSERT_EQ(refresh.rfind(sid + ".", 0), 0u) << refresh;
  std::string secret = refresh.substr(sid.size() + 1);
  EXPECT_EQ(secret.size(), 43u) << refresh;
  auto raw = testing::Base64UrlDecode(secret);
  ASSERT_TRUE(raw.has_value()) << refresh;
  EXPECT_EQ(raw->size(), 32u);

  // The access token: an HS256 JWT with kid, sub, sid, iat, exp.
  std::string access(o.at("access_token").as_string());
  auto jwt = testing::DecodeJwt(access);
  ASSERT_TRUE(jwt.has_value()) << access;
  ASSERT_TRUE(jwt->header.is_object()) << access;
  EXPECT_EQ(jwt->header.at("alg"), "HS256");
  ASSERT_TRUE(jwt->header.as_object().contains("kid")) << json::serialize(jwt->header);
  ASSERT_TRUE(jwt->header.at("kid").is_string());
  EXPECT_FALSE(jwt->header.at("kid").as_string().empty());
  EXPECT_EQ(jwt->signature.size(), 32u) << "an HMAC-SHA256 is 32 bytes";
  ASSERT_TRUE(jwt->payload.is_object()) << access;
  const json::object& claims = jwt->payload.as_object();
  ASSERT_TRUE(claims.contains("sub") && claims.at("sub").is_string()) << json::serialize(claims);
  ASSERT_TRUE(claims.contains("sid") && claims.at("sid").is_string()) << json::serialize(claims);
  ASSERT_TRUE(claims.contains("iat") && claims.at("iat").is_int64()) << json::serialize(claims);
  ASSERT_TRUE(claims.contains("exp") && claims.at("exp").is_int64()) << json::serialize(claims);
  EXPECT_EQ(claims.at("sub").as_string(), id);
  EXPECT_EQ(claims.at("sid").as_string(), sid);
  int64_t iat = claims.at("iat").as_int64();
  EXPECT_GE(iat, before - 5);
  EXPECT_LE(iat, after + 5);
  EXPECT_EQ(claims.at("exp").as_int64() - iat, 900);

  // A second login is a second session with its own tokens.
  Session second = api_->Login(name);
  EXPECT_EQ(second.user_id, id);
  EXPECT_NE(second.session_id, sid);
  EXPECT_NE(second.refresh_token, refresh);
  EXPECT_NE(second.access_token, access);
  EXPECT_EQ(Me(access).status, 200);
  EXPECT_EQ(Me(second.access_token).status, 200);
}

TEST_F(AuthE2eTest, WrongPasswordAndUnknownUserGetTheSame401Body) {
  std::string name = UniqueName("cred");
  api_->Register(name);
  ApiResponse wrong = api_->LoginRaw(name, "not the password");
  ApiResponse unknown = api_->LoginRaw(UniqueName("nobody"), kPassword);
  ApiResponse almost = api_->LoginRaw(name, std::string(kPassword) + " ");
  EXPECT_TRUE(IsError(wrong, 401, "unauthenticated"));
  EXPECT_TRUE(IsError(unknown, 401, "unauthenticated"));
  EXPECT_EQ(wrong.body, unknown.body) << "the answers tell which usernames exist";
  EXPECT_EQ(almost.body, wrong.body);
  EXPECT_EQ(json::parse(wrong.body), json::parse(kBadCredentialsBody)) << wrong.body;
  EXPECT_EQ(wrong.Header("content-type"), unknown.Header("content-type"));
  // Still fine with the right password afterwards.
  EXPECT_EQ(api_->LoginRaw(name, kPassword).status, 200);
}

// ------------------------------------------------------------------ tokens

::testing::AssertionResult IsTokenRejected(const ApiResponse& r) {
  auto e = IsError(r, 401, "unauthenticated");
  if (!e) return e;
  if (r.Header("www-authenticate").rfind("Bearer", 0) != 0) {
    return ::testing::AssertionFailure()
           << "no WWW-Authenticate: Bearer header (got '" << r.Header("www-authenticate") << "')";
  }
  return ::testing::AssertionSuccess();
}

// After a revocation by a refresh call: the gateway that carried the call
// refuses the session's access tokens at once, every other gateway once the
// bus brings the revocation (docs/cluster.md). Behind the edge a refresh
// call (no access token: no user to place it by) and a call with an access
// token may reach different gateways, so there the refusal is awaited, for
// at most 2 s.
::testing::AssertionResult IsTokenRejectedAfterRevocation(
    const std::function<ApiResponse()>& call) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (;;) {
    ::testing::AssertionResult r = IsTokenRejected(call());
    if (r || !testing::EdgeTarget() || std::chrono::steady_clock::now() >= until) return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

TEST_F(AuthE2eTest, MissingOrMalformedAuthorizationIs401) {
  Account a = api_->NewAccount(UniqueName("tok"));
  ASSERT_EQ(Me(a.token()).status, 200);

  EXPECT_TRUE(IsTokenRejected(api_->Call("GET", "/api/v1/users/me"))) << "no header";
  for (const std::string& value :
       {std::string("Basic dXNlcjpwYXNzd29yZA=="), std::string("Bearer"), std::string("Bearer "),
        std::string("Bearer garbage"), std::string("Bearer a.b.c"), std::string("Bearer ..."),
        std::string("Bearer !!!.???.###"), "Token " + a.token(), a.token(),
        "Bearer " + a.token() + ".extra", "Bearer " + a.token().substr(0, a.token().size() / 2),
        "Bearer " + a.session.refresh_token, "Bearer " + a.token() + " " + a.token()}) {
    ApiResponse r = api_->Call("GET", "/api/v1/users/me", "", "", {{"Authorization", value}});
    EXPECT_TRUE(IsTokenRejected(r)) << "Authorization: " << value;
  }
  // The good token still works: nothing above disturbed it.
  EXPECT_EQ(Me(a.token()).status, 200);
}

TEST_F(AuthE2eTest, ForgedTokensAre401) {
  Account a = api_->NewAccount(UniqueName("forge"));
  Account b = api_->NewAccount(UniqueName("forge"));
  auto jwt = testing::DecodeJwt(a.token());
  ASSERT_TRUE(jwt.has_value()) << a.token();
  std::string header = json::serialize(jwt->header);
  std::string payload = json::serialize(jwt->payload);
  std::string kid(jwt->header.at("kid").as_string());
  const std::string other_key(32, '\x5a');

  // Same header and claims, signed with another key.
  std::string wrong_key = testing::SignJwt(header, payload, other_key);
  // The claims changed to another user, with the original signature.
  json::object stolen = jwt->payload.as_object();
  stolen["sub"] = b.id();
  std::string tampered = testing::Base64UrlEncode(header) + "." +
                         testing::Base64UrlEncode(json::serialize(stolen)) + "." +
                         testing::Base64UrlEncode(jwt->signature);
  // One signature byte flipped.
  std::string flipped_sig = jwt->signature;
  flipped_sig[0] = static_cast<char>(flipped_sig[0] ^ 0x01);
  std::string flipped = jwt->signing_input + "." + testing::Base64UrlEncode(flipped_sig);
  // alg "none" with no signature.
  json::object none_header = jwt->header.as_object();
  none_header["alg"] = "none";
  std::string alg_none = testing::Base64UrlEncode(json::serialize(none_header)) + "." +
                         testing::Base64UrlEncode(payload) + ".";
  // An unknown key id.
  json::object unknown_kid = jwt->header.as_object();
  unknown_kid["kid"] = kid + "-unknown";
  std::string bad_kid = testing::SignJwt(json::serialize(unknown_kid), payload, other_key);
  std::string bad_kid_orig_sig = testing::Base64UrlEncode(json::serialize(unknown_kid)) + "." +
                                 testing::Base64UrlEncode(payload) + "." +
                                 testing::Base64UrlEncode(jwt->signature);
  // No signature part at all.
  std::string unsigned_token = jwt->signing_input + ".";

  for (const std::string& token :
       {wrong_key, tampered, flipped, alg_none, bad_kid, bad_kid_orig_sig, unsigned_token}) {
    EXPECT_TRUE(IsTokenRejected(Me(token))) << token;
  }
  // The forged "b" token must not have acted as b either.
  EXPECT_EQ(Me(a.token()).status, 200);
  EXPECT_EQ(Me(b.token()).status, 200);
}

TEST_F(AuthE2eTest, LogoutIs204AndRevokesTheSessionAtOnce) {
  std::string name = UniqueName("out");
  api_->Register(name);
  Session s1 = api_->Login(name);
  Session s2 = api_->Login(name);
  ASSERT_EQ(Me(s1.access_token).status, 200);

  ApiResponse out = api_->Post("/auth/logout", "", s1.access_token);
  EXPECT_EQ(out.status, 204) << out.Describe();
  EXPECT_EQ(out.body, "");
  // No delay: the very next request with that access token fails.
  EXPECT_TRUE(IsTokenRejected(Me(s1.access_token)));
  EXPECT_TRUE(IsTokenRejected(api_->Get("/friends", s1.access_token)));
  // The session's refresh token is dead too.
  EXPECT_TRUE(IsError(api_->RefreshRaw(s1.refresh_token), 401, "unauthenticated"));
  // Logging out again with the revoked token is itself unauthenticated.
  EXPECT_TRUE(IsTokenRejected(api_->Post("/auth/logout", "", s1.access_token)));
  // The user's other session is unaffected.
  EXPECT_EQ(Me(s2.access_token).status, 200);
  ApiResponse refreshed = api_->RefreshRaw(s2.refresh_token);
  EXPECT_EQ(refreshed.status, 200) << refreshed.Describe();
}

TEST_F(AuthE2eTest, LogoutWithoutAValidTokenIs401) {
  EXPECT_TRUE(IsTokenRejected(api_->Call("POST", "/api/v1/auth/logout")));
  EXPECT_TRUE(IsTokenRejected(api_->Post("/auth/logout", "", "not.a.token")));
}

// ----------------------------------------------------------------- refresh

json::object RefreshOk(ApiClient& api, const std::string& refresh_token) {
  ApiResponse r = api.RefreshRaw(refresh_token);
  EXPECT_EQ(r.status, 200) << r.Describe();
  if (r.status != 200 || !r.json.is_object()) return {};
  const json::object& o = r.json.as_object();
  EXPECT_EQ(o.size(), 3u) << r.body;
  EXPECT_TRUE(o.contains("access_token") && o.at("access_token").is_string()) << r.body;
  EXPECT_TRUE(o.contains("refresh_token") && o.at("refresh_token").is_string()) << r.body;
  EXPECT_TRUE(o.contains("expires_in") && o.at("expires_in").is_int64()) << r.body;
  return o;
}

std::string Str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "";
}

TEST_F(AuthE2eTest, RefreshRotatesTokens) {
  std::string name = UniqueName("rot");
  api_->Register(name);
  Session s = api_->Login(name);

  json::object first = RefreshOk(*api_, s.refresh_token);
  std::string access1 = Str(first, "access_token");
  std::string refresh1 = Str(first, "refresh_token");
  ASSERT_FALSE(access1.empty());
  ASSERT_FALSE(refresh1.empty());
  EXPECT_EQ(first.at("expires_in").as_int64(), 900);
  EXPECT_NE(refresh1, s.refresh_token) << "refresh tokens rotate on every use";
  EXPECT_EQ(refresh1.rfind(s.session_id + ".", 0), 0u) << "same session: " << refresh1;

  // The new access token is for the same user and session.
  auto jwt = testing::DecodeJwt(access1);
  ASSERT_TRUE(jwt.has_value());
  EXPECT_EQ(jwt->payload.at("sub").as_string(), s.user_id);
  EXPECT_EQ(jwt->payload.at("sid").as_string(), s.session_id);
  ApiResponse me = Me(access1);
  ASSERT_EQ(me.status, 200) << me.Describe();
  EXPECT_EQ(me.json.at("user_id").as_string(), s.user_id);
  // The old access token stays valid until it expires.
  EXPECT_EQ(Me(s.access_token).status, 200);

  // The new refresh token works, and rotates again.
  json::object second = RefreshOk(*api_, refresh1);
  std::string refresh2 = Str(second, "refresh_token");
  EXPECT_NE(refresh2, refresh1);
  EXPECT_NE(refresh2, s.refresh_token);
  EXPECT_EQ(Me(Str(second, "access_token")).status, 200);
}

TEST_F(AuthE2eTest, ReusedRefreshTokenRevokesTheWholeSession) {
  std::string name = UniqueName("theft");
  api_->Register(name);
  Session s = api_->Login(name);
  Session other = api_->Login(name);

  json::object first = RefreshOk(*api_, s.refresh_token);
  std::string newest_access = Str(first, "access_token");
  std::string newest_refresh = Str(first, "refresh_token");
  ASSERT_EQ(Me(newest_access).status, 200);

  // The original refresh token was rotated away: presenting it is theft.
  ApiResponse reuse = api_->RefreshRaw(s.refresh_token);
  EXPECT_TRUE(IsError(reuse, 401, "unauthenticated"));

  // Every token of that session is dead now, the newest ones included.
  EXPECT_TRUE(IsTokenRejectedAfterRevocation([&] { return Me(newest_access); }));
  EXPECT_TRUE(IsTokenRejectedAfterRevocation([&] { return Me(s.access_token); }));
  EXPECT_TRUE(IsError(api_->RefreshRaw(newest_refresh), 401, "unauthenticated"));

  // The same user's other session is untouched.
  EXPECT_EQ(Me(other.access_token).status, 200);
  json::object rotated = RefreshOk(*api_, other.refresh_token);
  EXPECT_EQ(Me(Str(rotated, "access_token")).status, 200);
  // And the user can log in again.
  Session again = api_->Login(name);
  EXPECT_EQ(Me(again.access_token).status, 200);
}

// Any refresh token used before counts, not only the one just rotated away.
TEST_F(AuthE2eTest, ReusingAnOlderRefreshTokenAlsoRevokesTheSession) {
  std::string name = UniqueName("theft");
  api_->Register(name);
  Session s = api_->Login(name);

  json::object first = RefreshOk(*api_, s.refresh_token);
  json::object second = RefreshOk(*api_, Str(first, "refresh_token"));
  json::object third = RefreshOk(*api_, Str(second, "refresh_token"));
  std::string newest_access = Str(third, "access_token");
  std::string newest_refresh = Str(third, "refresh_token");
  ASSERT_EQ(Me(newest_access).status, 200);

  // Three rotations back.
  EXPECT_TRUE(IsError(api_->RefreshRaw(s.refresh_token), 401, "unauthenticated"));
  EXPECT_TRUE(IsTokenRejectedAfterRevocation([&] { return Me(newest_access); }));
  EXPECT_TRUE(IsTokenRejectedAfterRevocation([&] { return Me(Str(first, "access_token")); }));
  EXPECT_TRUE(IsError(api_->RefreshRaw(newest_refresh), 401, "unauthenticated"));
}

TEST_F(AuthE2eTest, UnknownRefreshTokensAre401) {
  Account a = api_->NewAccount(UniqueName("rt"));
  std::string fake_secret = testing::Base64UrlEncode(std::string(32, '\x11'));
  for (const std::string& token :
       {std::string(""), std::string("garbage"), a.session.session_id + "." + fake_secret,
        "999999999." + fake_secret, a.session.session_id + ".", a.token(),
        a.session.refresh_token + "x", a.session.refresh_token.substr(0, 20)}) {
    EXPECT_TRUE(IsError(api_->RefreshRaw(token), 401, "unauthenticated")) << JsonString(token);
  }
  // The real one still works (none of the above counted as reuse).
  RefreshOk(*api_, a.session.refresh_token);
}

// Runs `n` copies of `call(i)` at once, each on its own connection; returns
// the statuses.
template <typename Call>
std::vector<int> RunConcurrently(uint16_t port, int n, Call call) {
  std::vector<int> statuses(static_cast<size_t>(n));
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      ApiClient client(port);
      statuses[static_cast<size_t>(i)] = call(client, i).status;
    });
  }
  for (auto& t : threads) t.join();
  return statuses;
}

TEST_F(AuthE2eTest, ConcurrentRegistrationsOfOneNameCreateOneAccount) {
  std::string name = UniqueName("race");
  auto statuses = RunConcurrently(port(), 8, [&](ApiClient& c, int i) {
    return c.RegisterRaw(name, "password number " + std::to_string(i));
  });
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 201), 1);
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 409), 7);
}

TEST_F(AuthE2eTest, ConcurrentRefreshesOfOneTokenSucceedOnce) {
  std::string name = UniqueName("race");
  api_->Register(name);
  Session s = api_->Login(name);
  auto statuses =
      RunConcurrently(port(), 6, [&](ApiClient& c, int) { return c.RefreshRaw(s.refresh_token); });
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 200), 1) << "refresh tokens work once";
  EXPECT_EQ(std::count(statuses.begin(), statuses.end(), 401), 5);
}

TEST_F(AuthE2eTest, SecretsAreNeverLogged) {
  const std::string password = "Zq8-unique-password-" + UniqueName("s");
  std::string name = UniqueName("secret");
  api_->Register(name, password);
  Session s = api_->Login(name, password);
  api_->LoginRaw(name, password + "-wrong");
  json::object r = RefreshOk(*api_, s.refresh_token);
  Me(Str(r, "access_token"));
  api_->Post("/auth/logout", "", Str(r, "access_token"));
  std::string logs = Logs();
  for (const std::string& secret : {password, s.access_token, s.refresh_token,
                                    Str(r, "access_token"), Str(r, "refresh_token")}) {
    ASSERT_FALSE(secret.empty());
    EXPECT_EQ(logs.find(secret), std::string::npos) << "a secret is in the log: " << secret;
  }
  // Not even the refresh token's secret half.
  std::string tail = s.refresh_token.substr(s.refresh_token.find('.') + 1);
  EXPECT_EQ(logs.find(tail), std::string::npos);
}

// --------------------------------------------------- dedicated-server tests

std::vector<std::pair<std::string, std::string>> Env(
    std::vector<std::pair<std::string, std::string>> overrides) {
  auto env = FastAuthEnv();
  for (auto& [k, v] : overrides) {
    bool replaced = false;
    for (auto& e : env) {
      if (e.first == k) {
        e.second = v;
        replaced = true;
      }
    }
    if (!replaced) env.emplace_back(k, v);
  }
  return env;
}

::testing::AssertionResult IsRateLimited(const ApiResponse& r) {
  auto e = IsError(r, 429, "rate_limited");
  if (!e) return e;
  int64_t ms = r.json.at("error").at("retry_after_ms").as_int64();
  if (ms <= 0 || ms > 60000) {
    return ::testing::AssertionFailure() << "retry_after_ms " << ms << " outside (0, 60000]";
  }
  std::string header = r.Header("retry-after");
  if (header.empty() || !IsDecimalId(header)) {
    return ::testing::AssertionFailure() << "Retry-After is '" << header << "'";
  }
  if (std::stoll(header) != (ms + 999) / 1000) {
    return ::testing::AssertionFailure()
           << "Retry-After " << header << " is not retry_after_ms " << ms << " in whole seconds";
  }
  return ::testing::AssertionSuccess();
}

TEST(AuthRateLimitE2eTest, LoginFloodOnOneUsernameIs429) {
  ServerProcess server({.env = Env({{"MPIM_AUTH_LOGIN_PER_MIN_USER", "3"}})});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  std::string victim = UniqueName("victim");
  std::string bystander = UniqueName("bystander");
  api.Register(victim);
  api.Register(bystander);

  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(
        IsError(api.LoginRaw(victim, "guess number " + std::to_string(i)), 401, "unauthenticated"))
        << "attempt " << i;
  }
  // Over the limit: refused even with the right password.
  EXPECT_TRUE(IsRateLimited(api.LoginRaw(victim, kPassword)));
  EXPECT_TRUE(IsRateLimited(api.LoginRaw(victim, "guess again")));
  // The limit is per username: another account on the same address logs in.
  ApiResponse other = api.LoginRaw(bystander, kPassword);
  EXPECT_EQ(other.status, 200) << other.Describe();
}

TEST(AuthRateLimitE2eTest, LoginFloodFromOneAddressIs429) {
  ServerProcess server({.env = Env({{"MPIM_AUTH_LOGIN_PER_MIN_ADDRESS", "4"}})});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  std::string name = UniqueName("addr");
  api.Register(name);

  // Four attempts on four different usernames: the per-user limit is not hit.
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(IsError(api.LoginRaw(UniqueName("spray"), kPassword), 401, "unauthenticated"))
        << "attempt " << i;
  }
  EXPECT_TRUE(IsRateLimited(api.LoginRaw(name, kPassword)));
  EXPECT_TRUE(IsRateLimited(api.LoginRaw(UniqueName("spray"), kPassword)));
  // The address is the peer's: headers a client writes itself do not reset it.
  for (const char* header : {"X-Forwarded-For", "X-Real-IP", "Forwarded"}) {
    std::string value = std::string(header) == "Forwarded" ? "for=203.0.113.9" : "203.0.113.9";
    ApiResponse r = api.Call(
        "POST", "/api/v1/auth/login",
        R"({"username":)" + JsonString(name) + R"(,"password":)" + JsonString(kPassword) + "}", "",
        {{header, value}});
    EXPECT_TRUE(IsRateLimited(r)) << header << ": " << value;
  }
}

TEST(AuthExpiryE2eTest, ExpiredAccessTokenIs401AndRefreshStillWorks) {
  // A lifetime of 2 s rather than 1: with whole-second iat/exp a 1 s token
  // may already be expired by the first request.
  ServerProcess server({.env = Env({{"MPIM_AUTH_ACCESS_TTL_S", "2"}})});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  std::string name = UniqueName("exp");
  api.Register(name);
  Session s = api.Login(name);
  EXPECT_EQ(s.expires_in, 2);
  auto jwt = testing::DecodeJwt(s.access_token);
  ASSERT_TRUE(jwt.has_value());
  EXPECT_EQ(jwt->payload.at("exp").as_int64() - jwt->payload.at("iat").as_int64(), 2);
  ASSERT_EQ(api.Get("/users/me", s.access_token).status, 200);

  // Poll until the token stops working; it must within a few seconds.
  auto deadline = std::chrono::steady_clock::now() + seconds(8);
  ApiResponse r;
  while (std::chrono::steady_clock::now() < deadline) {
    r = api.Get("/users/me", s.access_token);
    if (r.status != 200) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
  EXPECT_TRUE(IsTokenRejected(r)) << "the access token never expired";
  EXPECT_LE(NowSeconds(), jwt->payload.at("exp").as_int64() + 3) << "expired late";

  // The session lives on: refresh gives a working access token.
  json::object fresh = RefreshOk(api, s.refresh_token);
  EXPECT_EQ(fresh.at("expires_in").as_int64(), 2);
  EXPECT_EQ(api.Get("/users/me", Str(fresh, "access_token")).status, 200);
}

TEST(AuthKeyE2eTest, KeyFileIsPrivateAndTokensSurviveARestart) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto key_file = dir.path() / "auth_keys.json";
  std::string name = UniqueName("restart");
  Session s;
  Session logged_out;
  std::string key_bytes;
  {
    ServerProcess first({.env = FastAuthEnv(), .data_dir = dir.path()});
    ASSERT_TRUE(first.Start()) << first.error();
    ApiClient api(first.port());
    api.Register(name);
    s = api.Login(name);
    logged_out = api.Login(name);
    ASSERT_EQ(api.Post("/auth/logout", "", logged_out.access_token).status, 204);
    ASSERT_TRUE(std::filesystem::exists(key_file)) << key_file;
    EXPECT_EQ(FileMode(key_file), 0600) << std::oct << FileMode(key_file);
    key_bytes = ReadFile(key_file);
    ASSERT_TRUE(Stop(first));
  }
  ServerProcess second({.env = FastAuthEnv(), .data_dir = dir.path()});
  ASSERT_TRUE(second.Start()) << second.error();
  ApiClient api(second.port());
  // The key was loaded, not regenerated.
  EXPECT_EQ(ReadFile(key_file), key_bytes);
  EXPECT_EQ(FileMode(key_file), 0600) << std::oct << FileMode(key_file);
  ApiResponse me = api.Get("/users/me", s.access_token);
  EXPECT_EQ(me.status, 200) << me.Describe();
  Session again = api.Login(name);
  EXPECT_EQ(Kid(again.access_token), Kid(s.access_token));
  // The session and its refresh token survived too.
  json::object refreshed = RefreshOk(api, s.refresh_token);
  EXPECT_EQ(api.Get("/users/me", Str(refreshed, "access_token")).status, 200);
  // So did the revocation: a session logged out before the restart stays out.
  EXPECT_TRUE(IsTokenRejected(api.Get("/users/me", logged_out.access_token)));
  EXPECT_TRUE(IsError(api.RefreshRaw(logged_out.refresh_token), 401, "unauthenticated"));
  EXPECT_TRUE(Stop(second));
}

TEST(AuthKeyE2eTest, RotatedKeyKeepsThePreviousKidValid) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const auto key_file = dir.path() / "auth_keys.json";
  const std::string rotate =
      testing::MpimBinary() + " auth rotate-key --data-dir " + dir.path().string();
  std::string name = UniqueName("rotate");
  Session s1;
  {
    ServerProcess server({.env = FastAuthEnv(), .data_dir = dir.path()});
    ASSERT_TRUE(server.Start()) << server.error();
    ApiClient api(server.port());
    api.Register(name);
    s1 = api.Login(name);
    ASSERT_TRUE(Stop(server));
  }
  const std::string kid1 = Kid(s1.access_token);
  ASSERT_FALSE(kid1.empty());

  int code = -1;
  std::string out = RunCommand(rotate + " 2>&1", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(FileMode(key_file), 0600) << std::oct << FileMode(key_file);

  Session s2;
  {
    ServerProcess server({.env = FastAuthEnv(), .data_dir = dir.path()});
    ASSERT_TRUE(server.Start()) << server.error();
    ApiClient api(server.port());
    // Signed with the previous key: still valid.
    ApiResponse old = api.Get("/users/me", s1.access_token);
    EXPECT_EQ(old.status, 200) << old.Describe();
    // New tokens carry the new kid.
    s2 = api.Login(name);
    EXPECT_NE(Kid(s2.access_token), kid1);
    EXPECT_FALSE(Kid(s2.access_token).empty());
    EXPECT_EQ(api.Get("/users/me", s2.access_token).status, 200);
    // Refreshing the old session issues a token under the new kid.
    json::object r = RefreshOk(api, s1.refresh_token);
    EXPECT_EQ(Kid(Str(r, "access_token")), Kid(s2.access_token));
    ASSERT_TRUE(Stop(server));
  }

  // A second rotation retires the first key: only one previous key is kept.
  out = RunCommand(rotate + " 2>&1", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_EQ(FileMode(key_file), 0600) << std::oct << FileMode(key_file);
  ServerProcess server({.env = FastAuthEnv(), .data_dir = dir.path()});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  EXPECT_EQ(api.Get("/users/me", s2.access_token).status, 200);
  EXPECT_TRUE(IsTokenRejected(api.Get("/users/me", s1.access_token)))
      << "a token of a key two rotations back must not verify";
  Session s3 = api.Login(name);
  EXPECT_NE(Kid(s3.access_token), Kid(s2.access_token));
  EXPECT_NE(Kid(s3.access_token), kid1);
}

// A configured signing key (base64url, auth.token_key): tokens are HS256
// over exactly that key, so a test can sign claims the server never issued.
TEST(AuthKeyE2eTest, ConfiguredKeySignsHs256AndExpiryIsEnforced) {
  std::string key;
  for (int i = 0; i < 32; ++i) key += static_cast<char>(i * 7 + 3);
  const std::string prev_key(32, '\x42');
  ServerProcess server(
      {.env = Env({{"MPIM_AUTH_TOKEN_KEY", testing::Base64UrlEncode(key)},
                   {"MPIM_AUTH_TOKEN_KEY_ID", "k-current"},
                   {"MPIM_AUTH_PREVIOUS_TOKEN_KEY", testing::Base64UrlEncode(prev_key)},
                   {"MPIM_AUTH_PREVIOUS_TOKEN_KEY_ID", "k-previous"}})});
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  std::string name = UniqueName("hs");
  api.Register(name);
  Session s = api.Login(name);
  auto jwt = testing::DecodeJwt(s.access_token);
  ASSERT_TRUE(jwt.has_value()) << s.access_token;
  EXPECT_EQ(jwt->header.at("kid"), "k-current");
  EXPECT_EQ(jwt->signature, testing::HmacSha256(key, jwt->signing_input))
      << "not HMAC-SHA256 over header.payload with the configured key";

  const std::string header = json::serialize(jwt->header);
  json::object claims = jwt->payload.as_object();
  const int64_t now = NowSeconds();
  auto with_times = [&](int64_t iat, int64_t exp) {
    json::object c = claims;
    c["iat"] = iat;
    c["exp"] = exp;
    return json::serialize(c);
  };
  // A token the server never issued but correctly signed: accepted, so the
  // rejections below are for the reason each one names.
  std::string minted = testing::SignJwt(header, with_times(now, now + 600), key);
  ApiResponse ok = api.Get("/users/me", minted);
  ASSERT_EQ(ok.status, 200) << ok.Describe();

  // Expired a minute ago, correctly signed.
  EXPECT_TRUE(IsTokenRejected(
      api.Get("/users/me", testing::SignJwt(header, with_times(now - 660, now - 60), key))))
      << "expired";
  // No exp at all.
  json::object no_exp = claims;
  no_exp.erase("exp");
  EXPECT_TRUE(
      IsTokenRejected(api.Get("/users/me", testing::SignJwt(header, json::serialize(no_exp), key))))
      << "no exp";
  // HS512-labelled header over the same key.
  json::object hs512 = jwt->header.as_object();
  hs512["alg"] = "HS512";
  EXPECT_TRUE(IsTokenRejected(api.Get(
      "/users/me", testing::SignJwt(json::serialize(hs512), with_times(now, now + 600), key))))
      << "alg HS512";
  // The previous key verifies tokens under its own kid only.
  json::object prev_header = jwt->header.as_object();
  prev_header["kid"] = "k-previous";
  ApiResponse prev_ok =
      api.Get("/users/me",
              testing::SignJwt(json::serialize(prev_header), with_times(now, now + 600), prev_key));
  EXPECT_EQ(prev_ok.status, 200) << prev_ok.Describe();
  EXPECT_TRUE(
      IsTokenRejected(api.Get("/users/me", testing::SignJwt(json::serialize(prev_header),
                                                            with_times(now, now + 600), key))))
      << "kid k-previous signed with the current key";
  EXPECT_TRUE(IsTokenRejected(
      api.Get("/users/me", testing::SignJwt(header, with_times(now, now + 600), prev_key))))
      << "kid k-current signed with the previous key";

  // A correctly signed token for a logged-out session is still refused.
  ASSERT_EQ(api.Post("/auth/logout", "", s.access_token).status, 204);
  EXPECT_TRUE(IsTokenRejected(api.Get("/users/me", minted))) << "revoked session";
}

TEST(AuthDefaultsE2eTest, DefaultArgon2ParametersWork) {
  // No Argon2 overrides: libsodium's interactive limits, as shipped.
  ServerProcess server;
  ASSERT_TRUE(server.Start()) << server.error();
  ApiClient api(server.port());
  std::string name = UniqueName("default");
  std::string id = api.Register(name);
  ASSERT_FALSE(id.empty());
  Session s = api.Login(name);
  EXPECT_EQ(s.user_id, id);
  EXPECT_EQ(s.expires_in, 900);
  EXPECT_TRUE(IsError(api.LoginRaw(name, "wrong password"), 401, "unauthenticated"));
  EXPECT_EQ(api.Get("/users/me", s.access_token).status, 200);
}

}  // namespace
}  // namespace mpim
