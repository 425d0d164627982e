#include "support/api_client.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <chrono>
#include <thread>

#include "client/http_client.h"
#include "support/metrics_text.h"

namespace mpim::testing {
namespace {

constexpr std::string_view kApiPrefix = "/api/v1";

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

std::string ApiResponse::Header(std::string_view name) const {
  std::string lower(name);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& [k, v] : headers) {
    if (k == lower) return v;
  }
  return "";
}

std::string ApiResponse::ErrorCode() const {
  if (!json.is_object()) return "";
  const auto* err = json.as_object().if_contains("error");
  if (!err || !err->is_object()) return "";
  const auto* code = err->as_object().if_contains("code");
  if (!code || !code->is_string()) return "";
  return std::string(code->as_string());
}

std::string ApiResponse::Describe() const {
  if (status == 0) return "transport error: " + transport_error;
  return std::to_string(status) + " " + body;
}

ApiClient::ApiClient(uint16_t port)
    : http_(std::make_unique<client::HttpClient>("127.0.0.1", port)) {}

ApiClient::~ApiClient() = default;

ApiResponse ApiClient::Call(const std::string& method, const std::string& target,
                            const std::string& body, const std::string& token,
                            std::vector<std::pair<std::string, std::string>> headers) {
  if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
  if (!token.empty()) headers.emplace_back("Authorization", "Bearer " + token);
  ApiResponse out;
  auto r = http_->Request(method, target, body, headers);
  if (!r.ok()) {
    out.transport_error = r.status().ToString();
    return out;
  }
  out.status = r->status;
  out.body = r->body;
  out.headers = r->headers;
  if (!out.body.empty()) {
    boost::system::error_code ec;
    auto v = boost::json::parse(out.body, ec);
    if (!ec) out.json = std::move(v);
  }
  return out;
}

ApiResponse ApiClient::Get(const std::string& path, const std::string& token) {
  return Call("GET", std::string(kApiPrefix) + path, "", token);
}
ApiResponse ApiClient::Post(const std::string& path, const std::string& body,
                            const std::string& token) {
  return Call("POST", std::string(kApiPrefix) + path, body, token);
}
ApiResponse ApiClient::Patch(const std::string& path, const std::string& body,
                             const std::string& token) {
  return Call("PATCH", std::string(kApiPrefix) + path, body, token);
}
ApiResponse ApiClient::Delete(const std::string& path, const std::string& token) {
  return Call("DELETE", std::string(kApiPrefix) + path, "", token);
}

double ApiClient::Metric(std::string_view series) {
  ApiResponse r = Call("GET", "/metrics");
  EXPECT_EQ(r.status, 200) << r.Describe();
  return SeriesValue(r.body, series);
}

ApiResponse ApiClient::RegisterRaw(std::string_view username, std::string_view password,
                                   std::optional<std::string_view> display_name) {
  std::string body =
      "{\"username\":" + JsonString(username) + ",\"password\":" + JsonString(password);
  if (display_name) body += ",\"display_name\":" + JsonString(*display_name);
  body += "}";
  return Post("/auth/register", body);
}

ApiResponse ApiClient::LoginRaw(std::string_view username, std::string_view password) {
  return Post("/auth/login", "{\"username\":" + JsonString(username) +
                                 ",\"password\":" + JsonString(password) + "}");
}

ApiResponse ApiClient::RefreshRaw(std::string_view refresh_token) {
  return Post("/auth/refresh", "{\"refresh_token\":" + JsonString(refresh_token) + "}");
}

std::string ApiClient::Register(std::string_view username, std::string_view password) {
  ApiResponse r = RegisterRaw(username, password);
  if (r.status != 201) {
    ADD_FAILURE() << "register " << username << ": " << r.Describe();
    return "";
  }
  const auto* id = r.json.is_object() ? r.json.as_object().if_contains("user_id") : nullptr;
  if (!id || !id->is_string() || !IsDecimalId(id->as_string())) {
    ADD_FAILURE() << "register " << username << ": no decimal user_id: " << r.body;
    return "";
  }
  return std::string(id->as_string());
}

Session ApiClient::Login(std::string_view username, std::string_view password) {
  Session s;
  ApiResponse r = LoginRaw(username, password);
  if (r.status != 200 || !r.json.is_object()) {
    ADD_FAILURE() << "login " << username << ": " << r.Describe();
    return s;
  }
  const auto& o = r.json.as_object();
  auto str = [&](const char* key) -> std::string {
    const auto* v = o.if_contains(key);
    if (!v || !v->is_string()) {
      ADD_FAILURE() << "login " << username << ": no string " << key << " in " << r.body;
      return "";
    }
    return std::string(v->as_string());
  };
  s.user_id = str("user_id");
  s.session_id = str("session_id");
  s.access_token = str("access_token");
  s.refresh_token = str("refresh_token");
  const auto* exp = o.if_contains("expires_in");
  if (!exp || !exp->is_int64()) {
    ADD_FAILURE() << "login " << username << ": no integer expires_in in " << r.body;
  } else {
    s.expires_in = exp->as_int64();
  }
  return s;
}

Account ApiClient::NewAccount(std::string_view username, std::string_view password) {
  Account a;
  a.username = std::string(username);
  a.password = std::string(password);
  std::string id = Register(username, password);
  if (id.empty()) return a;
  a.session = Login(username, password);
  if (a.session.user_id != id) {
    ADD_FAILURE() << "login user_id " << a.session.user_id << " != registered " << id;
  }
  return a;
}

std::vector<std::pair<std::string, std::string>> FastAuthEnv() {
  return {{"MPIM_AUTH_ARGON2_OPSLIMIT", "1"},
          {"MPIM_AUTH_ARGON2_MEMLIMIT_KIB", "8"},
          {"MPIM_AUTH_LOGIN_PER_MIN_USER", "100000"},
          {"MPIM_AUTH_LOGIN_PER_MIN_ADDRESS", "100000"},
          {"MPIM_LIMITS_REQUESTS_PER_SEC_ADDRESS", "1000000"},
          {"MPIM_LIMITS_REQUESTS_BURST_ADDRESS", "1000000"}};
}

bool WaitForReadyz(uint16_t port, int status, std::chrono::milliseconds deadline, int* last) {
  client::HttpClient http("127.0.0.1", port, std::chrono::milliseconds(2000));
  const auto until = std::chrono::steady_clock::now() + deadline;
  int seen = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto r = http.Get("/readyz");
    seen = r.ok() ? r->status : 0;
    if (seen == status) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll interval, not a sync
  }
  if (last) *last = seen;
  return false;
}

