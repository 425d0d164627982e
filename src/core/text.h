// Text helpers shared by the core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mpim::core {

// Appends `s` as a double-quoted JSON string (escaping quotes, backslashes
// and control characters). The result is also a valid TOML basic string.
void AppendJsonString(std::string& out, std::string_view s);

// Appends `n` bytes as lower-case hex, two digits each.
void AppendHex(std::string& out, const uint8_t* bytes, size_t n);

// True when `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view s);

}  // namespace mpim::core
