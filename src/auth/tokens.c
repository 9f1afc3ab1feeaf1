/*
 * tokens.c - codes, access and refresh tokens, and the cache of checked access tokens
 * (tokens.h).
 *
 * The cache is direct-mapped: a token's slot is given by the first bytes of its hash, and a
 * new token takes the slot over. Entries hold copies (malloc) of the few fields a request
 * needs; one mutex guards it, held only to copy in or out. Entry age is measured on the
 * monotonic clock, so a caller's clock (tests pass their own now_us) cannot stretch it.
 *
 * A replayed code or refresh token revokes its family in a transaction that then commits:
 * the refusal is reported after store_run, never as the transaction's error, which would roll
 * the revocation back.
 */
#include "auth/tokens.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "auth/random.h"
#include "repo/scope.h"
#include "base/b64.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/mem.h"

/* A token's scopes parsed once, shared by its cache entry and the requests that use it: freed
 * with the last reference. */
typedef struct {
    atomic_int refs;
    arena_t arena;
    scope_set_t set;
} shared_scopes_t;

struct auth_token_entry {
    char hash[AUTH_TOKEN_HASH_SIZE]; /* "": empty */
    int64_t checked_us;              /* monotonic */
    store_token_t token;             /* strings malloc'd */
    bool account_loaded;             /* account holds the token's account (when it has one) */
    store_account_t account;         /* strings malloc'd: the fields auth_bearer_t keeps */
    shared_scopes_t *scopes;         /* a reference, or NULL until a bearer check parsed them */
};

static shared_scopes_t *scopes_new(const char *text)
{
    shared_scopes_t *s = xmalloc(sizeof(*s));
    atomic_init(&s->refs, 1);
    arena_init(&s->arena);
    text = text ? text : "";
    scope_parse(&s->arena, text, strlen(text), &s->set);
    return s;
}

static void scopes_unref(void *data)
{
    shared_scopes_t *s = data;
    if (s && atomic_fetch_sub(&s->refs, 1) == 1) {
        arena_release(&s->arena);
        free(s);
    }
}

/* A reference for a request: dropped when its arena is released. */
static const scope_set_t *scopes_lend(shared_scopes_t *s, arena_t *arena)
{
    atomic_fetch_add(&s->refs, 1);
    arena_cleanup_add(arena, scopes_unref, s);
    return &s->set;
}

void auth_tokens_init(auth_tokens_t *tokens, store_t *store)
{
    memset(tokens, 0, sizeof(*tokens));
    tokens->store = store;
    tokens->code_ttl_us = 60 * (int64_t)1000000;
    tokens->access_ttl_us = 3600 * (int64_t)1000000;
    tokens->refresh_ttl_us = 30 * 24 * 3600 * (int64_t)1000000;
    tokens->cache_ttl_us = 5 * (int64_t)1000000;
    tokens->cache_size = 4096;
    pthread_mutex_init(&tokens->lock, NULL);
}

static void entry_clear(auth_token_entry_t *e)
{
    free((char *)e->token.client_id);
    free((char *)e->token.account_id);
    free((char *)e->token.scopes);
    free((char *)e->token.patient_id);
    free((char *)e->token.family_id);
    free((char *)e->account.account_id);
    free((char *)e->account.username);
    free((char *)e->account.role);
    free((char *)e->account.practitioner_id);
    free((char *)e->account.practitioner_role_id);
    free((char *)e->account.patient_id);
    scopes_unref(e->scopes);
    memset(e, 0, sizeof(*e));
}

static void cache_clear(auth_tokens_t *tokens)
{
    if (!tokens->cache)
        return;
    for (size_t i = 0; i < tokens->cache_size; i++)
        entry_clear(&tokens->cache[i]);
}

void auth_tokens_release(auth_tokens_t *tokens)
{
    cache_clear(tokens);
    free(tokens->cache);
    tokens->cache = NULL;
    pthread_mutex_destroy(&tokens->lock);
}

