/*
 * secrets.h - the server key that encrypts secrets at rest: TOTP secrets in the account table
 * are sealed with it, so that a copy of the database (a backup, a replica, a stolen disk)
 * does not give away anyone's second factor.
 *
 * The key is 32 random bytes, kept outside the database in a file of its own (64 hex digits,
 * `openssl rand -hex 32 > FILE`; readable by the server's user only). Sealing is libsodium's
 * XChaCha20-Poly1305 AEAD with a random 24-byte nonce per value and a context (the account
 * id) as associated data: a sealed value opens only with the key and only for the row it
 * was made for, so it cannot be moved to another account. A sealed value is text:
 * "v1." and base64url of nonce || ciphertext || tag.
 */
#ifndef CONCERTO_AUTH_SECRETS_H
#define CONCERTO_AUTH_SECRETS_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define AUTH_SECRETS_KEY_SIZE 32

typedef struct auth_secrets auth_secrets_t;

/*
 * Reads the key file at path: 64 hex digits (upper or lower case), surrounding white space
 * allowed. Returns ERR_INVALID when it cannot be read, is not a key, or can be read or
 * written by group or others (mode must be 0600 or 0400: chmod 600 FILE). The caller frees
 * *out with auth_secrets_free; it is read-only and may be shared by threads.
 */
status_t auth_secrets_load(const char *path, auth_secrets_t **out, err_t *err);
/*
 * Creates the key file at path with a new random key (mode 0600) unless a file is there
 * already (*out_created says which); load it with auth_secrets_load. ERR_INVALID when it cannot
 * be written. Losing the file loses every enrolled second factor (each must be reset).
 */
status_t auth_secrets_create(const char *path, bool *out_created, err_t *err);
/* A key from bytes (tests, tools). */
auth_secrets_t *auth_secrets_new(const unsigned char key[AUTH_SECRETS_KEY_SIZE]);
/* Wipes the key and frees it. NULL is fine. */
void auth_secrets_free(auth_secrets_t *secrets);

/* Appends the sealed text of data (len bytes) for context (a NUL-terminated string). */
void auth_secrets_seal(const auth_secrets_t *secrets, const char *context, const void *data,
                       size_t len, buf_t *out);
/* Appends the bytes sealed in text (len characters) for context. Returns false, appending
 * nothing, when the text is not a sealed value, was sealed with another key or for another
 * context, or was altered. */
bool auth_secrets_open(const auth_secrets_t *secrets, const char *context, const char *text,
                       size_t len, buf_t *out);

#endif
