/*
 * digest.h - SHA-256 over a stream of bytes (libsodium), for checksums that compare data
 * (concerto migrate-data's verification) rather than protect secrets.
 */
#ifndef CONCERTO_AUTH_DIGEST_H
#define CONCERTO_AUTH_DIGEST_H

#include <stddef.h>

#define DIGEST_SHA256_BYTES 32

/* The running state; opaque (libsodium's crypto_hash_sha256_state fits in it). */
typedef struct {
    _Alignas(16) unsigned char opaque[256];
} digest_sha256_t;

void digest_sha256_init(digest_sha256_t *d);
void digest_sha256_update(digest_sha256_t *d, const void *data, size_t len);
void digest_sha256_final(digest_sha256_t *d, unsigned char out[DIGEST_SHA256_BYTES]);

/* Lower-case hex of len bytes into out (2 * len + 1 bytes). */
void digest_hex(const unsigned char *bytes, size_t len, char *out);

#endif