void auth_tokens_forget(auth_tokens_t *tokens)
{
    pthread_mutex_lock(&tokens->lock);
    cache_clear(tokens);
    pthread_mutex_unlock(&tokens->lock);
}

void auth_token_hash(const char *token, size_t len, char out[AUTH_TOKEN_HASH_SIZE])
{
    unsigned char digest[crypto_hash_sha256_BYTES];
    auth__sodium_ready();
    crypto_hash_sha256(digest, (const unsigned char *)token, len);
    sodium_bin2hex(out, AUTH_TOKEN_HASH_SIZE, digest, sizeof(digest));
}

static void new_token(char out[AUTH_TOKEN_SIZE])
{
    unsigned char bytes[32];
    auth_random_bytes(bytes, sizeof(bytes));
    buf_t text = BUF_INIT;
    b64url_encode(bytes, sizeof(bytes), &text);
    memcpy(out, text.ptr, text.len + 1);
    buf_release(&text);
}

/* A new token of kind for grant: its text in out, its row stored. */
static status_t store_new(store_txn_t *txn, store_token_kind_t kind, const auth_grant_t *grant,
                          const char *family_id, const char *challenge, const char *redirect_uri,
                          const char *nonce, int64_t now_us, int64_t ttl_us,
                          char out[AUTH_TOKEN_SIZE], err_t *err)
{
    new_token(out);
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(out, strlen(out), hash);
    store_token_t row = {.hash = hash,
                         .kind = kind,
                         .client_id = grant->client_id,
                         .account_id = grant->account_id,
                         .scopes = grant->scopes,
                         .patient_id = grant->patient_id,
                         .family_id = family_id,
                         .code_challenge = challenge,
                         .redirect_uri = redirect_uri,
                         .nonce = nonce,
                         .expires_us = now_us + ttl_us,
                         .created_us = now_us};
    return store_txn_token_issue(txn, &row, err);
}

status_t auth_tokens_issue_txn(auth_tokens_t *tokens, store_txn_t *txn, const auth_grant_t *grant,
                               const char *family_id, bool refresh, int64_t now_us,
                               auth_issued_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    char family[AUTH_TOKEN_SIZE];
    if (!family_id) {
        new_token(family);
        family_id = family;
    }
    status_t rc = store_new(txn, STORE_TOKEN_ACCESS, grant, family_id, NULL, NULL, NULL, now_us,
                            tokens->access_ttl_us, out->access, err);
    if (!rc && refresh)
        rc = store_new(txn, STORE_TOKEN_REFRESH, grant, family_id, NULL, NULL, NULL, now_us,
                       tokens->refresh_ttl_us, out->refresh, err);
    out->expires_in_s = tokens->access_ttl_us / 1000000;
    out->scopes = grant->scopes;
    out->patient_id = grant->patient_id;
    out->account_id = grant->account_id;
    return rc;
}

typedef struct {
    auth_tokens_t *tokens;
    const auth_grant_t *grant;
    bool refresh;
    int64_t now_us;
    auth_issued_t *out;
    /* codes */
    const char *challenge, *redirect_uri, *nonce;
    char *code;
} issue_arg_t;

static status_t issue_txn(store_txn_t *txn, void *arg, err_t *err)
{
    issue_arg_t *a = arg;
    return auth_tokens_issue_txn(a->tokens, txn, a->grant, NULL, a->refresh, a->now_us, a->out,
                                 err);
}

status_t auth_tokens_issue(auth_tokens_t *tokens, const auth_grant_t *grant, bool refresh,
                           int64_t now_us, auth_issued_t *out, err_t *err)
{
    issue_arg_t arg = {tokens, grant, refresh, now_us, out, NULL, NULL, NULL, NULL};
    return store_run(tokens->store, issue_txn, &arg, err);
}

