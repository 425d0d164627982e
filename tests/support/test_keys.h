// Private keys for tests of the push providers' credentials: new keys, as
// PEM PKCS#8 (the form of Apple's .p8 files and of a Firebase service
// account's "private_key").
#pragma once

#include <openssl/evp.h>

#include <string>

namespace mpim::testing {

// `key` (not freed) as PEM PKCS#8.
std::string PrivateKeyPem(EVP_PKEY* key);
// A new P-256 key (APNs) as PEM.
std::string NewP256KeyPem();
// A new 2048-bit RSA key (FCM service accounts) as PEM.
std::string NewRsaKeyPem();

}  // namespace mpim::testing
