/*
 * tokens.h - OAuth tokens: authorization codes, access and refresh tokens, opaque to clients
 * and stored only as their SHA-256 (a copy of the database holds no usable token).
 *
 * A token is 32 random bytes in base64url (43 characters). Everything one authorization
 * grants shares a family id: the code, the access and refresh tokens it is exchanged for, and
 * those each refresh gives. A refresh token is rotated (used once, replaced by a new one); a
 * code or refresh token presented a second time means it leaked, and the whole family is
 * revoked (OAuth 2.0 Security BCP, RFC 9700 sections 2.2.2 and 4.14).
 *
 * Checking an access token must not cost a database round trip per request: a checked token,
 * with the account it was issued for, is kept in a small in-process cache for cache_ttl_us (a
 * few seconds), so a revocation or a disabled account takes effect everywhere within that
 * time, and at once in the process that did it (which calls auth_tokens_forget).
 */
#ifndef CONCERTO_AUTH_TOKENS_H
#define CONCERTO_AUTH_TOKENS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/err.h"
#include "repo/scope.h"
#include "store/store.h"

/* A token's text and its NUL. */
#define AUTH_TOKEN_SIZE 44
/* A token's SHA-256 in hex, as the store keys it, and its NUL. */
#define AUTH_TOKEN_HASH_SIZE 65

typedef struct auth_token_entry auth_token_entry_t;

typedef struct {
    store_t *store;         /* borrowed */
    int64_t code_ttl_us;    /* 60 s */
    int64_t access_ttl_us;  /* 1 hour */
    int64_t refresh_ttl_us; /* 30 days */
    int64_t cache_ttl_us;   /* 5 s: how late a revocation may take effect in another process */
    size_t cache_size;      /* 4096 tokens */
    pthread_mutex_t lock;
    auth_token_entry_t *cache; /* cache_size slots, made on first use */
} auth_tokens_t;

/* The defaults above; release with auth_tokens_release. */
void auth_tokens_init(auth_tokens_t *tokens, store_t *store);
void auth_tokens_release(auth_tokens_t *tokens);

/* The store's key of a token: SHA-256 of its text (len bytes), in lower-case hex. */
void auth_token_hash(const char *token, size_t len, char out[AUTH_TOKEN_HASH_SIZE]);

/* What is granted, to whom. */
typedef struct {
    const char *client_id;
    const char *account_id; /* NULL: the client's own (client_credentials) */
    const char *scopes;     /* granted, space-separated */
    const char *patient_id; /* launch context, or NULL */
} auth_grant_t;

typedef struct {
    char access[AUTH_TOKEN_SIZE];
    char refresh[AUTH_TOKEN_SIZE]; /* "" when none was issued */
    int64_t expires_in_s;          /* of the access token */
    const char *scopes;            /* granted (in the caller's arena, or the grant's) */
    const char *patient_id;
    const char *account_id;
    const char *nonce; /* the authorization_code grant: the OpenID Connect nonce the
                          authorization request sent, for the id_token; else NULL */
} auth_issued_t;

/*
 * Issues an access token, and a refresh token when `refresh`, for grant in family_id (NULL:
 * a new family), inside the caller's transaction. For the token endpoint's grants that
 * combine it with other writes.
 */
status_t auth_tokens_issue_txn(auth_tokens_t *tokens, store_txn_t *txn, const auth_grant_t *grant,
                               const char *family_id, bool refresh, int64_t now_us,
                               auth_issued_t *out, err_t *err);
/* The same in a transaction of its own (client_credentials: refresh false). */
status_t auth_tokens_issue(auth_tokens_t *tokens, const auth_grant_t *grant, bool refresh,
                           int64_t now_us, auth_issued_t *out, err_t *err);

/* Issues an authorization code for grant with the PKCE S256 challenge, the redirect URI and
 * the OpenID Connect nonce (NULL: none) of the authorization request; *out_code is to send to
 * the redirect URI. auth_code_exchange gives the nonce back in auth_issued_t.nonce. */
status_t auth_code_issue(auth_tokens_t *tokens, const auth_grant_t *grant,
                         const char *code_challenge, const char *redirect_uri, const char *nonce,
                         int64_t now_us, char out_code[AUTH_TOKEN_SIZE], err_t *err);

/*
 * The authorization_code grant: exchanges code for tokens when it is a live code of client_id
 * for redirect_uri and BASE64URL(SHA-256(code_verifier)) is its challenge. A refresh token
 * comes with scopes offline_access or online_access. A code used before revokes its family.
 * Every refusal is ERR_UNAUTHORIZED (the endpoint answers invalid_grant). Strings in arena.
 */
status_t auth_code_exchange(auth_tokens_t *tokens, const char *code, const char *client_id,
                            const char *redirect_uri, const char *code_verifier, int64_t now_us,
                            arena_t *arena, auth_issued_t *out, err_t *err);

/*
 * The refresh_token grant: a live refresh token of client_id is used up and replaced by a new
 * access and refresh token of the same grant. One used before revokes its family (the tokens
 * of the legitimate holder too: they sign in again). ERR_UNAUTHORIZED.
 */
status_t auth_refresh(auth_tokens_t *tokens, const char *refresh_token, const char *client_id,
                      int64_t now_us, arena_t *arena, auth_issued_t *out, err_t *err);

/*
 * Checks an access token (len bytes) for an API request: *out is its row (strings in arena)
 * when it is a live access token, else ERR_UNAUTHORIZED. From the cache when it was checked
 * less than cache_ttl_us ago and has not expired since; from the store otherwise.
 */
status_t auth_token_check(auth_tokens_t *tokens, store_conn_t *conn, const char *token, size_t len,
                          int64_t now_us, arena_t *arena, store_token_t *out, err_t *err);

/* An access token and the account it acts for, as an API request needs them. */
typedef struct {
    store_token_t token;     /* strings in the caller's arena */
    bool has_account;        /* token.account_id is set: */
    store_account_t account; /* its account_id, username, role, links and disabled; the
                                password hash, the TOTP fields and the counters are left out */
    /* token.scopes parsed, once per token while it is cached (not per request): shared with
       the cache, valid until the arena given to auth_bearer_check is released */
    const scope_set_t *scopes;
} auth_bearer_t;

/*
 * auth_token_check for an API request, with the token's account: *out from the cache when
 * both were checked less than cache_ttl_us ago, else from the store (two lookups on conn).
 * ERR_UNAUTHORIZED (the message says why: unknown, expired, revoked, the account is disabled
 * or gone) or a storage error.
 */
status_t auth_bearer_check(auth_tokens_t *tokens, store_conn_t *conn, const char *token, size_t len,
                           int64_t now_us, arena_t *arena, auth_bearer_t *out, err_t *err);

/* Revokes a token (RFC 7009): a refresh token with its whole family, an access token alone.
 * An unknown token is not an error (RFC 7009 section 2.2). Empties this process's cache. */
status_t auth_token_revoke(auth_tokens_t *tokens, const char *token, size_t len, int64_t now_us,
                           err_t *err);
/* Forgets every cached check (after revoking by account or client elsewhere). */
void auth_tokens_forget(auth_tokens_t *tokens);
/* Removes expired tokens and assertion ids; *out_n (may be NULL) how many tokens. */
status_t auth_tokens_purge(auth_tokens_t *tokens, int64_t now_us, int64_t *out_n, err_t *err);

#endif
