// Ed25519 signing through OpenSSL, for Ollama's registry token requests
// (a signature over a short string; nothing here is on a hot path).
#include "CShims.h"

#include <openssl/evp.h>

int hl_ed25519_sign(const uint8_t seed[32], const uint8_t *message, size_t length,
                    uint8_t signature[64]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  if (!key) return -1;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  size_t produced = 64;
  int ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, NULL, NULL, key) == 1 &&
           EVP_DigestSign(ctx, signature, &produced, message, length) == 1 && produced == 64;
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  return ok ? 0 : -1;
}

int hl_ed25519_public_key(const uint8_t seed[32], uint8_t public_key[32]) {
  EVP_PKEY *key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
  if (!key) return -1;
  size_t produced = 32;
  int ok = EVP_PKEY_get_raw_public_key(key, public_key, &produced) == 1 && produced == 32;
  EVP_PKEY_free(key);
  return ok ? 0 : -1;
}
