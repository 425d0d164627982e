#include "service/validation.h"

#include <string>

namespace mpim::service {
namespace {

core::Status Invalid(const std::string& msg) { return absl::InvalidArgumentError(msg); }

bool HasControl(std::string_view text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

int64_t Utf8Length(std::string_view text) {
  int64_t count = 0;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 0;
    if (len == 0 || i + len > text.size()) return -1;
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return -1;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return -1;
    i += len;
    ++count;
  }
  return count;
}

core::Status ValidateUsername(std::string_view username) {
  if (username.size() < 3 || username.size() > 32) {
    return Invalid("username: must be 3-32 characters");
  }
  for (char c : username) {
    if (!IsUsernameChar(c)) return Invalid("username: only a-z, 0-9, '_', '.' and '-' are allowed");
  }
  return absl::OkStatus();
}

core::Status ValidatePassword(std::string_view password) {
  if (password.size() < 8 || password.size() > 128) {
    return Invalid("password: must be 8-128 bytes");
  }
  return absl::OkStatus();
}

core::Status ValidateDisplayName(std::string_view name) {
  int64_t len = Utf8Length(name);
  if (len < 1 || len > 64 || HasControl(name)) {
    return Invalid("display_name: must be 1-64 characters, without control characters");
  }
  return absl::OkStatus();
}

core::Status ValidateAvatarUrl(std::string_view url) {
  if (url.empty()) return absl::OkStatus();
  auto bad = [] {
    return Invalid("avatar_url: must be empty or an http(s) URL with a host, at most 2048 bytes");
  };
  if (url.size() > 2048 || HasControl(url) || url.find(' ') != std::string_view::npos ||
      Utf8Length(url) < 0) {
    return bad();
  }
  size_t sep = url.find("://");
  if (sep == std::string_view::npos) return bad();
  std::string scheme(url.substr(0, sep));
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "http" && scheme != "https") return bad();
  std::string_view rest = url.substr(sep + 3);
  std::string_view host = rest.substr(0, rest.find_first_of("/?#"));
  if (host.empty() || host.front() == ':' || host.front() == '@') return bad();
  return absl::OkStatus();
}

core::Status ValidateDevice(std::string_view device) {
  int64_t len = Utf8Length(device);
  if (len < 0 || len > 64 || HasControl(device)) {
    return Invalid("device: must be at most 64 characters, without control characters");
  }
  return absl::OkStatus();
}

}  // namespace mpim::service
