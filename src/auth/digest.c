/*
 * digest.c - SHA-256 over a stream (digest.h), with libsodium.
 */
#include "auth/digest.h"

#include <sodium.h>

#include "auth/random.h"

_Static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(((digest_sha256_t *)0)->opaque),
               "digest_sha256_t too small for libsodium's state");

void digest_sha256_init(digest_sha256_t *d)
{
    auth__sodium_ready();
    crypto_hash_sha256_init((crypto_hash_sha256_state *)d->opaque);
}

void digest_sha256_update(digest_sha256_t *d, const void *data, size_t len)
{
    crypto_hash_sha256_update((crypto_hash_sha256_state *)d->opaque, data, (unsigned long long)len);
}

void digest_sha256_final(digest_sha256_t *d, unsigned char out[DIGEST_SHA256_BYTES])
{
    crypto_hash_sha256_final((crypto_hash_sha256_state *)d->opaque, out);
}

void digest_hex(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}
