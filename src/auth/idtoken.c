/*
 * idtoken.c - the server's signing key file and id_tokens (idtoken.h).
 *
 * The key file is made with O_EXCL, so two servers starting on one database at once cannot
 * write two keys: the second finds the first one's file. It is written in full and synced
 * before use; a file that another process is still writing fails to load and the server
 * says so rather than starting with half a key.
 */
#include "auth/idtoken.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

/* A PEM key of an RSA key of 16384 bits is about 13 kB. */
#define MAX_KEY_FILE 65536

status_t auth_signing_key_create(const char *path, bool *out_created, err_t *err)
{
    *out_created = false;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return ERR_OK;
        return err_set(err, ERR_INVALID, NULL, "could not create the signing key file \"%s\": %s",
                       path, strerror(errno));
    }
    jose_key_t *key = jose_key_generate(AUTH_SIGNING_ALG);
    buf_t pem = BUF_INIT;
    jose_key_to_pem(key, &pem);
    jose_key_free(key);
    bool ok = write(fd, pem.ptr, pem.len) == (ssize_t)pem.len && fsync(fd) == 0;
    int saved = errno;
    OPENSSL_cleanse(pem.ptr, pem.len);
    buf_release(&pem);
    close(fd);
    if (!ok) {
        unlink(path);
        return err_set(err, ERR_INVALID, NULL, "could not write the signing key file \"%s\": %s",
                       path, strerror(saved));
    }
    *out_created = true;
    return ERR_OK;
}

status_t auth_signing_key_load(const char *path, jose_key_t **out, err_t *err)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, ERR_INVALID, NULL, "could not open the signing key file \"%s\": %s",
                       path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || (st.st_mode & 077)) {
        fclose(f);
        return err_set(err, ERR_INVALID, NULL,
                       "the signing key file \"%s\" may be read by others: chmod 600 it", path);
    }
    buf_t text = BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && text.len <= MAX_KEY_FILE)
        buf_add(&text, chunk, n);
    OPENSSL_cleanse(chunk, sizeof(chunk));
    fclose(f);
    status_t rc = ERR_OK;
    jose_key_t *key = NULL;
    err_t parse = ERR_INIT;
    if (text.len > MAX_KEY_FILE) {
        rc = err_set(err, ERR_INVALID, NULL, "the signing key file \"%s\" is too large", path);
    } else if (jose_key_from_pem(text.ptr, text.len, &key, &parse) ||
               !jose_key_fits(key, AUTH_SIGNING_ALG)) {
        rc = err_set(err, ERR_INVALID, NULL,
                     "the signing key file \"%s\" must hold an RSA private key of 2048 bits or "
                     "more in PEM (openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048)",
                     path);
        jose_key_free(key);
        key = NULL;
    }
    err_release(&parse);
    OPENSSL_cleanse(text.ptr, text.len);
    buf_release(&text);
    *out = key;
    return rc;
}

status_t auth_id_token_sign(const jose_key_t *key, const auth_id_token_t *claims, buf_t *out,
                            err_t *err)
{
    json_t *payload = json_object();
    json_object_set_new(payload, "iss", json_string(claims->issuer));
    json_object_set_new(payload, "sub", json_string(claims->subject));
    json_object_set_new(payload, "aud", json_string(claims->audience));
    json_object_set_new(payload, "iat", json_integer(claims->issued_at));
    json_object_set_new(payload, "exp", json_integer(claims->expires_at));
    if (claims->fhir_user)
        json_object_set_new(payload, "fhirUser", json_string(claims->fhir_user));
    if (claims->nonce)
        json_object_set_new(payload, "nonce", json_string(claims->nonce));
    status_t rc = jose_sign(key, AUTH_SIGNING_ALG, payload, out, err);
    json_decref(payload);
    return rc;
}
