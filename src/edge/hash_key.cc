#include "edge/hash_key.h"

#include "service/auth/jwt.h"

namespace mpim::edge {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      int hi = HexDigit(s[i + 1]);
      int lo = HexDigit(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    out.push_back(s[i] == '+' ? ' ' : s[i]);
  }
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::optional<std::string> UserOf(std::string_view token) {
  auto sub = service::auth::UnverifiedSubject(token);
  if (!sub.ok()) return std::nullopt;
  return "u" + std::to_string(*sub);
}

}  // namespace

core::StatusOr<HashKey> HashKey::Parse(std::string_view text) {
  HashKey key;
  if (text == "user") {
    key.kind_ = Kind::kUser;
    key.header_ = "Authorization";
  } else if (text == "address") {
    key.kind_ = Kind::kAddress;
  } else if (text.rfind("header:", 0) == 0 && text.size() > 7) {
    key.kind_ = Kind::kHeader;
    key.header_ = std::string(text.substr(7));
  } else if (text.rfind("cookie:", 0) == 0 && text.size() > 7) {
    key.kind_ = Kind::kCookie;
    key.header_ = "Cookie";
    key.cookie_ = std::string(text.substr(7));
  } else {
    return absl::InvalidArgumentError(
        "edge.hash_key: expected user, address, header:NAME or "
        "cookie:NAME, got \"" +
        std::string(text) + "\"");
  }
  return key;
}

std::optional<std::string> HashKey::Of(std::string_view target, std::string_view header_value,
                                       std::string_view client_ip) const {
  switch (kind_) {
    case Kind::kAddress:
      if (client_ip.empty()) return std::nullopt;
      return std::string(client_ip);
    case Kind::kHeader:
      if (header_value.empty()) return std::nullopt;
      return std::string(header_value);
    case Kind::kCookie: {
      auto value = CookieValue(header_value, cookie_);
      if (!value || value->empty()) return std::nullopt;
      return std::string(*value);
    }
    case Kind::kUser: {
      constexpr std::string_view kBearer = "Bearer ";
      std::string_view auth = Trim(header_value);
      if (auth.size() > kBearer.size() && auth.substr(0, kBearer.size()) == kBearer) {
        return UserOf(Trim(auth.substr(kBearer.size())));
      }
      if (auto token = QueryParam(target, "token")) return UserOf(*token);
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::string> QueryParam(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  if (size_t hash = query.find('#'); hash != std::string_view::npos) query = query.substr(0, hash);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (PercentDecode(key) != name) continue;
    return eq == std::string_view::npos ? std::string() : PercentDecode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::optional<std::string_view> CookieValue(std::string_view cookie_header, std::string_view name) {
  while (!cookie_header.empty()) {
    const size_t semi = cookie_header.find(';');
    std::string_view pair = Trim(cookie_header.substr(0, semi));
    cookie_header =
        semi == std::string_view::npos ? std::string_view() : cookie_header.substr(semi + 1);
    const size_t eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (Trim(pair.substr(0, eq)) != name) continue;
    std::string_view value = Trim(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return std::nullopt;
}

}  // namespace mpim::edge
