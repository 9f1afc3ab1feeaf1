/*
 * recovery.c - recovery codes and their salted BLAKE2b hashes (recovery.h).
 */
#include "auth/recovery.h"

#include <sodium.h>
#include <string.h>

#include "auth/random.h"
#include "base/b64.h"

/* Digits and capitals without 0/O, 1/I/L and U (fewer accidental words). */
static const char alphabet[] = "23456789ABCDEFGHJKMNPQRSTVWXYZ";
#define CODE_CHARS 16
#define SALT_SIZE  16
#define HASH_SIZE  32
static const char prefix[] = "$blake2b$";

void recovery_code_new(char out[RECOVERY_CODE_SIZE])
{
    char *p = out;
    for (int i = 0; i < CODE_CHARS; i++) {
        if (i > 0 && i % 4 == 0)
            *p++ = '-';
        *p++ = alphabet[auth_random_uniform(sizeof(alphabet) - 1)];
    }
    *p = '\0';
}

/* The 16 characters of code in upper case, or false when it is not a code. */
static bool normalize(const char *code, size_t len, char out[CODE_CHARS])
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = code[i];
        if (c == '-' || c == ' ')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == '\0' || !strchr(alphabet, c) || n == CODE_CHARS)
            return false;
        out[n++] = c;
    }
    return n == CODE_CHARS;
}

static void keyed_hash(const unsigned char salt[SALT_SIZE], const char code[CODE_CHARS],
                       unsigned char out[HASH_SIZE])
{
    auth__sodium_ready();
    crypto_generichash(out, HASH_SIZE, (const unsigned char *)code, CODE_CHARS, salt, SALT_SIZE);
}

bool recovery_code_hash(const char *code, size_t len, buf_t *out)
{
    char normal[CODE_CHARS];
    if (!normalize(code, len, normal))
        return false;
    unsigned char salt[SALT_SIZE], hash[HASH_SIZE];
    auth_random_bytes(salt, sizeof(salt));
    keyed_hash(salt, normal, hash);
    buf_addstr(out, prefix);
    b64url_encode(salt, sizeof(salt), out);
    buf_addch(out, '$');
    b64url_encode(hash, sizeof(hash), out);
    sodium_memzero(normal, sizeof(normal));
    return true;
}

/* The salt and hash of a stored hash, or false when it is not one of ours. */
static bool parse_stored(const char *stored, unsigned char salt[SALT_SIZE],
                         unsigned char hash[HASH_SIZE])
{
    size_t plen = sizeof(prefix) - 1;
    if (!stored || strncmp(stored, prefix, plen) != 0)
        return false;
    const char *salt_text = stored + plen;
    const char *dollar = strchr(salt_text, '$');
    if (!dollar)
        return false;
    buf_t bytes = BUF_INIT;
    bool ok =
        b64url_decode(salt_text, (size_t)(dollar - salt_text), &bytes) && bytes.len == SALT_SIZE;
    if (ok)
        memcpy(salt, bytes.ptr, SALT_SIZE);
    buf_reset(&bytes);
    ok = ok && b64url_decode(dollar + 1, strlen(dollar + 1), &bytes) && bytes.len == HASH_SIZE;
    if (ok)
        memcpy(hash, bytes.ptr, HASH_SIZE);
    buf_release(&bytes);
    return ok;
}

bool recovery_code_verify(const char *const *hashes, size_t n, const char *code, size_t len,
                          size_t *out_index)
{
    char normal[CODE_CHARS];
    if (!normalize(code, len, normal))
        return false;
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        unsigned char salt[SALT_SIZE], stored[HASH_SIZE], computed[HASH_SIZE];
        if (!parse_stored(hashes[i], salt, stored))
            continue;
        keyed_hash(salt, normal, computed);
        if (sodium_memcmp(stored, computed, HASH_SIZE) == 0) {
            *out_index = i;
            found = true;
        }
    }
    sodium_memzero(normal, sizeof(normal));
    return found;
}
