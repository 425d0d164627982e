#include "service/auth/token_keys.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mpim::service::auth {
namespace {

constexpr size_t kKeyBytes = 32;

TokenKey NewKey() {
  if (sodium_init() < 0) std::abort();
  std::string secret(kKeyBytes, '\0');
  randombytes_buf(secret.data(), secret.size());
  unsigned char id[6];
  randombytes_buf(id, sizeof id);
  return TokenKey{"k" + Base64UrlEncode(std::string(reinterpret_cast<char*>(id), sizeof id)),
                  secret};
}

core::StatusOr<TokenKey> KeyFromConfig(const std::string& kid, const std::string& encoded,
                                       const char* name) {
  auto secret = Base64UrlDecode(encoded);
  if (!secret.ok() || secret->size() < kKeyBytes) {
    return absl::InvalidArgumentError(std::string("auth.") + name +
                                      ": expected base64url of at least 32 bytes");
  }
  return TokenKey{kid, *secret};
}

boost::json::object KeyJson(const TokenKey& k) {
  return {{"kid", k.kid}, {"key", Base64UrlEncode(k.secret)}};
}

core::StatusOr<TokenKey> KeyFromJson(const boost::json::value* v, const std::string& path) {
  if (!v || !v->is_object()) return absl::InvalidArgumentError(path + ": malformed key entry");
  const auto* kid = v->as_object().if_contains("kid");
  const auto* key = v->as_object().if_contains("key");
  if (!kid || !kid->is_string() || !key || !key->is_string()) {
    return absl::InvalidArgumentError(path + ": malformed key entry");
  }
  auto secret = Base64UrlDecode(std::string_view(key->get_string()));
  if (!secret.ok() || secret->size() < kKeyBytes) {
    return absl::InvalidArgumentError(path + ": malformed key");
  }
  return TokenKey{std::string(kid->get_string()), *secret};
}

core::Status WriteKeyFile(const std::string& path, const TokenKeys& keys) {
  boost::json::object root;
  root["current"] = KeyJson(keys.current);
  if (keys.previous) root["previous"] = KeyJson(*keys.previous);
  std::string text = boost::json::serialize(root) + "\n";
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError("cannot write " + tmp + ": " + std::strerror(errno));
  bool ok = ::fchmod(fd, 0600) == 0 &&
            ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::UnavailableError("cannot write " + path + ": " + std::strerror(errno));
  }
  return absl::OkStatus();
}

core::StatusOr<std::optional<TokenKeys>> ReadKeyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::optional<TokenKeys>();
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(ss.str(), ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError(path + ": not a JSON object");
  TokenKeys keys;
  auto current = KeyFromJson(v.as_object().if_contains("current"), path);
  if (!current.ok()) return current.status();
  keys.current = *current;
  if (const auto* prev = v.as_object().if_contains("previous")) {
    auto previous = KeyFromJson(prev, path);
    if (!previous.ok()) return previous.status();
    keys.previous = *previous;
  }
  return std::optional<TokenKeys>(keys);
}

}  // namespace

std::vector<TokenKey> TokenKeys::All() const {
  std::vector<TokenKey> all{current};
  if (previous) all.push_back(*previous);
  return all;
}

std::string KeyFilePath(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "auth_keys.json").string();
}

core::StatusOr<TokenKeys> LoadTokenKeys(const core::AuthConfig& auth, const std::string& data_dir) {
  if (!auth.token_key.empty()) {
    TokenKeys keys;
    auto current = KeyFromConfig(auth.token_key_id, auth.token_key, "token_key");
    if (!current.ok()) return current.status();
    keys.current = *current;
    if (!auth.previous_token_key.empty()) {
      auto previous =
          KeyFromConfig(auth.previous_token_key_id, auth.previous_token_key, "previous_token_key");
      if (!previous.ok()) return previous.status();
      keys.previous = *previous;
    }
    return keys;
  }
  std::string path = KeyFilePath(data_dir);
  auto existing = ReadKeyFile(path);
  if (!existing.ok()) return existing.status();
  if (*existing) return **existing;
  TokenKeys keys{NewKey(), std::nullopt};
  if (auto s = WriteKeyFile(path, keys); !s.ok()) return s;
  return keys;
}

core::StatusOr<TokenKeys> RotateTokenKeys(const std::string& data_dir) {
  std::string path = KeyFilePath(data_dir);
  auto existing = ReadKeyFile(path);
  if (!existing.ok()) return existing.status();
  TokenKeys keys{NewKey(), std::nullopt};
  if (*existing) keys.previous = (*existing)->current;
  if (auto s = WriteKeyFile(path, keys); !s.ok()) return s;
  return keys;
}

}  // namespace mpim::service::auth
