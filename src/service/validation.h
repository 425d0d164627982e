// Input rules from the protocol (section 1, "Default limits"), shared by
// every service. Each returns invalid_argument with a message naming the
// field, or OK.
#pragma once

#include <string_view>

#include "core/status.h"

namespace mpim::service {

// The username alphabet: [a-z0-9_.-].
inline bool IsUsernameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

core::Status ValidateUsername(std::string_view username);  // 3-32 of [a-z0-9_.-]
core::Status ValidatePassword(std::string_view password);  // 8-128 bytes
// 1-64 characters (code points) of valid UTF-8, no control characters.
core::Status ValidateDisplayName(std::string_view name);
// Empty, or an http(s) URL of at most 2048 bytes without spaces or controls.
core::Status ValidateAvatarUrl(std::string_view url);
// At most 64 characters of valid UTF-8, no control characters.
core::Status ValidateDevice(std::string_view device);

// Number of code points in valid UTF-8; -1 if not valid UTF-8.
int64_t Utf8Length(std::string_view text);

}  // namespace mpim::service
