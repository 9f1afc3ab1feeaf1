/*
 * Tests for the browser sessions and pending authorization requests of the store
 * (src/store/sql_session.c) on both drivers: a session's sign-in steps, ending one with its
 * requests, by account, a request completed once, purging what expired.
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

typedef struct {
    int which; /* 0 create, 1 update, 2 delete, 3 delete by account, 4 purge, 5 renew from key */
    const store_session_t *session;
    const char *key;
    int64_t now_us;
    int64_t n;
} session_arg_t;

static status_t session_txn(store_txn_t *txn, void *arg, err_t *err)
{
    session_arg_t *a = arg;
    switch (a->which) {
    case 0: return store_txn_session_create(txn, a->session, err);
    case 1: return store_txn_session_update(txn, a->session, err);
    case 2: return store_txn_session_delete(txn, a->key, err);
    case 3: return store_txn_session_delete_account(txn, a->key, &a->n, err);
    case 5: return store_txn_session_renew(txn, a->key, a->session, err);
    default: return store_txn_session_purge(txn, a->now_us, &a->n, err);
    }
}

static status_t session_run(session_arg_t *a)
{
    err_t err = ERR_INIT;
    status_t rc = store_run(store, session_txn, a, &err);
    err_release(&err);
    return rc;
}

typedef struct {
    int which; /* 0 create, 1 delete */
    const store_authz_request_t *request;
    const char *key;
    bool deleted;
} request_arg_t;

static status_t request_txn(store_txn_t *txn, void *arg, err_t *err)
{
    request_arg_t *a = arg;
    if (a->which == 0)
        return store_txn_authz_request_create(txn, a->request, err);
    return store_txn_authz_request_delete(txn, a->key, &a->deleted, err);
}

static status_t request_run(request_arg_t *a)
{
    err_t err = ERR_INIT;
    status_t rc = store_run(store, request_txn, a, &err);
    err_release(&err);
    return rc;
}

static store_session_t session(const char *id)
{
    return (store_session_t){.session_id = id,
                             .state = STORE_SESSION_ANONYMOUS,
                             .csrf = "csrf-1",
                             .created_us = T0,
                             .last_seen_us = T0,
                             .expires_us = T0 + 12 * 3600 * SECOND};
}

static store_authz_request_t request(const char *id, const char *session_id)
{
    return (store_authz_request_t){.request_id = id,
                                   .session_id = session_id,
                                   .client_id = "app",
                                   .redirect_uri = "https://app.example/cb",
                                   .scope = "launch/patient patient/*.rs",
                                   .state = "xyz",
                                   .code_challenge = "challenge",
                                   .created_us = T0,
                                   .expires_us = T0 + 600 * SECOND};
}

static bool session_exists(const char *id)
{
    err_t err = ERR_INIT;
    store_session_t got;
    status_t rc = store_session_get(conn, id, &arena, &got, &err);
    err_release(&err);
    assert_true(rc == ERR_OK || rc == ERR_NOT_FOUND);
    return rc == ERR_OK;
}

static bool request_exists(const char *id)
{
    err_t err = ERR_INIT;
    store_authz_request_t got;
    status_t rc = store_authz_request_get(conn, id, &arena, &got, &err);
    err_release(&err);
    assert_true(rc == ERR_OK || rc == ERR_NOT_FOUND);
    return rc == ERR_OK;
}