static status_t code_txn(store_txn_t *txn, void *arg, err_t *err)
{
    issue_arg_t *a = arg;
    char family[AUTH_TOKEN_SIZE];
    new_token(family);
    return store_new(txn, STORE_TOKEN_CODE, a->grant, family, a->challenge, a->redirect_uri,
                     a->nonce, a->now_us, a->tokens->code_ttl_us, a->code, err);
}

status_t auth_code_issue(auth_tokens_t *tokens, const auth_grant_t *grant,
                         const char *code_challenge, const char *redirect_uri, const char *nonce,
                         int64_t now_us, char out_code[AUTH_TOKEN_SIZE], err_t *err)
{
    if (!code_challenge || !*code_challenge)
        return err_set(err, ERR_INVALID, NULL, "a code challenge (PKCE, S256) is required");
    issue_arg_t arg = {tokens,         grant,        false, now_us,  NULL,
                       code_challenge, redirect_uri, nonce, out_code};
    return store_run(tokens->store, code_txn, &arg, err);
}

/* ---- exchanging codes and refresh tokens ------------------------------------------------ */

typedef struct {
    auth_tokens_t *tokens;
    store_token_kind_t kind;
    const char *hash, *client_id, *redirect_uri, *verifier;
    int64_t now_us;
    arena_t *arena;
    auth_issued_t *out;
    const char *refused; /* why, when refused (the transaction still commits) */
} exchange_arg_t;

static bool pkce_matches(const char *verifier, const char *challenge)
{
    if (!verifier || !challenge)
        return false;
    size_t len = strlen(verifier);
    if (len < 43 || len > 128) /* RFC 7636 section 4.1 */
        return false;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, (const unsigned char *)verifier, len);
    buf_t text = BUF_INIT;
    b64url_encode(digest, sizeof(digest), &text);
    bool ok = text.len == strlen(challenge) && sodium_memcmp(text.ptr, challenge, text.len) == 0;
    buf_release(&text);
    return ok;
}

static status_t exchange_txn(store_txn_t *txn, void *arg, err_t *err)
{
    exchange_arg_t *a = arg;
    store_token_t row;
    err_t lookup = ERR_INIT;
    status_t rc = store_txn_token_get(txn, a->hash, a->arena, &row, &lookup);
    if (rc == ERR_NOT_FOUND || (!rc && row.kind != a->kind)) {
        err_release(&lookup);
        a->refused =
            a->kind == STORE_TOKEN_CODE ? "unknown authorization code" : "unknown refresh token";
        return ERR_OK;
    }
    if (rc) {
        err_move(err, &lookup);
        return rc;
    }
    err_release(&lookup);
    if (strcmp(row.client_id, a->client_id) != 0) {
        a->refused = "the grant was issued to another client";
        return ERR_OK;
    }
    switch (store_token_state(&row, a->now_us)) {
    case STORE_TOKEN_USED:
        a->refused = a->kind == STORE_TOKEN_CODE
                         ? "the authorization code was used before: its tokens are revoked"
                         : "the refresh token was used before: its tokens are revoked";
        return row.family_id
                   ? store_txn_token_revoke_family(txn, row.family_id, a->now_us, NULL, err)
                   : ERR_OK;
    case STORE_TOKEN_REVOKED: a->refused = "the grant was revoked"; return ERR_OK;
    case STORE_TOKEN_EXPIRED: a->refused = "the grant has expired"; return ERR_OK;
    case STORE_TOKEN_ACTIVE: break;
    }
    if (a->kind == STORE_TOKEN_CODE) {
        if (!row.redirect_uri || !a->redirect_uri || strcmp(row.redirect_uri, a->redirect_uri)) {
            a->refused = "redirect_uri is not the one of the authorization request";
            return ERR_OK;
        }
        if (!pkce_matches(a->verifier, row.code_challenge)) {
            a->refused = "code_verifier does not match the code challenge";
            return ERR_OK;
        }
    }
    bool first = false;
    if ((rc = store_txn_token_use(txn, a->hash, a->now_us, &first, err)))
        return rc;
    auth_grant_t grant = {row.client_id, row.account_id, row.scopes, row.patient_id};
    bool refresh = a->kind == STORE_TOKEN_REFRESH;
    if (!refresh) {
        scope_set_t set;
        scope_parse(a->arena, row.scopes, strlen(row.scopes), &set);
        refresh = set.flags & (SCOPE_OFFLINE_ACCESS | SCOPE_ONLINE_ACCESS);
    }
    if ((rc = auth_tokens_issue_txn(a->tokens, txn, &grant, row.family_id, refresh, a->now_us,
                                    a->out, err)))
        return rc;
    /* the id_token of a code's tokens carries its request's nonce; a refresh's carries none
       (OpenID Connect Core 12.2) */
    if (a->kind == STORE_TOKEN_CODE)
        a->out->nonce = row.nonce;
    return ERR_OK;
}

