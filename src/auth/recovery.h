/*
 * recovery.h - one-time recovery codes, for a staff member who has lost the TOTP device.
 *
 * RECOVERY_CODE_COUNT codes are made at once and shown once, as four groups of four
 * characters from an alphabet without look-alikes ("7KQM-3XWT-HN9R-2CPD"): 16 characters of
 * 30 possible ones, about 78 bits each. Only their hashes are stored. The entropy makes a slow
 * hash unnecessary: each code is hashed with keyed BLAKE2b-256 (libsodium's generichash) under
 * a random 16-byte salt of its own, which no precomputed table covers and which takes about
 * 2^78 guesses to invert. A code verifies once: the caller deletes the hash that matched.
 */
#ifndef CONCERTO_AUTH_RECOVERY_H
#define CONCERTO_AUTH_RECOVERY_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"

#define RECOVERY_CODE_COUNT 10
/* "XXXX-XXXX-XXXX-XXXX" and its NUL. */
#define RECOVERY_CODE_SIZE 20

/* A new random code, upper case with hyphens. */
void recovery_code_new(char out[RECOVERY_CODE_SIZE]);

/*
 * Appends the stored form of code: "$blake2b$SALT$HASH", both parts base64url. The code is
 * normalized first (upper case, hyphens and spaces dropped), so the hash matches however the
 * user types it. Returns false, appending nothing, when code is not a recovery code.
 */
bool recovery_code_hash(const char *code, size_t len, buf_t *out);

/*
 * Looks for code among n stored hashes (entries that are NULL or not hashes this module made
 * are skipped). Returns true and sets *out_index to the one that matched; the caller must
 * remove it so that the code cannot be used again. Hashes are compared in constant time.
 */
bool recovery_code_verify(const char *const *hashes, size_t n, const char *code, size_t len,
                          size_t *out_index);

#endif
