/*
 * clients.c - registration and authentication of OAuth clients (clients.h).
 *
 * A backend service's assertion names its client only inside the token (iss), so the payload
 * is read once unverified to find which JWK Set to verify it against; nothing of it is
 * trusted until jose_verify has checked the signature and the claims.
 */
#include "auth/clients.h"

#include <jansson.h>
#include <string.h>

#include "auth/jose.h"
#include "repo/scope.h"
#include "base/b64.h"
#include "base/buf.h"

#define CLIENT_FAILED "invalid client"

static status_t check_client_id(const char *id, err_t *err)
{
    size_t len = id ? strlen(id) : 0;
    if (len == 0 || len > 128)
        return err_set(err, ERR_VALUE, NULL, "a client id has 1 to 128 characters");
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && !strchr("._-", c))
            return err_set(err, ERR_VALUE, NULL,
                           "invalid client id \"%s\": use letters, digits, '.', '_' and '-'", id);
    }
    return ERR_OK;
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* https://HOST/..., or http on a loopback address (RFC 8252 section 7.3); no fragment, no
 * white space (the list is stored space-separated). */
static status_t check_redirect_uri(const char *uri, err_t *err)
{
    bool loopback = starts_with(uri, "http://localhost") || starts_with(uri, "http://127.0.0.1") ||
                    starts_with(uri, "http://[::1]");
    bool https = starts_with(uri, "https://") && uri[8] && uri[8] != '/';
    if (!(https || loopback) || strpbrk(uri, "# \t\r\n"))
        return err_set(err, ERR_VALUE, NULL,
                       "invalid redirect URI \"%s\": an absolute https URI, or http on a loopback "
                       "address, without a fragment",
                       uri);
    return ERR_OK;
}

static status_t check_scopes(const char *scopes, err_t *err)
{
    if (!scopes || !*scopes)
        return err_set(err, ERR_VALUE, NULL, "a client needs the scopes it may be granted");
    arena_t arena;
    arena_init(&arena);
    scope_set_t set;
    scope_parse(&arena, scopes, strlen(scopes), &set);
    status_t rc = ERR_OK;
    if (set.nunknown)
        rc = err_set(err, ERR_VALUE, NULL, "scope \"%s\" is not understood", set.unknown[0]);
    arena_release(&arena);
    return rc;
}

typedef struct {
    store_client_t client;
} register_arg_t;

static status_t register_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_client_create(txn, &((register_arg_t *)arg)->client, err);
}

status_t auth_client_register(auth_accounts_t *accounts, const auth_client_new_t *in,
                              int64_t now_us, err_t *err)
{
    status_t rc = check_client_id(in->client_id, err);
    if (rc || (rc = check_scopes(in->scopes, err)))
        return rc;
    buf_t uris = BUF_INIT;
    for (size_t i = 0; i < in->nredirect_uris; i++) {
        if ((rc = check_redirect_uri(in->redirect_uris[i], err)))
            goto out;
        buf_addf(&uris, "%s%s", i ? " " : "", in->redirect_uris[i]);
    }
    char hash[PASSWORD_HASH_SIZE];
    register_arg_t arg = {.client = {.client_id = in->client_id,
                                     .name = in->name,
                                     .kind = in->kind,
                                     .scopes = in->scopes,
                                     .redirect_uris = uris.ptr,
                                     .created_us = now_us,
                                     .updated_us = now_us}};
    switch (in->kind) {
    case STORE_CLIENT_PUBLIC:
        if (in->nredirect_uris == 0) {
            rc = err_set(err, ERR_VALUE, NULL,
                         "a public client needs a redirect URI (--redirect-uri URI)");
            goto out;
        }
        break;
    case STORE_CLIENT_CONFIDENTIAL:
        if (!in->secret || in->secret_len < AUTH_CLIENT_SECRET_MIN) {
            rc = err_set(err, ERR_RULE, NULL,
                         "a client secret needs %d characters or more (openssl rand -hex 32)",
                         AUTH_CLIENT_SECRET_MIN);
            goto out;
        }
        if ((rc = password_hash(&accounts->secret_cost, in->secret, in->secret_len, hash, err)))
            goto out;
        arg.client.secret_hash = hash;
        break;
    case STORE_CLIENT_JWT: {
        jose_jwks_t *jwks = NULL;
        if (!in->jwks) {
            rc = err_set(err, ERR_VALUE, NULL, "a private_key_jwt client needs a JWK Set");
            goto out;
        }
        if ((rc = jose_jwks_parse(in->jwks, strlen(in->jwks), &jwks, err)))
            goto out;
        size_t nkeys = jose_jwks_count(jwks);
        jose_jwks_free(jwks);
        if (nkeys == 0) {
            rc = err_set(err, ERR_VALUE, NULL, "the JWK Set has no key that can verify signatures");
            goto out;
        }
        arg.client.jwks = in->jwks;
        break;
    }
    default: rc = err_set(err, ERR_VALUE, NULL, "unknown client kind"); goto out;
    }
    rc = store_run(accounts->store, register_txn, &arg, err);
out:
    buf_release(&uris);
    return rc;
}