static status_t run_exchange(exchange_arg_t *arg, const char *token, err_t *err)
{
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, strlen(token), hash);
    arg->hash = hash;
    status_t rc = store_run(arg->tokens->store, exchange_txn, arg, err);
    if (rc)
        return rc;
    if (arg->refused) {
        memset(arg->out, 0, sizeof(*arg->out));
        auth_tokens_forget(arg->tokens);
        return err_set(err, ERR_UNAUTHORIZED, NULL, "%s", arg->refused);
    }
    return ERR_OK;
}

status_t auth_code_exchange(auth_tokens_t *tokens, const char *code, const char *client_id,
                            const char *redirect_uri, const char *code_verifier, int64_t now_us,
                            arena_t *arena, auth_issued_t *out, err_t *err)
{
    exchange_arg_t arg = {tokens,        STORE_TOKEN_CODE, NULL,  client_id, redirect_uri,
                          code_verifier, now_us,           arena, out,       NULL};
    return run_exchange(&arg, code, err);
}

status_t auth_refresh(auth_tokens_t *tokens, const char *refresh_token, const char *client_id,
                      int64_t now_us, arena_t *arena, auth_issued_t *out, err_t *err)
{
    exchange_arg_t arg = {
        tokens, STORE_TOKEN_REFRESH, NULL, client_id, NULL, NULL, now_us, arena, out, NULL};
    return run_exchange(&arg, refresh_token, err);
}

/* ---- checking access tokens ------------------------------------------------------------ */

static char *copy_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static const char *arena_copy(arena_t *arena, const char *s)
{
    return s ? arena_strdup(arena, s) : NULL;
}

static void copy_out(const store_token_t *from, arena_t *arena, store_token_t *out)
{
    *out = *from;
    out->hash = NULL;
    out->client_id = arena_copy(arena, from->client_id);
    out->account_id = arena_copy(arena, from->account_id);
    out->scopes = arena_copy(arena, from->scopes);
    out->patient_id = arena_copy(arena, from->patient_id);
    out->family_id = arena_copy(arena, from->family_id);
    out->code_challenge = out->redirect_uri = NULL;
}

/* The slot of a hash: its first 8 hex digits as a number. */
static size_t slot_of(const auth_tokens_t *tokens, const char *hash)
{
    return (size_t)strtoull(
               (char[9]){hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], 0},
               NULL, 16) %
           tokens->cache_size;
}

/* The fields of an account a request needs, copied with copy (arena or malloc). */
static void account_copy(const store_account_t *from, store_account_t *out,
                         const char *(*copy)(void *, const char *), void *ctx)
{
    memset(out, 0, sizeof(*out));
    out->account_id = copy(ctx, from->account_id);
    out->username = copy(ctx, from->username);
    out->role = copy(ctx, from->role);
    out->practitioner_id = copy(ctx, from->practitioner_id);
    out->practitioner_role_id = copy(ctx, from->practitioner_role_id);
    out->patient_id = copy(ctx, from->patient_id);
    out->disabled = from->disabled;
}

static const char *copy_to_arena(void *arena, const char *s)
{
    return arena_copy(arena, s);
}

