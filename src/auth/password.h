/*
 * password.h - staff passwords: argon2id hashes and the choice policy.
 *
 * Hashes are libsodium's crypto_pwhash_str strings ("$argon2id$v=19$m=65536,t=2,p=1$...",
 * salt and parameters inside), so a hash made with older parameters still verifies and
 * password_needs_rehash says when to replace it after a successful login.
 *
 * The policy follows NIST SP 800-63B section 5.1.1.2: a length between a minimum (12 by
 * default) and 128 characters, any characters (spaces and Unicode included), no composition
 * rules, and a refusal of passwords that are commonly used, dictionary words with trivial
 * changes, repetitive or sequential, or that contain the user name. Messages never quote the
 * password: they say what to choose instead.
 */
#ifndef CONCERTO_AUTH_PASSWORD_H
#define CONCERTO_AUTH_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#include "base/err.h"

/* argon2id work factors: passes over memory (opslimit) and memory in bytes (memlimit). */
typedef struct {
    unsigned long long opslimit;
    size_t memlimit;
} password_cost_t;

/*
 * The server's default: 2 passes over 64 MiB (libsodium's "interactive" level, above OWASP's
 * argon2id minimum of 19 MiB), about 0.1 s of one core per login.
 */
extern const password_cost_t password_cost_default;

/*
 * Client secrets: 5 passes over 7 MiB, one of OWASP's argon2id configurations of equal
 * strength to its 19 MiB minimum. A client secret has 32 characters or more and is meant to be
 * random, so the memory-hard hash buys little for it, while the token endpoint checks it at
 * every client_credentials grant: at 64 MiB each check took the server's memory from ~40 MB
 * to ~85 MB. About the same CPU time as a password.
 */
extern const password_cost_t password_cost_client_secret;

/* Room for a hash string and its NUL (libsodium's crypto_pwhash_STRBYTES). */
#define PASSWORD_HASH_SIZE 128

/*
 * Hashes password (len bytes) into out, NUL-terminated, with a fresh random salt. Returns
 * ERR_INTERNAL when the memory for argon2id cannot be had.
 */
status_t password_hash(const password_cost_t *cost, const char *password, size_t len,
                       char out[PASSWORD_HASH_SIZE], err_t *err);
/* True when password matches hash; false when it does not or hash is not a hash string.
 * Takes as long as one hash with the parameters stored in hash. */
bool password_verify(const char *hash, const char *password, size_t len);
/* True when hash was made with other parameters than cost (or is not a hash string): hash the
 * password again, after it verified, and store the new hash. */
bool password_needs_rehash(const password_cost_t *cost, const char *hash);

/*
 * A word list for the "commonly used" check: one word per line, compared in lower case.
 * Debian's cracklib-runtime installs PASSWORD_DICT_PATH (54,763 entries: English words,
 * names and the passwords most often found in leaked lists, such as "trustno1" or "1qaz2wsx").
 */
#define PASSWORD_DICT_PATH "/usr/share/dict/cracklib-small"
typedef struct password_dict password_dict_t;

/* Reads the list at path. Returns ERR_INTERNAL with the reason when it cannot be read. The
 * caller frees *out with password_dict_free; it is read-only and may be shared by threads. */
status_t password_dict_load(const char *path, password_dict_t **out, err_t *err);
void password_dict_free(password_dict_t *dict);
size_t password_dict_size(const password_dict_t *dict);
/* True when word (len bytes, any case) is in the list. */
bool password_dict_contains(const password_dict_t *dict, const char *word, size_t len);

#define PASSWORD_MIN_LENGTH 12
#define PASSWORD_MAX_LENGTH 128

typedef struct {
    size_t min_length;           /* in characters (code points); PASSWORD_MIN_LENGTH */
    size_t max_length;           /* PASSWORD_MAX_LENGTH */
    const password_dict_t *dict; /* borrowed; NULL skips the word-list check */
} password_policy_t;

/*
 * Checks a new password (len bytes of UTF-8) for the account username (may be NULL). Returns
 * 0, or ERR_RULE with one message that says what to do (ERR_VALUE when the bytes are not
 * UTF-8). The checks, in order: length; the user name (when it has 3 characters or more) as a
 * part, in any case; one character or a short group repeated, or a run such as "abcdef..." or
 * "98765..."; and the word list, tried with the password in lower case, without the digits
 * and symbols before and after it ("Summer2024!" -> "summer"), with look-alike digits and
 * symbols read as letters ("P@ssw0rd" -> "password", 1 as i and as l) and, when it is one
 * part repeated ("monkeymonkey"), with that part.
 */
status_t password_check(const password_policy_t *policy, const char *password, size_t len,
                        const char *username, err_t *err);

#endif
