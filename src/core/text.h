// Text helpers shared by the core.
#pragma once

#include <string>
#include <string_view>

namespace mpim::core {

// Appends `s` as a double-quoted JSON string (escaping quotes, backslashes
// and control characters). The result is also a valid TOML basic string.
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace mpim::core