static const char *copy_to_heap(void *unused, const char *s)
{
    (void)unused;
    return copy_or_null(s);
}

/* A hit when the entry is fresh and, when account is wanted, holds the account too; then
 * *out_scopes (may be NULL) is the entry's parsed scopes lent to arena, or NULL when it has
 * none yet. */
static bool cache_get(auth_tokens_t *tokens, const char *hash, int64_t now_us, arena_t *arena,
                      store_token_t *out, store_account_t *account, const scope_set_t **out_scopes)
{
    bool hit = false;
    pthread_mutex_lock(&tokens->lock);
    if (tokens->cache && tokens->cache_ttl_us > 0) {
        auth_token_entry_t *e = &tokens->cache[slot_of(tokens, hash)];
        if (strcmp(e->hash, hash) == 0 && clock_mono_us() - e->checked_us < tokens->cache_ttl_us &&
            now_us < e->token.expires_us && (!account || e->account_loaded)) {
            copy_out(&e->token, arena, out);
            if (account)
                account_copy(&e->account, account, copy_to_arena, arena);
            if (out_scopes)
                *out_scopes = e->scopes ? scopes_lend(e->scopes, arena) : NULL;
            hit = true;
        }
    }
    pthread_mutex_unlock(&tokens->lock);
    return hit;
}

/* Puts a checked token (with its account when account is not NULL, with its parsed scopes
 * when scopes is not NULL: the entry takes that reference) in its slot. */
static void cache_put(auth_tokens_t *tokens, const char *hash, const store_token_t *token,
                      const store_account_t *account, shared_scopes_t *scopes)
{
    if (tokens->cache_ttl_us <= 0 || tokens->cache_size == 0) {
        scopes_unref(scopes);
        return;
    }
    pthread_mutex_lock(&tokens->lock);
    if (!tokens->cache)
        tokens->cache = xcalloc(tokens->cache_size, sizeof(*tokens->cache));
    auth_token_entry_t *e = &tokens->cache[slot_of(tokens, hash)];
    entry_clear(e);
    memcpy(e->hash, hash, AUTH_TOKEN_HASH_SIZE);
    e->checked_us = clock_mono_us();
    e->token = *token;
    e->token.hash = NULL;
    e->token.client_id = copy_or_null(token->client_id);
    e->token.account_id = copy_or_null(token->account_id);
    e->token.scopes = copy_or_null(token->scopes);
    e->token.patient_id = copy_or_null(token->patient_id);
    e->token.family_id = copy_or_null(token->family_id);
    e->token.code_challenge = e->token.redirect_uri = NULL;
    if (account) {
        account_copy(account, &e->account, copy_to_heap, NULL);
        e->account_loaded = true;
    }
    e->scopes = scopes;
    pthread_mutex_unlock(&tokens->lock);
}

/* The token from the store, checked; the hash in *hash. */
static status_t token_lookup(store_conn_t *conn, const char *hash, int64_t now_us, arena_t *arena,
                             store_token_t *out, err_t *err)
{
    err_t lookup = ERR_INIT;
    status_t rc = store_token_get(conn, hash, arena, out, &lookup);
    if (rc && rc != ERR_NOT_FOUND) {
        err_move(err, &lookup);
        return rc;
    }
    err_release(&lookup);
    if (rc || out->kind != STORE_TOKEN_ACCESS)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "invalid access token");
    switch (store_token_state(out, now_us)) {
    case STORE_TOKEN_ACTIVE: return ERR_OK;
    case STORE_TOKEN_EXPIRED:
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the access token has expired");
    default: return err_set(err, ERR_UNAUTHORIZED, NULL, "the access token was revoked");
    }
}

