// The keys that sign access tokens: a current key (signs new tokens) and an
// optional previous key (its tokens stay valid until they expire).
//
// Source: the config's auth.token_key (+ previous) when set; otherwise the
// file <data_dir>/auth_keys.json, created with a fresh 256-bit key on first
// start (mode 0600, written atomically). RotateTokenKeys (`mpim auth
// rotate-key`) makes a new current key and keeps the old as previous.
//
// Called at start-up from the main thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/status.h"
#include "service/auth/jwt.h"

namespace mpim::service::auth {

struct TokenKeys {
  TokenKey current;
  std::optional<TokenKey> previous;

  // current first, then previous: what verification accepts.
  std::vector<TokenKey> All() const;
};

std::string KeyFilePath(const std::string& data_dir);

core::StatusOr<TokenKeys> LoadTokenKeys(const core::AuthConfig& auth, const std::string& data_dir);

core::StatusOr<TokenKeys> RotateTokenKeys(const std::string& data_dir);

}  // namespace mpim::service::auth
