#include "service/auth/password_hasher.h"

#include <sodium.h>

#include <cstdlib>

namespace mpim::service::auth {

PasswordHasher::PasswordHasher(uint64_t opslimit, size_t memlimit_bytes)
    : opslimit_(opslimit), memlimit_(memlimit_bytes) {
  if (sodium_init() < 0) std::abort();  // no usable randomness: nothing is safe
  auto dummy = Hash("mpim dummy password, never a real one");
  if (dummy.ok()) dummy_hash_ = *dummy;
}

core::StatusOr<std::string> PasswordHasher::Hash(std::string_view password) const {
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), opslimit_, memlimit_,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::InternalError("password hashing failed (out of memory?)");
  }
  return std::string(out);
}

bool PasswordHasher::Verify(const std::string& hash, std::string_view password) const {
  if (hash.empty() || hash.size() >= crypto_pwhash_STRBYTES) return false;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

void PasswordHasher::VerifyDummy(std::string_view password) const {
  (void)Verify(dummy_hash_, password);
}

}  // namespace mpim::service::auth
