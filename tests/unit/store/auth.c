/*
 * Tests for the accounts, clients and tokens of the store (src/store/sql_auth.c) on both
 * drivers: uniqueness, updates, recovery codes used once, the token states, revocation by
 * token, family, account and client, assertion ids against replays, purging.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store.h"
#include "drivers.h"

#define SECOND 1000000LL
#define T0     (1800000000LL * SECOND)

static store_t *store;
static store_conn_t *conn;
static arena_t arena;

static int setup(void **state)
{
    test_db_setup(state);
    test_store_open(&store, &conn);
    arena_init(&arena);
    return 0;
}

static int teardown(void **state)
{
    arena_release(&arena);
    store_disconnect(conn);
    store_close(store);
    return test_db_teardown(state);
}

/* Runs one store_txn_* call in a transaction of its own. */
typedef status_t (*call_fn)(store_txn_t *txn, void *arg, err_t *err);

static status_t run(call_fn fn, void *arg)
{
    err_t err = ERR_INIT;
    status_t rc = store_run(store, fn, arg, &err);
    err_release(&err);
    return rc;
}

static status_t create_account_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_account_create(txn, arg, err);
}

static status_t update_account_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_account_update(txn, arg, err);
}

static store_account_t account(const char *id, const char *username)
{
    return (store_account_t){.account_id = id,
                             .username = username,
                             .role = "nurse",
                             .practitioner_id = "p1",
                             .password_hash = "$argon2id$fake",
                             .password_changed_us = T0,
                             .totp_last_step = -1,
                             .created_us = T0,
                             .updated_us = T0};
}

