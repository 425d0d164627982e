#include "support/test_keys.h"

#include <openssl/bio.h>
#include <openssl/pem.h>

namespace mpim::testing {

std::string PrivateKeyPem(EVP_PKEY* key) {
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(len));
  BIO_free(bio);
  return pem;
}

namespace {

std::string PemAndFree(EVP_PKEY* key) {
  std::string pem = PrivateKeyPem(key);
  EVP_PKEY_free(key);
  return pem;
}

}  // namespace

std::string NewP256KeyPem() { return PemAndFree(EVP_EC_gen("P-256")); }
std::string NewRsaKeyPem() { return PemAndFree(EVP_RSA_gen(2048)); }

}  // namespace mpim::testing
