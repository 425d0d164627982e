// Reading a file that holds a secret (a private key, a service account's
// credentials): refused when group or others may read it, so that a key
// left world-readable is caught at start, not after it leaked.
#pragma once

#include <string>

#include "core/status.h"

namespace mpim::core {

// The contents of `path`; invalid_argument naming `key` when it cannot be
// read.
StatusOr<std::string> ReadFile(const std::string& path, const std::string& key);

// The contents of `path`; invalid_argument naming `key` (the config key
// that named the file) when it cannot be read or its mode lets group or
// others read it.
StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& key);

}  // namespace mpim::core
