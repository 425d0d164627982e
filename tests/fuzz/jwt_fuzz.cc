// Fuzz target: access-token verification (parsing, base64url, JSON,
// signature check) with a fixed key.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "service/auth/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<mpim::service::auth::TokenKey> keys{
      {"k1", "0123456789abcdef0123456789abcdef"}};
  std::string_view token(reinterpret_cast<const char*>(data), size);
  (void)mpim::service::auth::VerifyAccessToken(token, keys, 1700000001);
  (void)mpim::service::auth::Base64UrlDecode(token);
  return 0;
}