status_t auth_token_check(auth_tokens_t *tokens, store_conn_t *conn, const char *token, size_t len,
                          int64_t now_us, arena_t *arena, store_token_t *out, err_t *err)
{
    if (len != AUTH_TOKEN_SIZE - 1)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "invalid access token");
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, len, hash);
    if (cache_get(tokens, hash, now_us, arena, out, NULL, NULL))
        return ERR_OK;
    status_t rc = token_lookup(conn, hash, now_us, arena, out, err);
    if (!rc)
        cache_put(tokens, hash, out, NULL, NULL);
    return rc;
}

status_t auth_bearer_check(auth_tokens_t *tokens, store_conn_t *conn, const char *token, size_t len,
                           int64_t now_us, arena_t *arena, auth_bearer_t *out, err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (len != AUTH_TOKEN_SIZE - 1)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "invalid access token");
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, len, hash);
    if (!cache_get(tokens, hash, now_us, arena, &out->token, &out->account, &out->scopes) ||
        !out->scopes) {
        status_t rc = token_lookup(conn, hash, now_us, arena, &out->token, err);
        if (rc)
            return rc;
        if (out->token.account_id) {
            store_account_t row;
            err_t lookup = ERR_INIT;
            rc = store_account_get_id(conn, out->token.account_id, arena, &row, &lookup);
            if (rc == ERR_NOT_FOUND) {
                err_release(&lookup);
                return err_set(err, ERR_UNAUTHORIZED, NULL,
                               "the account of the access token no longer exists");
            }
            if (rc) {
                err_move(err, &lookup);
                return rc;
            }
            err_release(&lookup);
            account_copy(&row, &out->account, copy_to_arena, arena);
        }
        shared_scopes_t *scopes = scopes_new(out->token.scopes);
        out->scopes = scopes_lend(scopes, arena);
        cache_put(tokens, hash, &out->token, &out->account, scopes);
    }
    out->has_account = out->token.account_id != NULL;
    if (out->has_account && out->account.disabled)
        return err_set(err, ERR_UNAUTHORIZED, NULL, "the account is disabled");
    return ERR_OK;
}

/* ---- revocation and purging ------------------------------------------------------------ */

typedef struct {
    const char *hash;
    int64_t now_us;
} revoke_arg_t;

static status_t revoke_txn(store_txn_t *txn, void *arg, err_t *err)
{
    revoke_arg_t *a = arg;
    arena_t arena;
    arena_init(&arena);
    store_token_t row;
    err_t lookup = ERR_INIT;
    status_t rc = store_txn_token_get(txn, a->hash, &arena, &row, &lookup);
    if (rc == ERR_NOT_FOUND) {
        rc = ERR_OK;
    } else if (rc) {
        err_move(err, &lookup);
    } else if (row.kind == STORE_TOKEN_REFRESH && row.family_id) {
        rc = store_txn_token_revoke_family(txn, row.family_id, a->now_us, NULL, err);
    } else {
        rc = store_txn_token_revoke(txn, a->hash, a->now_us, err);
    }
    err_release(&lookup);
    arena_release(&arena);
    return rc;
}

status_t auth_token_revoke(auth_tokens_t *tokens, const char *token, size_t len, int64_t now_us,
                           err_t *err)
{
    char hash[AUTH_TOKEN_HASH_SIZE];
    auth_token_hash(token, len, hash);
    revoke_arg_t arg = {hash, now_us};
    status_t rc = store_run(tokens->store, revoke_txn, &arg, err);
    auth_tokens_forget(tokens);
    return rc;
}

typedef struct {
    int64_t now_us, n;
} purge_arg_t;

static status_t purge_txn(store_txn_t *txn, void *arg, err_t *err)
{
    purge_arg_t *a = arg;
    return store_txn_token_purge(txn, a->now_us, &a->n, err);
}

status_t auth_tokens_purge(auth_tokens_t *tokens, int64_t now_us, int64_t *out_n, err_t *err)
{
    purge_arg_t arg = {now_us, 0};
    status_t rc = store_run(tokens->store, purge_txn, &arg, err);
    if (out_n)
        *out_n = arg.n;
    return rc;
}