std::string UniqueName(std::string_view prefix) {
  static std::atomic<int> counter{0};
  int n = counter.fetch_add(1);
  // Base 36 keeps short prefixes short; the pid keeps parallel runs apart in
  // any shared log, though every server here has its own data dir.
  std::string suffix;
  do {
    suffix.insert(suffix.begin(), "0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]);
    n /= 36;
  } while (n > 0);
  std::string name(prefix.substr(0, 20));
  name += "_" + suffix;
  while (name.size() < 3) name += "0";
  return name;
}

std::string JsonString(std::string_view s) {
  return boost::json::serialize(boost::json::value(boost::json::string_view(s.data(), s.size())));
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

::testing::AssertionResult IsError(const ApiResponse& r, int status, std::string_view code) {
  if (r.status != status) {
    return ::testing::AssertionFailure()
           << "expected " << status << " " << code << ", got " << r.Describe();
  }
  if (r.Header("content-type").rfind("application/json", 0) != 0) {
    return ::testing::AssertionFailure()
           << "error content-type is '" << r.Header("content-type") << "'";
  }
  if (!r.json.is_object() || r.json.as_object().size() != 1 ||
      !r.json.as_object().contains("error") || !r.json.at("error").is_object()) {
    return ::testing::AssertionFailure() << "body is not {\"error\":{...}}: " << r.body;
  }
  const auto& err = r.json.at("error").as_object();
  const auto* c = err.if_contains("code");
  const auto* m = err.if_contains("message");
  if (!c || !c->is_string() || c->as_string() != code) {
    return ::testing::AssertionFailure() << "expected code " << code << ": " << r.body;
  }
  if (!m || !m->is_string()) {
    return ::testing::AssertionFailure() << "no string message: " << r.body;
  }
  size_t allowed = 2;
  if (code == "rate_limited") {
    const auto* retry = err.if_contains("retry_after_ms");
    if (!retry || !retry->is_int64()) {
      return ::testing::AssertionFailure() << "no integer error.retry_after_ms: " << r.body;
    }
    allowed = 3;
  }
  if (err.size() != allowed) {
    return ::testing::AssertionFailure() << "unexpected members in the error object: " << r.body;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult IsUserObject(const boost::json::value& v) {
  if (!v.is_object()) return ::testing::AssertionFailure() << "not an object: " << v;
  const auto& o = v.as_object();
  const auto* id = o.if_contains("user_id");
  if (!id || !id->is_string() || !IsDecimalId(id->as_string())) {
    return ::testing::AssertionFailure() << "user_id is not a decimal string: " << v;
  }
  for (const char* key : {"username", "display_name", "avatar_url"}) {
    const auto* f = o.if_contains(key);
    if (!f || !f->is_string()) {
      return ::testing::AssertionFailure() << key << " is not a string: " << v;
    }
  }
  const auto* online = o.if_contains("online");
  if (!online || !online->is_bool()) {
    return ::testing::AssertionFailure() << "online is not a bool: " << v;
  }
  if (const auto* ls = o.if_contains("last_seen"); ls && !ls->is_int64()) {
    return ::testing::AssertionFailure() << "last_seen is not an integer: " << v;
  }
  return ::testing::AssertionSuccess();
}

bool IsDecimalId(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kB64Url[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += kB64Url[(acc << (6 - bits)) & 63];
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '-') {
      v = 62;
    } else if (c == '_') {
      v = 63;
    } else {
      return std::nullopt;
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  if (bits >= 6) return std::nullopt;  // a lone trailing character
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::optional<Jwt> DecodeJwt(std::string_view token) {
  size_t a = token.find('.');
  if (a == std::string_view::npos) return std::nullopt;
  size_t b = token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) {
    return std::nullopt;
  }
  auto header = Base64UrlDecode(token.substr(0, a));
  auto payload = Base64UrlDecode(token.substr(a + 1, b - a - 1));
  auto sig = Base64UrlDecode(token.substr(b + 1));
  if (!header || !payload || !sig) return std::nullopt;
  Jwt jwt;
  boost::system::error_code ec;
  jwt.header = boost::json::parse(*header, ec);
  if (ec) return std::nullopt;
  jwt.payload = boost::json::parse(*payload, ec);
  if (ec) return std::nullopt;
  jwt.signing_input = std::string(token.substr(0, b));
  jwt.signature = std::move(*sig);
  return jwt;
}

std::string SignJwt(std::string_view header_json, std::string_view payload_json,
                    std::string_view key) {
  std::string input = Base64UrlEncode(header_json) + "." + Base64UrlEncode(payload_json);
  return input + "." + Base64UrlEncode(HmacSha256(key, input));
}

}  // namespace mpim::testing
