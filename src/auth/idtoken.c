/*
 * idtoken.c - the server's signing key file and id_tokens (idtoken.h).
 *
 * The key file is made with O_EXCL, so two servers starting on one database at once cannot
 * write two keys: the second finds the first one's file. It is written in full and synced
 * before use; a file that another process is still writing fails to load and the server
 * says so rather than starting with half a key. A key kept in the database is added only
 * when none is there, in one statement, and read back after: servers starting at once agree
 * on the first one added.
 */
#include "auth/idtoken.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "base/mem.h"

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

/* The associated data a stored key is sealed with: it opens only as the key of its name. */
static char *seal_context(const char *name)
{
    return xasprintf("server_key:%s", name);
}

/* The key of row, opened with secrets. */
static status_t open_stored(const store_server_key_t *row, const auth_secrets_t *secrets,
                            jose_key_t **out, err_t *err)
{
    *out = NULL;
    char *context = seal_context(row->name);
    buf_t pem = BUF_INIT;
    bool opened = auth_secrets_open(secrets, context, row->sealed, strlen(row->sealed), &pem);
    free(context);
    status_t rc = ERR_OK;
    err_t parse = ERR_INIT;
    jose_key_t *key = NULL;
    if (!opened) {
        rc = err_set(err, ERR_INVALID, NULL,
                     "the signing key in the database does not open with this --secrets-key: "
                     "start every server of the database with the same --secrets-key (or give "
                     "--signing-key FILE)");
    } else if (jose_key_from_pem(pem.ptr, pem.len, &key, &parse) ||
               !jose_key_fits(key, AUTH_SIGNING_ALG)) {
        rc = err_set(err, ERR_INVALID, NULL,
                     "the signing key in the database is not an RSA private key of 2048 bits "
                     "or more");
        jose_key_free(key);
        key = NULL;
    }
    err_release(&parse);
    OPENSSL_cleanse(pem.ptr, pem.len);
    buf_release(&pem);
    *out = key;
    return rc;
}

typedef struct {
    store_server_key_t row;
    bool added; /* false: another server's key is there */
} add_arg_t;

static status_t add_txn(store_txn_t *txn, void *arg, err_t *err)
{
    add_arg_t *a = arg;
    return store_txn_server_key_add(txn, &a->row, &a->added, err);
}

/* Reads the stored key into *out (*out_found false: there is none). */
static status_t read_stored(store_t *store, const auth_secrets_t *secrets, jose_key_t **out,
                            bool *out_found, err_t *err)
{
    *out = NULL;
    store_conn_t *conn;
    status_t rc = store_connect(store, &conn, err);
    if (rc)
        return rc;
    arena_t arena;
    arena_init(&arena);
    store_server_key_t row;
    rc = store_server_key_get(conn, STORE_SIGNING_KEY, &arena, &row, out_found, err);
    if (!rc && *out_found)
        rc = open_stored(&row, secrets, out, err);
    arena_release(&arena);
    store_disconnect(conn);
    return rc;
}

status_t auth_signing_key_from_store(store_t *store, const auth_secrets_t *secrets, int64_t now_us,
                                     jose_key_t **out, bool *out_created, err_t *err)
{
    *out_created = false;
    bool found = false;
    status_t rc = read_stored(store, secrets, out, &found, err);
    if (rc || found)
        return rc;
    jose_key_t *key = jose_key_generate(AUTH_SIGNING_ALG);
    buf_t pem = BUF_INIT, sealed = BUF_INIT;
    jose_key_to_pem(key, &pem);
    char *context = seal_context(STORE_SIGNING_KEY);
    auth_secrets_seal(secrets, context, pem.ptr, pem.len, &sealed);
    free(context);
    OPENSSL_cleanse(pem.ptr, pem.len);
    buf_release(&pem);
    add_arg_t add = {.row = {.name = STORE_SIGNING_KEY,
                             .kid = jose_key_kid(key),
                             .created_us = now_us,
                             .sealed = sealed.ptr}};
    rc = store_run(store, add_txn, &add, err);
    buf_release(&sealed);
    if (!rc && add.added) {
        *out_created = true;
        *out = key;
        return ERR_OK;
    }
    jose_key_free(key);
    if (rc)
        return rc;
    rc = read_stored(store, secrets, out, &found, err);
    if (!rc && !found)
        rc = err_set(err, ERR_STORAGE, NULL, "the signing key in the database went missing");
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