status_t auth_client_authenticate_secret(auth_accounts_t *accounts, store_conn_t *conn,
                                         const char *client_id, const char *secret, size_t len,
                                         arena_t *arena, store_client_t *out, err_t *err)
{
    err_t lookup = ERR_INIT;
    status_t rc = store_client_get(conn, client_id, arena, out, &lookup);
    if (rc && rc != ERR_NOT_FOUND) {
        err_move(err, &lookup);
        return rc;
    }
    err_release(&lookup);
    if (rc || out->kind != STORE_CLIENT_CONFIDENTIAL || !out->secret_hash || out->disabled) {
        auth__dummy_verify_secret(accounts, secret, len);
        return err_set(err, ERR_UNAUTHORIZED, NULL, CLIENT_FAILED);
    }
    if (!password_verify(out->secret_hash, secret, len))
        return err_set(err, ERR_UNAUTHORIZED, NULL, CLIENT_FAILED);
    return ERR_OK;
}

/* The iss of a compact JWS, read without verifying it (to know whose keys to verify with). */
static char *unverified_issuer(const char *token, size_t len, arena_t *arena)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        return NULL;
    buf_t payload = BUF_INIT;
    char *iss = NULL;
    if (b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload)) {
        json_t *claims = json_loadb(payload.ptr, payload.len, JSON_REJECT_DUPLICATES, NULL);
        const char *s = json_string_value(json_object_get(claims, "iss"));
        if (s)
            iss = arena_strdup(arena, s);
        json_decref(claims);
    }
    buf_release(&payload);
    return iss;
}

typedef struct {
    const char *client_id, *jti;
    int64_t expires_us, now_us;
    bool fresh;
} assertion_arg_t;

static status_t assertion_txn(store_txn_t *txn, void *arg, err_t *err)
{
    assertion_arg_t *a = arg;
    return store_txn_client_assertion_use(txn, a->client_id, a->jti, a->expires_us, a->now_us,
                                          &a->fresh, err);
}

status_t auth_client_authenticate_jwt(auth_accounts_t *accounts, store_conn_t *conn,
                                      const char *assertion, size_t len, const char *audience,
                                      int64_t now_us, arena_t *arena, store_client_t *out,
                                      err_t *err)
{
    if (len > JOSE_MAX_TOKEN)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the client assertion is too long");
    const char *client_id = unverified_issuer(assertion, len, arena);
    if (!client_id)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the client assertion names no issuer");
    err_t lookup = ERR_INIT;
    status_t rc = store_client_get(conn, client_id, arena, out, &lookup);
    if (rc && rc != ERR_NOT_FOUND) {
        err_move(err, &lookup);
        return rc;
    }
    err_release(&lookup);
    if (rc || out->kind != STORE_CLIENT_JWT || !out->jwks || out->disabled)
        return err_set(err, ERR_UNAUTHORIZED, NULL, CLIENT_FAILED);
    jose_jwks_t *jwks = NULL;
    err_t parse = ERR_INIT;
    rc = jose_jwks_parse(out->jwks, strlen(out->jwks), &jwks, &parse);
    err_release(&parse);
    if (rc)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the client's JWK Set cannot be read");
    jose_expect_t expect = {.now = now_us / 1000000,
                            .leeway = JOSE_LEEWAY,
                            .require_exp = true,
                            .require_jti = true,
                            .issuer = client_id,
                            .subject = client_id,
                            .audience = audience};
    jose_token_t token;
    rc = jose_verify(arena, assertion, len, jwks, &expect, &token, err);
    jose_jwks_free(jwks);
    if (rc)
        return rc;
    int64_t exp = (int64_t)json_number_value(json_object_get(token.claims, "exp"));
    const char *jti = json_string_value(json_object_get(token.claims, "jti"));
    if (exp * 1000000 > now_us + AUTH_ASSERTION_MAX_US + JOSE_LEEWAY * (int64_t)1000000)
        return err_set(err, ERR_UNAUTHORIZED, NULL,
                       "the client assertion expires more than 5 minutes from now");
    assertion_arg_t arg = {client_id, jti, (exp + JOSE_LEEWAY) * 1000000, now_us, false};
    if ((rc = store_run(accounts->store, assertion_txn, &arg, err)))
        return rc;
    if (!arg.fresh)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the client assertion was used before (jti)");
    return ERR_OK;
}

typedef struct {
    const char *client_id;
    bool remove, disabled;
    int64_t now_us;
} change_arg_t;

static status_t change_txn(store_txn_t *txn, void *arg, err_t *err)
{
    change_arg_t *a = arg;
    if (a->remove)
        return store_txn_client_delete(txn, a->client_id, err);
    status_t rc = store_txn_client_set_disabled(txn, a->client_id, a->disabled, a->now_us, err);
    if (!rc && a->disabled)
        rc = store_txn_token_revoke_client(txn, a->client_id, a->now_us, NULL, err);
    return rc;
}

status_t auth_client_remove(auth_accounts_t *accounts, const char *client_id, err_t *err)
{
    change_arg_t arg = {client_id, true, false, 0};
    return store_run(accounts->store, change_txn, &arg, err);
}

status_t auth_client_set_disabled(auth_accounts_t *accounts, const char *client_id, bool disabled,
                                  int64_t now_us, err_t *err)
{
    change_arg_t arg = {client_id, false, disabled, now_us};
    return store_run(accounts->store, change_txn, &arg, err);
}
