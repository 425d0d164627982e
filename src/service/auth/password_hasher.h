// Argon2id password hashes through libsodium (crypto_pwhash_str): the
// encoded hash carries its own salt and parameters, so hashes made with other
// settings keep verifying after the settings change.
//
// Thread-safe, and SLOW on purpose (tens of milliseconds, megabytes of
// memory per call): call only from a worker pool, never from an io thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace mpim::service::auth {

class PasswordHasher {
 public:
  // opslimit >= 1; memlimit_bytes >= 8 KiB (libsodium's minimums).
  PasswordHasher(uint64_t opslimit, size_t memlimit_bytes);

  // internal (out of memory) on failure.
  core::StatusOr<std::string> Hash(std::string_view password) const;

  // Constant-time with respect to the password; false for a malformed hash.
  bool Verify(const std::string& hash, std::string_view password) const;

  // Does the work of a Verify against a fixed hash and returns nothing, so an
  // unknown user costs the same time as a wrong password.
  void VerifyDummy(std::string_view password) const;

 private:
  uint64_t opslimit_;
  size_t memlimit_;
  std::string dummy_hash_;
};

}  // namespace mpim::service::auth