static void test_accounts(void **state)
{
    (void)state;
    store_account_t a = account("a1", "alice");
    assert_int_equal(run(create_account_txn, &a), ERR_OK);
    store_account_t same_name = account("a2", "alice");
    assert_int_equal(run(create_account_txn, &same_name), ERR_CONFLICT);
    store_account_t b = account("a3", "bob");
    b.role = "patient";
    b.practitioner_id = NULL;
    b.patient_id = "pat1";
    assert_int_equal(run(create_account_txn, &b), ERR_OK);

    err_t err = ERR_INIT;
    store_account_t got;
    assert_int_equal(store_account_get(conn, "alice", &arena, &got, &err), ERR_OK);
    assert_string_equal(got.account_id, "a1");
    assert_string_equal(got.role, "nurse");
    assert_string_equal(got.practitioner_id, "p1");
    assert_null(got.patient_id);
    assert_null(got.totp_secret);
    assert_int_equal(got.totp_last_step, -1);
    assert_int_equal(got.created_us, T0);
    assert_false(got.disabled);
    assert_int_equal(store_account_get(conn, "carol", &arena, &got, &err), ERR_NOT_FOUND);
    err_reset(&err);

    /* an update writes the mutable fields */
    a.failed_logins = 3;
    a.locked_until_us = T0 + 60 * SECOND;
    a.totp_secret = "v1.sealed";
    a.totp_confirmed = true;
    a.totp_last_step = 42;
    a.disabled = true;
    a.updated_us = T0 + SECOND;
    assert_int_equal(run(update_account_txn, &a), ERR_OK);
    assert_int_equal(store_account_get_id(conn, "a1", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.failed_logins, 3);
    assert_int_equal(got.locked_until_us, T0 + 60 * SECOND);
    assert_string_equal(got.totp_secret, "v1.sealed");
    assert_true(got.totp_confirmed);
    assert_int_equal(got.totp_last_step, 42);
    assert_true(got.disabled);
    assert_int_equal(got.updated_us, T0 + SECOND);
    store_account_t ghost = account("nobody", "ghost");
    assert_int_equal(run(update_account_txn, &ghost), ERR_NOT_FOUND);

    store_account_t *list;
    size_t n;
    assert_int_equal(store_account_list(conn, &arena, &list, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].username, "alice");
    assert_string_equal(list[1].username, "bob");
    assert_string_equal(list[1].patient_id, "pat1");
    err_release(&err);
}

typedef struct {
    const char *account_id;
    const char *const *hashes;
    size_t n;
    const char *use;
    bool used;
    const char **listed;
    size_t nlisted;
} recovery_arg_t;

static status_t recovery_set_txn(store_txn_t *txn, void *arg, err_t *err)
{
    recovery_arg_t *a = arg;
    return store_txn_recovery_set(txn, a->account_id, a->hashes, a->n, err);
}

static status_t recovery_use_txn(store_txn_t *txn, void *arg, err_t *err)
{
    recovery_arg_t *a = arg;
    status_t rc = store_txn_recovery_use(txn, a->account_id, a->use, &a->used, err);
    if (!rc)
        rc = store_txn_recovery_list(txn, a->account_id, &arena, &a->listed, &a->nlisted, err);
    return rc;
}

static void test_recovery_codes_are_used_once(void **state)
{
    (void)state;
    store_account_t a = account("a1", "alice");
    assert_int_equal(run(create_account_txn, &a), ERR_OK);
    const char *hashes[] = {"h1", "h2", "h3"};
    recovery_arg_t arg = {.account_id = "a1", .hashes = hashes, .n = 3};
    assert_int_equal(run(recovery_set_txn, &arg), ERR_OK);
    err_t err = ERR_INIT;
    store_account_t got;
    assert_int_equal(store_account_get(conn, "alice", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.recovery_codes, 3);

    arg.use = "h2";
    assert_int_equal(run(recovery_use_txn, &arg), ERR_OK);
    assert_true(arg.used);
    assert_int_equal(arg.nlisted, 2);
    assert_int_equal(run(recovery_use_txn, &arg), ERR_OK);
    assert_false(arg.used); /* the second use of one code */
    assert_int_equal(store_account_get(conn, "alice", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.recovery_codes, 2);

    arg.n = 0; /* a reset removes them */
    assert_int_equal(run(recovery_set_txn, &arg), ERR_OK);
    assert_int_equal(store_account_get(conn, "alice", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.recovery_codes, 0);
    err_release(&err);
}

/* ---- clients -------------------------------------------------------------------------- */

static status_t create_client_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_client_create(txn, arg, err);
}

static status_t delete_client_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_client_delete(txn, arg, err);
}

static status_t disable_client_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_client_set_disabled(txn, arg, true, T0 + SECOND, err);
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

static status_t issue_txn(store_txn_t *txn, void *arg, err_t *err)
{
    return store_txn_token_issue(txn, arg, err);
}

static store_token_t token(const char *hash, store_token_kind_t kind, const char *client,
                           const char *account, const char *family)
{
    return (store_token_t){.hash = hash,
                           .kind = kind,
                           .client_id = client,
                           .account_id = account,
                           .scopes = "patient/*.rs offline_access",
                           .patient_id = "pat1",
                           .family_id = family,
                           .expires_us = T0 + 3600 * SECOND,
                           .created_us = T0};
}

static void test_clients(void **state)
{
    (void)state;
    store_client_t app = {.client_id = "app",
                          .name = "An app",
                          .kind = STORE_CLIENT_PUBLIC,
                          .scopes = "launch/patient patient/*.rs",
                          .redirect_uris = "https://app.example/cb https://app.example/cb2",
                          .created_us = T0,
                          .updated_us = T0};
    store_client_t service = {.client_id = "service",
                              .kind = STORE_CLIENT_JWT,
                              .jwks = "{\"keys\":[]}",
                              .scopes = "system/*.rs",
                              .created_us = T0,
                              .updated_us = T0};
    assert_int_equal(run(create_client_txn, &app), ERR_OK);
    assert_int_equal(run(create_client_txn, &service), ERR_OK);
    assert_int_equal(run(create_client_txn, &app), ERR_CONFLICT);

    err_t err = ERR_INIT;
    store_client_t got;
    assert_int_equal(store_client_get(conn, "app", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.kind, STORE_CLIENT_PUBLIC);
    assert_string_equal(got.name, "An app");
    assert_string_equal(got.redirect_uris, "https://app.example/cb https://app.example/cb2");
    assert_null(got.secret_hash);
    assert_false(got.disabled);
    assert_int_equal(store_client_get(conn, "nope", &arena, &got, &err), ERR_NOT_FOUND);
    err_reset(&err);

    assert_int_equal(run(disable_client_txn, "service"), ERR_OK);
    store_client_t *list;
    size_t n;
    assert_int_equal(store_client_list(conn, &arena, &list, &n, &err), ERR_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].client_id, "app");
    assert_string_equal(list[1].client_id, "service");
    assert_true(list[1].disabled);
    assert_string_equal(list[1].jwks, "{\"keys\":[]}");

    /* a jti is accepted once until it expires */
    assertion_arg_t a = {"service", "jti-1", T0 + 300 * SECOND, T0, false};
    assert_int_equal(run(assertion_txn, &a), ERR_OK);
    assert_true(a.fresh);
    assert_int_equal(run(assertion_txn, &a), ERR_OK);
    assert_false(a.fresh);
    a.client_id = "app"; /* per client */
    assert_int_equal(run(assertion_txn, &a), ERR_OK);
    assert_true(a.fresh);
    a.client_id = "service";
    a.now_us = T0 + 301 * SECOND;
    a.expires_us = T0 + 600 * SECOND;
    assert_int_equal(run(assertion_txn, &a), ERR_OK);
    assert_true(a.fresh);

    /* removing a client removes its tokens */
    store_token_t t = token("hash-app", STORE_TOKEN_ACCESS, "app", NULL, NULL);
    assert_int_equal(run(issue_txn, &t), ERR_OK);
    assert_int_equal(run(delete_client_txn, "app"), ERR_OK);
    assert_int_equal(run(delete_client_txn, "app"), ERR_NOT_FOUND);
    store_token_t row;
    assert_int_equal(store_token_get(conn, "hash-app", &arena, &row, &err), ERR_NOT_FOUND);
    err_release(&err);
}

/* ---- tokens --------------------------------------------------------------------------- */

typedef struct {
    const char *key;
    int64_t now_us;
    bool first;
    int64_t n;
    int which; /* revoke: 0 one, 1 family, 2 account, 3 client; 4 purge */
} token_arg_t;

static status_t use_txn(store_txn_t *txn, void *arg, err_t *err)
{
    token_arg_t *a = arg;
    return store_txn_token_use(txn, a->key, a->now_us, &a->first, err);
}

static status_t revoke_txn(store_txn_t *txn, void *arg, err_t *err)
{
    token_arg_t *a = arg;
    switch (a->which) {
    case 0: return store_txn_token_revoke(txn, a->key, a->now_us, err);
    case 1: return store_txn_token_revoke_family(txn, a->key, a->now_us, &a->n, err);
    case 2: return store_txn_token_revoke_account(txn, a->key, a->now_us, &a->n, err);
    case 3: return store_txn_token_revoke_client(txn, a->key, a->now_us, &a->n, err);
    default: return store_txn_token_purge(txn, a->now_us, &a->n, err);
    }
}

static store_token_state_t state_of(const char *hash, int64_t now_us)
{
    err_t err = ERR_INIT;
    store_token_t row;
    assert_int_equal(store_token_get(conn, hash, &arena, &row, &err), ERR_OK);
    err_release(&err);
    return store_token_state(&row, now_us);
}

static void test_tokens(void **state)
{
    (void)state;
    store_token_t code = token("code", STORE_TOKEN_CODE, "app", "a1", "f1");
    code.code_challenge = "challenge";
    code.redirect_uri = "https://app.example/cb";
    code.nonce = "n-0S6_WzA2Mj";
    code.expires_us = T0 + 60 * SECOND;
    store_token_t access = token("access", STORE_TOKEN_ACCESS, "app", "a1", "f1");
    store_token_t refresh = token("refresh", STORE_TOKEN_REFRESH, "app", "a1", "f1");
    store_token_t other = token("other", STORE_TOKEN_ACCESS, "app", "a2", "f2");
    store_token_t service = token("service", STORE_TOKEN_ACCESS, "svc", NULL, NULL);
    store_token_t *all[] = {&code, &access, &refresh, &other, &service};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(run(issue_txn, all[i]), ERR_OK);

    err_t err = ERR_INIT;
    store_token_t row;
    assert_int_equal(store_token_get(conn, "code", &arena, &row, &err), ERR_OK);
    assert_int_equal(row.kind, STORE_TOKEN_CODE);
    assert_string_equal(row.code_challenge, "challenge");
    assert_string_equal(row.redirect_uri, "https://app.example/cb");
    assert_string_equal(row.nonce, "n-0S6_WzA2Mj");
    assert_string_equal(row.family_id, "f1");
    assert_string_equal(row.patient_id, "pat1");
    assert_int_equal(store_token_state(&row, T0), STORE_TOKEN_ACTIVE);
    assert_int_equal(store_token_state(&row, T0 + 60 * SECOND), STORE_TOKEN_EXPIRED);
    assert_int_equal(store_token_get(conn, "service", &arena, &row, &err), ERR_OK);
    assert_null(row.account_id);
    assert_null(row.nonce);
    assert_int_equal(store_token_get(conn, "nope", &arena, &row, &err), ERR_NOT_FOUND);
    err_release(&err);

    /* a code is used once */
    token_arg_t a = {.key = "code", .now_us = T0 + SECOND};
    assert_int_equal(run(use_txn, &a), ERR_OK);
    assert_true(a.first);
    assert_int_equal(run(use_txn, &a), ERR_OK);
    assert_false(a.first);
    assert_int_equal(state_of("code", T0 + 2 * SECOND), STORE_TOKEN_USED);
    a.key = "nope";
    assert_int_equal(run(use_txn, &a), ERR_NOT_FOUND);

    /* revoking one token, then its family */
    a = (token_arg_t){.key = "access", .now_us = T0 + 2 * SECOND, .which = 0};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(state_of("access", T0 + 2 * SECOND), STORE_TOKEN_REVOKED);
    assert_int_equal(state_of("refresh", T0 + 2 * SECOND), STORE_TOKEN_ACTIVE);
    a = (token_arg_t){.key = "f1", .now_us = T0 + 3 * SECOND, .which = 1};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(a.n, 2); /* the code and the refresh token: access was revoked already */
    assert_int_equal(state_of("refresh", T0 + 3 * SECOND), STORE_TOKEN_REVOKED);
    assert_int_equal(state_of("other", T0 + 3 * SECOND), STORE_TOKEN_ACTIVE);
    a = (token_arg_t){.key = "nope", .now_us = T0, .which = 0};
    assert_int_equal(run(revoke_txn, &a), ERR_NOT_FOUND);

    /* by account, by client */
    a = (token_arg_t){.key = "a2", .now_us = T0 + 4 * SECOND, .which = 2};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(state_of("other", T0 + 4 * SECOND), STORE_TOKEN_REVOKED);
    a = (token_arg_t){.key = "svc", .now_us = T0 + 4 * SECOND, .which = 3};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(state_of("service", T0 + 4 * SECOND), STORE_TOKEN_REVOKED);

    /* purging removes what has expired, and only that */
    a = (token_arg_t){.now_us = T0 + 60 * SECOND, .which = 4};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(a.n, 1); /* the code */
    err_t err2 = ERR_INIT;
    assert_int_equal(store_token_get(conn, "code", &arena, &row, &err2), ERR_NOT_FOUND);
    assert_int_equal(store_token_get(conn, "refresh", &arena, &row, &err2), ERR_OK);
    a = (token_arg_t){.now_us = T0 + 3600 * SECOND, .which = 4};
    assert_int_equal(run(revoke_txn, &a), ERR_OK);
    assert_int_equal(a.n, 4);
    err_release(&err2);
}

/* ---- audit rows: several per statement, and store_run_relaxed ----------------------- */

typedef struct {
    store_audit_row_t *rows;
    size_t n;
    bool fail_after;
} audit_add_arg_t;

static status_t audit_add_txn(store_txn_t *txn, void *arg, err_t *err)
{
    audit_add_arg_t *a = arg;
    status_t rc = store_txn_audit_add(txn, a->rows, a->n, err);
    if (!rc && a->fail_after)
        rc = err_set(err, ERR_CONFLICT, NULL, "refused after the insert");
    return rc;
}

static size_t audit_count(store_audit_row_t **out)
{
    store_audit_query_t q = {.from_us = INT64_MIN, .to_us = INT64_MAX, .count = 100000};
    size_t n;
    err_t err = ERR_INIT;
    assert_int_equal(store_audit_search(conn, &q, &arena, out, &n, &err), ERR_OK);
    err_release(&err);
    return n;
}

static void test_audit_rows_relaxed(void **state)
{
    (void)state;
    enum { N = 77 }; /* two inserts of 32, one of 8, five of one */
    store_audit_row_t rows[N];
    char ids[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "r%d", i);
        rows[i] = (store_audit_row_t){.time_us = 1000 + i,
                                      .user = "ana",
                                      .action = "read",
                                      .type = "Patient",
                                      .resource_id = ids[i],
                                      .outcome = "200"};
        if (i % 2) { /* every other row as src/auth inserts them: sealed already */
            rows[i].seq = i;
            rows[i].hash = "ab";
        }
    }
    err_t err = ERR_INIT;
    audit_add_arg_t a = {rows, N, false};
    assert_int_equal(store_run_relaxed(store, audit_add_txn, &a, &err), ERR_OK);
    store_audit_row_t *got;
    assert_int_equal(audit_count(&got), N);
    for (int i = 0; i < N; i++) {
        const store_audit_row_t *r = &got[N - 1 - i]; /* newest first */
        assert_string_equal(r->resource_id, ids[i]);
        assert_int_equal(r->time_us, 1000 + i);
        assert_int_equal(r->seq, i % 2 ? i : 0);
        if (i % 2)
            assert_string_equal(r->hash, "ab");
        else
            assert_null(r->hash);
    }
    /* a relaxed transaction that fails leaves nothing; a durable one after it commits */
    a.fail_after = true;
    a.n = 5;
    for (int i = 0; i < N; i++)
        rows[i].seq = 0;
    assert_int_equal(store_run_relaxed(store, audit_add_txn, &a, &err), ERR_CONFLICT);
    err_reset(&err);
    assert_int_equal(audit_count(&got), N);
    a.fail_after = false;
    a.n = 3;
    assert_int_equal(store_run(store, audit_add_txn, &a, &err), ERR_OK);
    assert_int_equal(audit_count(&got), N + 3);
    err_release(&err);
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_accounts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recovery_codes_are_used_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_audit_rows_relaxed, setup, teardown),
    };
    return test_run_on_drivers("store/auth", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