static void test_sessions(void **state)
{
    (void)state;
    store_session_t s = session("s1");
    session_arg_t a = {.which = 0, .session = &s};
    assert_int_equal(session_run(&a), ERR_OK);

    err_t err = ERR_INIT;
    store_session_t got;
    assert_int_equal(store_session_get(conn, "s1", &arena, &got, &err), ERR_OK);
    assert_string_equal(got.session_id, "s1");
    assert_null(got.account_id);
    assert_null(got.username);
    assert_int_equal(got.state, STORE_SESSION_ANONYMOUS);
    assert_string_equal(got.csrf, "csrf-1");
    assert_int_equal(got.created_us, T0);
    assert_int_equal(got.last_seen_us, T0);
    assert_int_equal(got.expires_us, T0 + 12 * 3600 * SECOND);

    /* the password step, then signed in: the steps and the last request are written */
    s.username = "alice";
    s.state = STORE_SESSION_CODE;
    s.last_seen_us = T0 + SECOND;
    a = (session_arg_t){.which = 1, .session = &s};
    assert_int_equal(session_run(&a), ERR_OK);
    assert_int_equal(store_session_get(conn, "s1", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.state, STORE_SESSION_CODE);
    assert_string_equal(got.username, "alice");
    assert_null(got.account_id);
    assert_int_equal(got.last_seen_us, T0 + SECOND);
    s.account_id = "a1";
    s.state = STORE_SESSION_SIGNED_IN;
    s.csrf = "csrf-2";
    s.created_us = T0 + 99 * SECOND; /* not written by an update */
    assert_int_equal(session_run(&a), ERR_OK);
    assert_int_equal(store_session_get(conn, "s1", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.state, STORE_SESSION_SIGNED_IN);
    assert_string_equal(got.account_id, "a1");
    assert_string_equal(got.csrf, "csrf-2");
    assert_int_equal(got.created_us, T0);

    /* an unknown session */
    assert_int_equal(store_session_get(conn, "s9", &arena, &got, &err), ERR_NOT_FOUND);
    assert_null(strstr(err.issues[0].message, "s9"));
    err_reset(&err);
    store_session_t ghost = session("s9");
    a = (session_arg_t){.which = 1, .session = &ghost};
    assert_int_equal(session_run(&a), ERR_NOT_FOUND);

    /* ending it ends its authorization requests, not another session's */
    store_session_t other = session("s2");
    a = (session_arg_t){.which = 0, .session = &other};
    assert_int_equal(session_run(&a), ERR_OK);
    store_authz_request_t r1 = request("r1", "s1"), r2 = request("r2", "s2");
    request_arg_t ra = {.which = 0, .request = &r1};
    assert_int_equal(request_run(&ra), ERR_OK);
    ra.request = &r2;
    assert_int_equal(request_run(&ra), ERR_OK);
    a = (session_arg_t){.which = 2, .key = "s1"};
    assert_int_equal(session_run(&a), ERR_OK);
    assert_false(session_exists("s1"));
    assert_false(request_exists("r1"));
    assert_true(session_exists("s2"));
    assert_true(request_exists("r2"));
    /* ending a session that is gone is no error */
    assert_int_equal(session_run(&a), ERR_OK);
    err_release(&err);
}

static void test_sessions_of_an_account(void **state)
{
    (void)state;
    const char *ids[] = {"s1", "s2", "s3"};
    for (size_t i = 0; i < 3; i++) {
        store_session_t s = session(ids[i]);
        s.account_id = i < 2 ? "a1" : "a2";
        s.state = STORE_SESSION_SIGNED_IN;
        session_arg_t a = {.which = 0, .session = &s};
        assert_int_equal(session_run(&a), ERR_OK);
    }
    session_arg_t a = {.which = 3, .key = "a1"};
    assert_int_equal(session_run(&a), ERR_OK);
    assert_int_equal(a.n, 2);
    assert_false(session_exists("s1"));
    assert_false(session_exists("s2"));
    assert_true(session_exists("s3"));
}

static void test_requests(void **state)
{
    (void)state;
    store_session_t s = session("s1");
    session_arg_t a = {.which = 0, .session = &s};
    assert_int_equal(session_run(&a), ERR_OK);
    store_authz_request_t r = request("r1", "s1");
    r.nonce = "n-1";
    r.aud = "https://fhir.example/fhir";
    request_arg_t ra = {.which = 0, .request = &r};
    assert_int_equal(request_run(&ra), ERR_OK);

    err_t err = ERR_INIT;
    store_authz_request_t got;
    assert_int_equal(store_authz_request_get(conn, "r1", &arena, &got, &err), ERR_OK);
    assert_string_equal(got.request_id, "r1");
    assert_string_equal(got.session_id, "s1");
    assert_string_equal(got.client_id, "app");
    assert_string_equal(got.redirect_uri, "https://app.example/cb");
    assert_string_equal(got.scope, "launch/patient patient/*.rs");
    assert_string_equal(got.state, "xyz");
    assert_string_equal(got.code_challenge, "challenge");
    assert_string_equal(got.nonce, "n-1");
    assert_string_equal(got.aud, "https://fhir.example/fhir");
    assert_int_equal(got.created_us, T0);
    assert_int_equal(got.expires_us, T0 + 600 * SECOND);

    /* without the optional parts */
    store_authz_request_t bare = request("r2", "s1");
    bare.state = NULL;
    ra.request = &bare;
    assert_int_equal(request_run(&ra), ERR_OK);
    assert_int_equal(store_authz_request_get(conn, "r2", &arena, &got, &err), ERR_OK);
    assert_null(got.state);
    assert_null(got.nonce);
    assert_null(got.aud);

    /* completed once: the second delete finds nothing */
    ra = (request_arg_t){.which = 1, .key = "r1"};
    assert_int_equal(request_run(&ra), ERR_OK);
    assert_true(ra.deleted);
    assert_int_equal(request_run(&ra), ERR_OK);
    assert_false(ra.deleted);
    assert_int_equal(store_authz_request_get(conn, "r1", &arena, &got, &err), ERR_NOT_FOUND);
    err_release(&err);
}

static void test_renew(void **state)
{
    (void)state;
    store_session_t s = session("old"), other = session("other");
    session_arg_t a = {.which = 0, .session = &s};
    assert_int_equal(session_run(&a), ERR_OK);
    a.session = &other;
    assert_int_equal(session_run(&a), ERR_OK);
    store_authz_request_t mine = request("r1", "old"), theirs = request("r2", "other");
    request_arg_t ra = {.which = 0, .request = &mine};
    assert_int_equal(request_run(&ra), ERR_OK);
    ra.request = &theirs;
    assert_int_equal(request_run(&ra), ERR_OK);

    /* signed in under a new id: the old one finds nothing, the requests follow */
    store_session_t renewed = s;
    renewed.session_id = "new";
    renewed.state = STORE_SESSION_SIGNED_IN;
    renewed.account_id = "acc-1";
    renewed.username = "jane";
    renewed.csrf = "csrf-2";
    renewed.last_seen_us = T0 + SECOND;
    a = (session_arg_t){.which = 5, .session = &renewed, .key = "old"};
    assert_int_equal(session_run(&a), ERR_OK);
    assert_false(session_exists("old"));
    err_t err = ERR_INIT;
    store_session_t got;
    assert_int_equal(store_session_get(conn, "new", &arena, &got, &err), ERR_OK);
    assert_int_equal(got.state, STORE_SESSION_SIGNED_IN);
    assert_string_equal(got.account_id, "acc-1");
    assert_string_equal(got.csrf, "csrf-2");
    assert_int_equal(got.created_us, T0);
    assert_int_equal(got.expires_us, T0 + 12 * 3600 * SECOND);
    store_authz_request_t r;
    assert_int_equal(store_authz_request_get(conn, "r1", &arena, &r, &err), ERR_OK);
    assert_string_equal(r.session_id, "new");
    assert_int_equal(store_authz_request_get(conn, "r2", &arena, &r, &err), ERR_OK);
    assert_string_equal(r.session_id, "other");
    err_release(&err);

    /* the old id again: gone, nothing changes */
    renewed.session_id = "newer";
    assert_int_equal(session_run(&a), ERR_NOT_FOUND);
    assert_false(session_exists("newer"));
    assert_true(session_exists("new"));
}

static void test_purge(void **state)
{
    (void)state;
    store_session_t early = session("early"), late = session("late");
    early.expires_us = T0 + 60 * SECOND;
    late.expires_us = T0 + 3600 * SECOND;
    session_arg_t a = {.which = 0, .session = &early};
    assert_int_equal(session_run(&a), ERR_OK);
    a.session = &late;
    assert_int_equal(session_run(&a), ERR_OK);
    store_authz_request_t in_early = request("r1", "early"), in_late = request("r2", "late"),
                          expired = request("r3", "late");
    in_early.expires_us = T0 + 3600 * SECOND; /* goes with its session */
    in_late.expires_us = T0 + 3600 * SECOND;
    expired.expires_us = T0 + 30 * SECOND;
    const store_authz_request_t *all[] = {&in_early, &in_late, &expired};
    for (size_t i = 0; i < 3; i++) {
        request_arg_t ra = {.which = 0, .request = all[i]};
        assert_int_equal(request_run(&ra), ERR_OK);
    }
    /* nothing has expired yet */
    a = (session_arg_t){.which = 4, .now_us = T0 + 10 * SECOND};
    assert_int_equal(session_run(&a), ERR_OK);
    assert_int_equal(a.n, 0);
    assert_true(request_exists("r3"));
    /* the early session and the expired request go, with the request of the early session */
    a.now_us = T0 + 60 * SECOND;
    assert_int_equal(session_run(&a), ERR_OK);
    assert_int_equal(a.n, 1);
    assert_false(session_exists("early"));
    assert_true(session_exists("late"));
    assert_false(request_exists("r1"));
    assert_true(request_exists("r2"));
    assert_false(request_exists("r3"));
}

int main(void)
{
    const struct CMUnitTest both[] = {
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_of_an_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renew, setup, teardown),
        cmocka_unit_test_setup_teardown(test_purge, setup, teardown),
    };
    return test_run_on_drivers("store/session", both, TEST_COUNT(both), NULL, 0, NULL, 0);
}
