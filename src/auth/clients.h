/*
 * clients.h - OAuth clients (SMART apps and backend services): registration and client
 * authentication at the token endpoint, over the store's client table.
 *
 * Three kinds (store_client_kind_t): public apps (no secret; authorization code with PKCE
 * only), confidential ones with a secret (client_secret_basic or _post; the secret is hashed
 * with argon2id like a password, and must have 32 characters or more), and backend services
 * that sign an assertion with a key of their registered JWK Set (private_key_jwt, RFC 7523 as
 * SMART Backend Services profiles it: iss and sub the client id, aud the token endpoint, exp
 * at most 5 minutes ahead, a jti used once). The jti of every accepted assertion is kept until
 * the assertion expires, so a replay is refused.
 */
#ifndef CONCERTO_AUTH_CLIENTS_H
#define CONCERTO_AUTH_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/accounts.h"
#include "base/arena.h"
#include "base/err.h"
#include "store/store.h"

/* The shortest secret a confidential client may have. */
#define AUTH_CLIENT_SECRET_MIN 32
/* How far ahead an assertion's exp may be (SMART Backend Services: five minutes). */
#define AUTH_ASSERTION_MAX_US (300 * (int64_t)1000000)

typedef struct {
    const char *client_id; /* 1 to 128 of letters, digits, '.', '_', '-' */
    const char *name;      /* may be NULL */
    store_client_kind_t kind;
    const char *secret; /* confidential */
    size_t secret_len;
    const char *jwks;   /* private_key_jwt: the JWK Set, JSON text */
    const char *scopes; /* space-separated SMART scopes; each must be understood */
    const char *const *redirect_uris;
    size_t nredirect_uris;
} auth_client_new_t;

/*
 * Registers a client after checking it: the id, the scopes (ERR_VALUE naming a scope that is
 * not understood), the redirect URIs (absolute https, or http on a loopback address for
 * native apps, without a fragment; a public client needs one), the secret's length, and that
 * the JWK Set has a usable signing key (its warnings about keys left out stay in err). The
 * secret is hashed with accounts->secret_cost. ERR_CONFLICT when the id is taken.
 */
status_t auth_client_register(auth_accounts_t *accounts, const auth_client_new_t *client,
                              int64_t now_us, err_t *err);

/*
 * client_secret_basic / _post: the client of client_id when secret is its secret, it is
 * confidential and not disabled. Else ERR_UNAUTHORIZED "invalid client" (an unknown client
 * takes the time of a real check). *out in arena.
 */
status_t auth_client_authenticate_secret(auth_accounts_t *accounts, store_conn_t *conn,
                                         const char *client_id, const char *secret, size_t len,
                                         arena_t *arena, store_client_t *out, err_t *err);

/*
 * private_key_jwt: verifies a client assertion (len bytes) for the token endpoint `audience`:
 * the client named by its iss, registered for private_key_jwt and not disabled, a signature
 * by a key of its JWK Set, sub = iss, aud containing audience, exp present and at most
 * AUTH_ASSERTION_MAX_US ahead, a jti not seen before (then recorded until exp). Returns the
 * client in *out or ERR_UNAUTHORIZED saying which check failed.
 */
status_t auth_client_authenticate_jwt(auth_accounts_t *accounts, store_conn_t *conn,
                                      const char *assertion, size_t len, const char *audience,
                                      int64_t now_us, arena_t *arena, store_client_t *out,
                                      err_t *err);

/* Removes a client and its tokens. ERR_NOT_FOUND. */
status_t auth_client_remove(auth_accounts_t *accounts, const char *client_id, err_t *err);
/* Disables a client and revokes its tokens, or enables it. ERR_NOT_FOUND. */
status_t auth_client_set_disabled(auth_accounts_t *accounts, const char *client_id, bool disabled,
                                  int64_t now_us, err_t *err);

#endif
