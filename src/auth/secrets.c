/*
 * secrets.c - the server key and sealing with it (secrets.h), over libsodium's
 * crypto_aead_xchacha20poly1305_ietf. The key lives in sodium_malloc'd memory (guard pages,
 * wiped on free).
 */
#include "auth/secrets.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/random.h"
#include "base/b64.h"

#define PREFIX     "v1."
#define NONCE_SIZE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_SIZE   crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(AUTH_SECRETS_KEY_SIZE == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key size");

struct auth_secrets {
    unsigned char key[AUTH_SECRETS_KEY_SIZE];
};

auth_secrets_t *auth_secrets_new(const unsigned char key[AUTH_SECRETS_KEY_SIZE])
{
    auth__sodium_ready();
    auth_secrets_t *secrets = sodium_malloc(sizeof(*secrets));
    if (!secrets)
        abort();
    memcpy(secrets->key, key, AUTH_SECRETS_KEY_SIZE);
    return secrets;
}

void auth_secrets_free(auth_secrets_t *secrets)
{
    if (secrets)
        sodium_free(secrets); /* wipes */
}

status_t auth_secrets_load(const char *path, auth_secrets_t **out, err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, ERR_INVALID, NULL, "could not open the secrets key file \"%s\": %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        fclose(f);
        return err_set(err, ERR_INVALID, NULL,
                       "the secrets key file \"%s\" may be read by others: chmod 600 it", path);
    }
    char text[256];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    char *start = text, *end = text + n;
    while (start < end && isspace((unsigned char)*start))
        start++;
    while (end > start && isspace((unsigned char)end[-1]))
        end--;
    unsigned char key[AUTH_SECRETS_KEY_SIZE];
    size_t key_len = 0;
    const char *stop = NULL;
    auth__sodium_ready();
    bool ok = (size_t)(end - start) == 2 * AUTH_SECRETS_KEY_SIZE &&
              sodium_hex2bin(key, sizeof(key), start, (size_t)(end - start), NULL, &key_len,
                             &stop) == 0 &&
              key_len == AUTH_SECRETS_KEY_SIZE;
    sodium_memzero(text, sizeof(text));
    if (!ok) {
        sodium_memzero(key, sizeof(key));
        return err_set(err, ERR_INVALID, NULL,
                       "the secrets key file \"%s\" must hold 64 hex digits (openssl rand -hex 32)",
                       path);
    }
    *out = auth_secrets_new(key);
    sodium_memzero(key, sizeof(key));
    return ERR_OK;
}

void auth_secrets_seal(const auth_secrets_t *secrets, const char *context, const void *data,
                       size_t len, buf_t *out)
{
    size_t size = NONCE_SIZE + len + TAG_SIZE;
    unsigned char *box = sodium_malloc(size);
    if (!box)
        abort();
    auth_random_bytes(box, NONCE_SIZE);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE_SIZE, &clen, data, len,
                                               (const unsigned char *)context, strlen(context),
                                               NULL, box, secrets->key);
    buf_addstr(out, PREFIX);
    b64url_encode(box, NONCE_SIZE + (size_t)clen, out);
    sodium_free(box);
}

bool auth_secrets_open(const auth_secrets_t *secrets, const char *context, const char *text,
                       size_t len, buf_t *out)
{
    size_t prefix = strlen(PREFIX);
    if (len < prefix || memcmp(text, PREFIX, prefix) != 0)
        return false;
    buf_t box = BUF_INIT;
    bool ok = false;
    if (!b64url_decode(text + prefix, len - prefix, &box) || box.len < NONCE_SIZE + TAG_SIZE)
        goto out;
    size_t plain_len = box.len - NONCE_SIZE - TAG_SIZE;
    unsigned char *plain = sodium_malloc(plain_len + 1);
    if (!plain)
        abort();
    unsigned long long got = 0;
    const unsigned char *b = (const unsigned char *)box.ptr;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &got, NULL, b + NONCE_SIZE, box.len - NONCE_SIZE, (const unsigned char *)context,
            strlen(context), b, secrets->key) == 0) {
        buf_add(out, plain, (size_t)got);
        ok = true;
    }
    sodium_free(plain);
out:
    buf_release(&box);
    return ok;
}

status_t auth_secrets_create(const char *path, bool *out_created, err_t *err)
{
    *out_created = false;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return ERR_OK;
        return err_set(err, ERR_INVALID, NULL, "could not create the secrets key file \"%s\": %s",
                       path, strerror(errno));
    }
    unsigned char key[AUTH_SECRETS_KEY_SIZE];
    char hex[2 * AUTH_SECRETS_KEY_SIZE + 2];
    auth_random_bytes(key, sizeof(key));
    sodium_bin2hex(hex, sizeof(hex) - 1, key, sizeof(key));
    sodium_memzero(key, sizeof(key));
    size_t len = strlen(hex);
    hex[len++] = '\n';
    bool ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    sodium_memzero(hex, sizeof(hex));
    int saved = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return err_set(err, ERR_INVALID, NULL, "could not write the secrets key file \"%s\": %s",
                       path, strerror(saved));
    }
    *out_created = true;
    return ERR_OK;
}
