#include "service/auth/jwt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <charconv>

namespace mpim::service::auth {
namespace {

constexpr size_t kMaxTokenBytes = 4096;

core::Status Bad(const std::string& why) {
  return absl::UnauthenticatedError("invalid token: " + why);
}

std::optional<int64_t> ParseId(const boost::json::value* v) {
  if (!v || !v->is_string()) return std::nullopt;
  const auto& s = v->get_string();
  int64_t out = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || out <= 0) return std::nullopt;
  return out;
}

std::optional<int64_t> ParseInt(const boost::json::value* v) {
  if (!v) return std::nullopt;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64() && v->get_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return static_cast<int64_t>(v->get_uint64());
  }
  return std::nullopt;
}

core::StatusOr<boost::json::object> DecodeJsonPart(std::string_view part, const char* what) {
  auto bytes = Base64UrlDecode(part);
  if (!bytes.ok()) return Bad(std::string(what) + " is not base64url");
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(*bytes, ec);
  if (ec || !v.is_object()) return Bad(std::string(what) + " is not a JSON object");
  return std::move(v.get_object());
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                  '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

core::StatusOr<std::string> Base64UrlDecode(std::string_view text) {
  std::string out(text.size() * 3 / 4 + 3, '\0');
  size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &len, &end,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      end != text.data() + text.size()) {
    return absl::InvalidArgumentError("not base64url");
  }
  out.resize(len);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

std::string SignAccessToken(const TokenKey& key, const AccessClaims& claims) {
  boost::json::object header;
  header["alg"] = "HS256";
  header["typ"] = "JWT";
  header["kid"] = key.kid;
  boost::json::object payload;
  payload["sub"] = std::to_string(claims.user_id);
  payload["sid"] = std::to_string(claims.session_id);
  payload["iat"] = claims.iat;
  payload["exp"] = claims.exp;
  std::string signing_input = Base64UrlEncode(boost::json::serialize(header)) + "." +
                              Base64UrlEncode(boost::json::serialize(payload));
  std::string signature = HmacSha256(key.secret, signing_input);
  return signing_input + "." + Base64UrlEncode(signature);
}

core::StatusOr<AccessClaims> VerifyAccessToken(std::string_view token,
                                               std::span<const TokenKey> keys, int64_t now_s) {
  if (token.empty() || token.size() > kMaxTokenBytes) return Bad("bad length");
  size_t dot1 = token.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return Bad("expected three parts");
  }
  auto header = DecodeJsonPart(token.substr(0, dot1), "header");
  if (!header.ok()) return header.status();
  const boost::json::value* alg = header->if_contains("alg");
  if (!alg || !alg->is_string() || alg->get_string() != "HS256") return Bad("alg must be HS256");
  const boost::json::value* kid = header->if_contains("kid");
  if (!kid || !kid->is_string()) return Bad("missing kid");
  const TokenKey* key = nullptr;
  for (const TokenKey& k : keys) {
    if (k.kid == std::string_view(kid->get_string())) key = &k;
  }
  if (!key) return Bad("unknown kid");

  auto signature = Base64UrlDecode(token.substr(dot2 + 1));
  if (!signature.ok()) return Bad("signature is not base64url");
  std::string expected = HmacSha256(key->secret, token.substr(0, dot2));
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return Bad("bad signature");
  }

  auto payload = DecodeJsonPart(token.substr(dot1 + 1, dot2 - dot1 - 1), "payload");
  if (!payload.ok()) return payload.status();
  AccessClaims claims;
  auto sub = ParseId(payload->if_contains("sub"));
  auto sid = ParseId(payload->if_contains("sid"));
  auto iat = ParseInt(payload->if_contains("iat"));
  auto exp = ParseInt(payload->if_contains("exp"));
  if (!sub || !sid || !iat || !exp) return Bad("missing or malformed claims");
  if (*exp <= now_s) return absl::UnauthenticatedError("token expired");
  claims.user_id = *sub;
  claims.session_id = *sid;
  claims.iat = *iat;
  claims.exp = *exp;
  claims.kid = key->kid;
  return claims;
}

core::StatusOr<int64_t> UnverifiedSubject(std::string_view token) {
  if (token.size() > kMaxTokenBytes) return absl::InvalidArgumentError("token too long");
  const size_t dot1 = token.find('.');
  const size_t dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos) return absl::InvalidArgumentError("not a JWT");
  auto payload = DecodeJsonPart(token.substr(dot1 + 1, dot2 - dot1 - 1), "payload");
  if (!payload.ok()) return absl::InvalidArgumentError(payload.status().message());
  auto sub = ParseId(payload->if_contains("sub"));
  if (!sub) return absl::InvalidArgumentError("no subject");
  return *sub;
}

}  // namespace mpim::service::auth
